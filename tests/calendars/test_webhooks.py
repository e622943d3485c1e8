"""Push notifications: a new busy event changes the next match; strangers' notifications are refused."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.calendar_wiring import sync_workflow_id
from kernel.booking.ids import workflow_id
from models.calendar_tables import CalendarChannel
from models.db import session_scope
from models.settings import Settings
from models.types import utcnow
from tests.bookings.helpers import book, five_slot_record, make_request, seed_offer
from tests.calendars.helpers import Owner, active_channels, eventually
from tests.emulators.google import GoogleEmulator
from tests.emulators.graph import GraphEmulator
from tests.emulators.server import TlsFiles
from tests.replay.recorder import keep_history

SLOT = timedelta(minutes=30)


def _ten_tomorrow() -> datetime:
    day = (utcnow() + timedelta(days=1)).date()
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=UTC)


async def _signals(client: Client, booking: str) -> list[str]:
    handle = client.get_workflow_handle(workflow_id(booking))
    return [
        e.workflow_execution_signaled_event_attributes.signal_name
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]


@pytest.mark.history
async def test_a_google_push_for_a_new_busy_event_changes_the_next_match(
    worker: Settings, engine: Engine, temporal_client: Client, owner: Owner, google: GoogleEmulator
) -> None:
    ten = _ten_tomorrow()
    account = google.add_account(f"host-{uuid.uuid4().hex[:8]}@gmail.test")
    view = await asyncio.to_thread(owner.connect_google, google, account)
    await asyncio.to_thread(eventually, lambda: active_channels(engine, view["id"]), what="a watch channel")
    assert [c["calendar_id"] for c in map(vars, google.active_channels(account))] == [account]

    uri = seed_offer(engine, five_slot_record(), host=owner.did)
    first = make_request(worker, uri, host=owner.did)
    assert (await book(temporal_client, worker, engine, first)).start == ten  # busy times now cached

    sent = len(google.deliveries)
    google.add_event(account, ten + SLOT, ten + 2 * SLOT)  # the host accepts a meeting elsewhere
    deliveries = await asyncio.to_thread(google.wait_for_deliveries, sent + 1)
    assert deliveries[-1]["state"] == "exists" and deliveries[-1]["status"] == 200

    second = await book(temporal_client, worker, engine, make_request(worker, uri, host=owner.did))
    assert second.start == ten + 2 * SLOT  # not the 10:30 the stale cache would have offered

    # A change over a held booking's time tells that booking; the sync token says which times changed.
    google.add_event(account, ten, ten + SLOT)
    for _ in range(100):
        if "calendar_changed" in await _signals(temporal_client, first.booking_id):
            break
        await asyncio.sleep(0.2)
    assert await _signals(temporal_client, first.booking_id) == ["calendar_changed"]
    await keep_history(temporal_client, workflow_id(first.booking_id), "booking-held-calendar-changed")
    sync_id = sync_workflow_id(worker, view["id"])
    await keep_history(temporal_client, sync_id, "calendar-sync-tells-a-held-booking")


async def test_graph_notifications_and_lifecycle_events(
    worker: Settings,
    engine: Engine,
    temporal_client: Client,
    owner: Owner,
    graph: GraphEmulator,
    tls_files: TlsFiles,
) -> None:
    ten = _ten_tomorrow()
    upn = f"host-{uuid.uuid4().hex[:8]}@contoso.test"
    default = graph.add_user(upn)
    view = await asyncio.to_thread(owner.connect_microsoft, graph, tls_files, upn)
    await asyncio.to_thread(eventually, lambda: active_channels(engine, view["id"]), what="a subscription")
    (subscription,) = graph.subscriptions_for(default)

    uri = seed_offer(engine, five_slot_record(), host=owner.did)
    assert (
        await book(temporal_client, worker, engine, make_request(worker, uri, host=owner.did))
    ).start == ten
    sent = len(graph.deliveries)
    graph.add_event(default, ten + SLOT, ten + 2 * SLOT)
    delivered = await asyncio.to_thread(graph.wait_for_deliveries, sent + 1)
    assert delivered[-1]["status"] == 202
    second = await book(temporal_client, worker, engine, make_request(worker, uri, host=owner.did))
    assert second.start == ten + 2 * SLOT

    # reauthorizationRequired: Huddle renews (and so reauthorizes) the subscription.
    soon = datetime.now(UTC) + timedelta(minutes=5)
    subscription.expiration = soon
    graph.send_lifecycle(subscription.id, "reauthorizationRequired")
    await asyncio.to_thread(
        eventually, lambda: subscription.expiration > soon + timedelta(days=1), what="a renewed subscription"
    )
    # subscriptionRemoved: Huddle subscribes again.
    graph.send_lifecycle(subscription.id, "subscriptionRemoved")
    renewed = await asyncio.to_thread(
        eventually,
        lambda: [s for s in graph.subscriptions_for(default) if s.id != subscription.id],
        what="a new subscription",
    )
    assert len(renewed) == 1
    # missed: acknowledged; what changed is unknown, so the cache goes.
    graph.send_lifecycle(renewed[0].id, "missed")
    delivered = await asyncio.to_thread(graph.wait_for_deliveries, len(graph.deliveries))
    assert delivered[-1]["status"] == 202


def test_notifications_from_strangers_are_refused(engine: Engine, huddle_api: str) -> None:
    from clients.secrets import digest

    with session_scope(engine) as session:
        for cid, provider, secret, external in (
            ("chan-google", "google", "g-token", "resource-1"),
            ("chan-ms", "microsoft", "ms-state", "sub-1"),
        ):
            session.add(
                CalendarChannel(
                    id=cid,
                    connector_id=999,
                    provider=provider,
                    calendar_id="cal",
                    external_id=external,
                    token_digest=digest(secret),
                    expires_at=utcnow() + timedelta(days=1),
                )
            )
    hook = f"{huddle_api}/webhooks/google"

    def google(channel: str, token: str | None, state: str = "exists", resource: str = "resource-1") -> int:
        headers = {
            "X-Goog-Channel-ID": channel,
            "X-Goog-Resource-State": state,
            "X-Goog-Resource-ID": resource,
        }
        if token is not None:
            headers["X-Goog-Channel-Token"] = token
        return httpx.post(hook, headers=headers).status_code

    assert google("chan-google", "g-token", state="sync") == 200
    assert google("unknown-channel", "g-token") == 404
    assert google("chan-google", "wrong") == 403
    assert google("chan-google", None) == 403
    assert google("chan-google", "g-token", resource="another") == 403
    assert httpx.post(hook).status_code == 400

    ms = f"{huddle_api}/webhooks/microsoft"
    token = "Validation: Testing client application reachability <&> " + uuid.uuid4().hex
    echo = httpx.post(ms, params={"validationToken": token}, headers={"Content-Type": "text/plain"})
    assert (echo.status_code, echo.text) == (200, token)
    assert echo.headers["content-type"].startswith("text/plain")
    forged = {"value": [{"subscriptionId": "sub-1", "clientState": "guess", "changeType": "created"}]}
    assert httpx.post(ms, json=forged).status_code == 403
    unknown = {"value": [{"subscriptionId": "sub-2", "clientState": "ms-state-2", "changeType": "created"}]}
    assert httpx.post(ms, json=unknown).status_code == 403
    assert httpx.post(ms, content=b"not json").status_code == 400
