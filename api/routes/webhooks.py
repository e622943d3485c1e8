"""Push notifications from Google (events.watch channels) and Microsoft Graph (subscriptions).

A notification is trusted only if it names a channel we opened and carries its secret (Google's
channel token, Graph's clientState), compared in constant time against the stored digest. A
trusted change invalidates the connector's busy cache at once, then the connector's
CalendarSyncWorkflow finds what changed and tells the held bookings it touches.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlmodel import Session, select
from temporalio.service import RPCError

from activities.calendar_wiring import request_maintenance, sync_workflow_id
from api.deps import StateDep
from api.metrics import webhook_delivered
from api.state import AppState
from clients.calendar.busy_cache import BusyCache
from clients.secrets import digest, matches
from models.calendar_tables import CalendarChannel
from models.db import session_scope
from workflows.connector_maintenance import CalendarSyncWorkflow
from workflows.connector_messages import ChangeNotice, SyncInput

log = logging.getLogger("huddle.webhooks")
router = APIRouter(tags=["webhooks"], include_in_schema=False)


def _refused(status: int, why: str) -> JSONResponse:
    return JSONResponse({"error": "Refused", "message": why}, status_code=status)


def _counted(provider: str, outcome: str, response: Response) -> Response:
    """Count the delivery by what became of it (`huddle_webhook_deliveries_total`), then answer."""
    webhook_delivered(provider, outcome)
    return response


def _channel(session: Session, channel_id: str, provider: str) -> CalendarChannel | None:
    row = session.get(CalendarChannel, channel_id)
    if row is None or row.provider != provider or row.state != "active":
        return None
    return row


# The database helpers below are plain functions run on the thread pool: a handler must never wait
# on the database (SQLite's write lock, a busy pool) on the event loop that serves every request.
def _google_channel(state: AppState, channel_id: str) -> CalendarChannel | None:
    with Session(state.engine) as session:
        return _channel(session, channel_id, "google")


def _mark_stopped(state: AppState, channel: CalendarChannel) -> None:
    with session_scope(state.engine) as session:
        row = session.get(CalendarChannel, channel.id)
        if row is not None:
            row.state = "stopped"
            session.add(row)


def _invalidate(state: AppState, connector_id: int) -> None:
    BusyCache(state.engine, timedelta(0)).invalidate(connector_id)


async def _announce(state: AppState, notice: ChangeNotice) -> None:
    """Signal-with-start the connector's sync workflow (one per connector; notices pile up in it)."""
    await state.temporal.start_workflow(
        CalendarSyncWorkflow.run,
        SyncInput(connector_id=notice.connector_id),
        id=sync_workflow_id(state.settings, notice.connector_id),
        task_queue=state.settings.task_queue("calendar"),
        start_signal="changed",
        start_signal_args=[notice],
    )


@router.post("/webhooks/google")
async def google_notification(
    state: StateDep,
    channel_id: Annotated[str | None, Header(alias="X-Goog-Channel-ID")] = None,
    token: Annotated[str | None, Header(alias="X-Goog-Channel-Token")] = None,
    resource_state: Annotated[str | None, Header(alias="X-Goog-Resource-State")] = None,
    resource_id: Annotated[str | None, Header(alias="X-Goog-Resource-ID")] = None,
) -> Response:
    """A Google channel message: `sync` is acknowledged, `exists`/`not_exists` mean a change."""
    if not channel_id or not resource_state:
        return _counted("google", "malformed", _refused(400, "not a Google push notification"))
    channel = await run_in_threadpool(_google_channel, state, channel_id)
    if channel is None:
        return _counted("google", "unknown_channel", _refused(404, "unknown channel"))
    if token is None or not matches(token, channel.token_digest):
        return _counted("google", "refused", _refused(403, "wrong channel token"))
    if channel.external_id and resource_id != channel.external_id:
        return _counted("google", "refused", _refused(403, "the channel watches another resource"))
    if resource_state == "sync":
        return _counted("google", "sync", Response(status_code=200))
    await run_in_threadpool(_invalidate, state, channel.connector_id)
    try:
        await _announce(
            state, ChangeNotice(connector_id=channel.connector_id, calendar_id=channel.calendar_id)
        )
    except RPCError as exc:
        log.warning("could not start the sync of connector %s: %s", channel.connector_id, exc)
        return _counted("google", "unavailable", Response(status_code=503))  # Google retries with back-off
    return _counted("google", "accepted", Response(status_code=200))


@router.post("/webhooks/microsoft", response_model=None)
async def microsoft_notification(
    state: StateDep, request: Request, validationToken: str | None = None
) -> Response:
    """Graph change and lifecycle notifications; a validation request is answered with its token."""
    if validationToken is not None:
        return _counted("microsoft", "validation", PlainTextResponse(validationToken, status_code=200))
    try:
        payload = await request.json()
        items = payload["value"]
        assert isinstance(items, list)
    except (ValueError, KeyError, TypeError, AssertionError):
        return _counted("microsoft", "malformed", _refused(400, "not a Graph notification collection"))
    accepted = 0
    for item in items:
        if not isinstance(item, dict):
            continue
        channel = await run_in_threadpool(_subscription, state, item)
        if channel is None:
            continue
        accepted += 1
        try:
            await _handle_graph(state, channel, item)
        except RPCError as exc:
            log.warning("could not start work for connector %s: %s", channel.connector_id, exc)
            return _counted("microsoft", "unavailable", Response(status_code=503))  # Graph retries
    if items and not accepted:
        why = "no notification named a subscription of ours with its clientState"
        return _counted("microsoft", "refused", _refused(403, why))
    return _counted("microsoft", "accepted", Response(status_code=202))


def _subscription(state: AppState, item: dict[str, Any]) -> CalendarChannel | None:
    subscription_id = str(item.get("subscriptionId", ""))
    client_state = item.get("clientState")
    if not isinstance(client_state, str):
        return None
    with Session(state.engine) as session:
        channel = session.exec(
            select(CalendarChannel).where(
                CalendarChannel.external_id == subscription_id,
                CalendarChannel.provider == "microsoft",
                CalendarChannel.state == "active",
            )
        ).first()
        if channel is None:
            # Created a moment ago: the row is written before Graph tells us the subscription's id.
            channel = session.exec(
                select(CalendarChannel).where(
                    CalendarChannel.token_digest == digest(client_state),
                    CalendarChannel.provider == "microsoft",
                    CalendarChannel.state == "active",
                )
            ).first()
    if channel is None or not matches(client_state, channel.token_digest):
        return None
    return channel


async def _handle_graph(state: AppState, channel: CalendarChannel, item: dict[str, Any]) -> None:
    lifecycle = item.get("lifecycleEvent")
    connector_id = channel.connector_id
    if lifecycle == "reauthorizationRequired":
        # Renewing the subscription reauthorizes it.
        await request_maintenance(state.temporal, state.settings, connector_id, force_channels=True)
        return
    if lifecycle == "subscriptionRemoved":
        await run_in_threadpool(_mark_stopped, state, channel)
        await run_in_threadpool(_invalidate, state, connector_id)
        await request_maintenance(state.temporal, state.settings, connector_id, force_channels=True)
        await _announce(
            state, ChangeNotice(connector_id=connector_id, calendar_id=channel.calendar_id, unknown=True)
        )
        return
    if lifecycle == "missed":
        await run_in_threadpool(_invalidate, state, connector_id)
        await _announce(
            state, ChangeNotice(connector_id=connector_id, calendar_id=channel.calendar_id, unknown=True)
        )
        return
    await run_in_threadpool(_invalidate, state, connector_id)
    data = item.get("resourceData") or {}
    event_id = data.get("id") if isinstance(data, dict) else None
    deleted = item.get("changeType") == "deleted"
    await _announce(
        state,
        ChangeNotice(
            connector_id=connector_id,
            calendar_id=channel.calendar_id,
            event_ids=[str(event_id)] if event_id and not deleted else [],
            unknown=deleted or not event_id,
        ),
    )
