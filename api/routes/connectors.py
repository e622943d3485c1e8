"""Calendar connectors of the caller: list with state, connect (OAuth or CalDAV), choose calendars, remove.

XRPC methods under `com.huddle.connector.*` (service auth now; the web issue adds session auth and
pages), plus the OAuth redirect targets `/oauth/calendar/{google,microsoft}/callback`, which the
owner's browser reaches with the state the connect flow handed out.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlmodel import Session, col, func, select
from temporalio.service import RPCError

from activities.calendar_wiring import request_maintenance
from api.auth import Caller, XrpcError
from api.deps import SessionDep, StateDep
from api.ratelimit import RateLimited
from api.state import AppState
from clients.calendar.accounts import CalendarAccounts
from clients.calendar.busy_cache import BusyCache
from clients.calendar.connect import ConnectFlows, ConnectRefused
from clients.calendar.errors import ProviderAuthError, ProviderError
from clients.calendar.push import PushChannels
from models.calendar_tables import (
    CalendarBusyCache,
    CalendarChannel,
    CalendarConnectorDetail,
    CalendarEvent,
    CalendarSyncState,
)
from models.db import session_scope
from models.tables import CalendarConnector

log = logging.getLogger("huddle.api.connectors")
router = APIRouter(tags=["connectors"])


async def json_body(request: Request, caller: Caller) -> dict[str, Any]:
    """The JSON object body, read only once the caller is authenticated."""
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError as exc:
        raise XrpcError(400, "InvalidRequest", "the body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise XrpcError(400, "InvalidRequest", "the body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str, *, required: bool = True, limit: int = 2048) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise XrpcError(400, "InvalidRequest", f"{name}: a string of 1 to {limit} characters is required")
    return value


def _connector_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise XrpcError(400, "InvalidRequest", "connector: a connector id is required")
    return int(value)


def _own(session: Session, owner_did: str, connector_id: int) -> CalendarConnector:
    row = session.get(CalendarConnector, connector_id)
    if row is None or row.owner_did != owner_did:
        raise XrpcError(404, "ConnectorNotFound", "no connector with that id")
    return row


# Database reads and writes of the async routes below run on the thread pool through these, so no
# request waits on the database on the event loop that serves every other one.
def _owned(
    state: AppState, owner_did: str, connector_id: int
) -> tuple[CalendarConnector, CalendarConnectorDetail | None]:
    """The caller's connector (404 for anyone else's) and its calendar list."""
    with Session(state.engine) as session:
        row = _own(session, owner_did, connector_id)
        return row, session.get(CalendarConnectorDetail, row.id)


def _answer(state: AppState, connector_id: int) -> dict[str, Any]:
    with Session(state.engine) as session:
        row = session.get(CalendarConnector, connector_id)
        assert row is not None
        return {"connector": connector_view(session, row)}


def _flows(state: AppState) -> ConnectFlows:
    return ConnectFlows(state.settings, CalendarAccounts(state.settings, state.engine))


def connector_view(session: Session, c: CalendarConnector) -> dict[str, Any]:
    """What the owner sees of a connector: never a secret."""
    detail = session.get(CalendarConnectorDetail, c.id)
    channels = session.exec(
        select(func.count()).where(CalendarChannel.connector_id == c.id, CalendarChannel.state == "active")
    ).one()
    waiting = session.exec(
        select(func.count()).where(
            CalendarEvent.connector_id == c.id, col(CalendarEvent.state).in_(("pending", "failed"))
        )
    ).one()
    view: dict[str, Any] = {
        "id": c.id,
        "provider": c.provider,
        "account": c.account,
        "state": c.state,
        "busyCalendars": list(c.busy_calendar_ids),
        "eventCalendar": c.event_calendar_id,
        "calendars": list(detail.calendars) if detail else [],
        "pushChannels": channels,
        "eventsWaiting": waiting,
        "createdAt": c.created_at.isoformat(),
        "updatedAt": c.updated_at.isoformat(),
    }
    if c.state_reason:
        view["stateReason"] = c.state_reason
    if c.last_sync_at:
        view["lastSyncAt"] = c.last_sync_at.isoformat()
    if c.server_url:
        view["serverUrl"] = c.server_url
    return view


async def _maintain(state: AppState, connector_id: int, *, force: bool = False) -> None:
    """Open (or renew) push channels and write waiting events, in the background."""
    try:
        await request_maintenance(state.temporal, state.settings, connector_id, force_channels=force)
    except RPCError as exc:  # the schedule catches up
        log.warning("could not start maintenance of connector %s: %s", connector_id, exc)


@router.get("/xrpc/com.huddle.connector.list")
def list_connectors(caller: Caller, session: SessionDep) -> dict[str, Any]:
    """The caller's connectors, with their state (ok, needs_reauth, error and why) and last sync."""
    rows = session.exec(
        select(CalendarConnector)
        .where(CalendarConnector.owner_did == caller.did)
        .order_by(col(CalendarConnector.id))
    )
    return {"connectors": [connector_view(session, c) for c in rows]}


@router.post("/xrpc/com.huddle.connector.startOAuth", dependencies=[RateLimited])
async def start_oauth(
    state: StateDep, caller: Caller, body: dict[str, Any] = Depends(json_body)
) -> dict[str, Any]:
    """Start connecting Google or Microsoft: the URL to send the owner's browser to."""
    provider = _text(body, "provider", limit=16)
    if provider not in ("google", "microsoft"):
        raise XrpcError(400, "InvalidRequest", "provider: google or microsoft")
    connector = _connector_id(body["connector"]) if body.get("connector") is not None else None
    return_to = _text(body, "returnTo", required=False)
    if return_to is not None and not _same_site(state, return_to):
        raise XrpcError(400, "InvalidRequest", "returnTo: must be a path or a URL on this site")
    try:
        url, expires_at = await run_in_threadpool(
            _flows(state).start, caller.did, provider, connector_id=connector, return_to=return_to
        )
    except ConnectRefused as exc:
        raise XrpcError(400, "ConnectFailed", str(exc)) from exc
    except ProviderError as exc:
        raise XrpcError(502, "UpstreamFailure", str(exc)) from exc
    return {"authorizationUrl": url, "expiresAt": expires_at.isoformat()}


@router.api_route(
    "/oauth/calendar/{provider}/callback",
    methods=["GET", "POST"],
    include_in_schema=False,
    response_model=None,
)
async def oauth_callback(provider: str, request: Request, state: StateDep) -> Any:
    """Where Google (a redirect, GET) or Microsoft (form_post, POST) send the owner back: finish
    the connect flow. No cookie is needed (a cross-site POST carries no SameSite=Lax cookie): the
    single-use state, stored server-side, and PKCE bind the answer to the flow that asked."""
    if provider not in ("google", "microsoft"):
        raise XrpcError(404, "NotFound", "no such provider")
    params = dict(request.query_params)
    if request.method == "POST":
        form = await request.form()
        params |= {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        done = await run_in_threadpool(_flows(state).finish, provider, params)
    except ConnectRefused as exc:
        raise XrpcError(400, "ConnectFailed", str(exc)) from exc
    except ProviderError as exc:
        raise XrpcError(502, "UpstreamFailure", f"{provider} did not complete the connection: {exc}") from exc
    await _maintain(state, done.connector_id)
    if done.return_to:
        joiner = "&" if "?" in done.return_to else "?"
        return RedirectResponse(f"{done.return_to}{joiner}connector={done.connector_id}", status_code=303)
    return await run_in_threadpool(_answer, state, done.connector_id)


@router.post("/xrpc/com.huddle.connector.connectCaldav", dependencies=[RateLimited])
async def connect_caldav(
    state: StateDep, caller: Caller, body: dict[str, Any] = Depends(json_body)
) -> dict[str, Any]:
    """Connect a CalDAV account (server URL, username, app password), found with CalDAV discovery."""
    url = _text(body, "serverUrl")
    username = _text(body, "username", limit=320)
    password = _text(body, "password", limit=1024)
    assert url is not None and username is not None and password is not None
    try:
        connector_id = await run_in_threadpool(
            _flows(state).connect_caldav, caller.did, url, username, password
        )
    except ConnectRefused as exc:
        raise XrpcError(400, "ConnectFailed", str(exc)) from exc
    return await run_in_threadpool(_answer, state, connector_id)


@router.get("/xrpc/com.huddle.connector.listCalendars")
async def list_calendars(
    state: StateDep, caller: Caller, connector: str, refresh: bool = False
) -> dict[str, Any]:
    """The calendars the connected account can see (`refresh` asks the provider again)."""
    row, _ = await run_in_threadpool(_owned, state, caller.did, _connector_id(connector))
    assert row.id is not None
    try:
        found = await run_in_threadpool(_flows(state).calendars, row.id, refresh=refresh)
    except ProviderAuthError as exc:
        raise XrpcError(409, "NeedsReauth", f"reconnect this calendar first: {exc}") from exc
    except ProviderError as exc:
        raise XrpcError(502, "UpstreamFailure", str(exc)) from exc
    return {"calendars": [c.to_json() for c in found]}


@router.post("/xrpc/com.huddle.connector.update")
async def update_connector(
    state: StateDep, caller: Caller, body: dict[str, Any] = Depends(json_body)
) -> dict[str, Any]:
    """Choose which calendars count as busy and which one receives booking events (null: none)."""
    row, detail = await run_in_threadpool(_owned, state, caller.did, _connector_id(body.get("connector")))
    assert row.id is not None
    known = {c["id"] for c in (detail.calendars if detail else [])}
    busy = body.get("busyCalendars", row.busy_calendar_ids)
    if not isinstance(busy, list) or not all(isinstance(b, str) for b in busy) or len(busy) > 200:
        raise XrpcError(400, "InvalidRequest", "busyCalendars: a list of calendar ids")
    event = body["eventCalendar"] if "eventCalendar" in body else row.event_calendar_id
    if event is not None and not isinstance(event, str):
        raise XrpcError(400, "InvalidRequest", "eventCalendar: a calendar id or null")
    unknown = sorted({*busy, *([event] if event else [])} - known)
    if unknown:
        raise XrpcError(400, "UnknownCalendar", f"not a calendar of this account: {', '.join(unknown)}")
    writable = {c["id"] for c in (detail.calendars if detail else []) if c.get("writable", True)}
    if event is not None and event not in writable:
        raise XrpcError(400, "InvalidRequest", "eventCalendar: the account cannot write to that calendar")
    accounts = CalendarAccounts(state.settings, state.engine)
    connector_id = row.id

    def choose() -> None:  # writes, on the thread pool: never wait on the database on the event loop
        accounts.store.choose_calendars(connector_id, busy=list(dict.fromkeys(busy)), event=event)
        _cache(state).invalidate(connector_id)

    await run_in_threadpool(choose)
    await _maintain(state, row.id)
    return await run_in_threadpool(_answer, state, connector_id)


@router.post("/xrpc/com.huddle.connector.delete")
async def delete_connector(
    state: StateDep, caller: Caller, body: dict[str, Any] = Depends(json_body)
) -> dict[str, Any]:
    """Disconnect: stop push channels, forget the secrets and everything cached."""
    row, _ = await run_in_threadpool(_owned, state, caller.did, _connector_id(body.get("connector")))
    assert row.id is not None
    accounts = CalendarAccounts(state.settings, state.engine)
    push = PushChannels(state.settings, accounts, _cache(state))
    try:
        await run_in_threadpool(push.stop_all, row)
    except ProviderError as exc:  # the channels expire on their own; their notifications are refused
        log.info("stopping channels of connector %s failed: %s", row.id, exc)
    await run_in_threadpool(_forget_connector, state, row.id)
    return {}


def _forget_connector(state: AppState, connector_id: int) -> None:
    """Delete a connector and everything kept for it, in one transaction."""
    with session_scope(state.engine) as session:
        for table in (CalendarChannel, CalendarSyncState, CalendarBusyCache, CalendarConnectorDetail):
            for item in session.exec(select(table).where(table.connector_id == connector_id)):  # type: ignore[attr-defined]
                session.delete(item)
        connector = session.get(CalendarConnector, connector_id)
        if connector is not None:
            session.delete(connector)


def _cache(state: AppState) -> BusyCache:
    return BusyCache(state.engine, timedelta(seconds=state.settings.calendar_busy_cache_ttl_seconds))


def _same_site(state: AppState, url: str) -> bool:
    if url.startswith("/") and not url.startswith("//"):
        return True
    base = state.settings.public_url.rstrip("/")
    return url == base or url.startswith(base + "/")
