"""Connector upkeep (ConnectorMaintenanceWorkflow): tokens refreshed, channels renewed, events caught up."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.client import Client

from activities.calendar_wiring import calendar_schedules, maintenance_workflow_id, request_maintenance
from api.booking_commands import send_command
from kernel.booking.messages import CommandInput
from models.calendar_tables import CalendarEvent
from models.settings import Settings
from models.tables import CalendarConnector
from tests.bookings.helpers import book, five_slot_record, make_request, seed_offer
from tests.calendars.conftest import calendar_settings
from tests.calendars.helpers import Owner, active_channels, eventually
from tests.emulators.google import GoogleEmulator
from tests.emulators.graph import GraphEmulator
from tests.emulators.server import TlsFiles
from tests.replay.recorder import keep_history
from workflows.connector_maintenance import ConnectorMaintenanceWorkflow
from workflows.connector_messages import MaintenanceInput, MaintenanceReport


@pytest.fixture
def settings(
    database_url: str,
    temporal_client: Client,
    google: GoogleEmulator,
    graph: GraphEmulator,
    tls_files: TlsFiles,
    api_port: int,
) -> Settings:
    """Every maintenance run finds tokens and channels due (they expire within the margins)."""
    return calendar_settings(
        database_url,
        temporal_client,
        google,
        graph,
        tls_files,
        api_port,
        calendar_token_refresh_before_seconds=2 * 3600,
        calendar_channel_renew_before_seconds=8 * 24 * 3600,
    )


async def _maintain(
    client: Client, settings: Settings, *ids: int, run_id: str | None = None
) -> list[MaintenanceReport]:
    return await client.execute_workflow(
        ConnectorMaintenanceWorkflow.run,
        MaintenanceInput(connector_ids=list(ids) or None),
        id=run_id or f"maintenance-{uuid.uuid4().hex}",
        task_queue=settings.task_queue("calendar"),
    )


@pytest.mark.history
async def test_maintenance_refreshes_tokens_and_replaces_channels(
    worker: Settings,
    engine: Engine,
    temporal_client: Client,
    owner: Owner,
    google: GoogleEmulator,
    graph: GraphEmulator,
    tls_files: TlsFiles,
) -> None:
    account = google.add_account(f"host-{uuid.uuid4().hex[:8]}@gmail.test")
    upn = f"host-{uuid.uuid4().hex[:8]}@contoso.test"
    default = graph.add_user(upn)
    g = await asyncio.to_thread(owner.connect_google, google, account)
    m = await asyncio.to_thread(owner.connect_microsoft, graph, tls_files, upn)
    await asyncio.to_thread(eventually, lambda: active_channels(engine, g["id"]), what="the Google channel")
    await asyncio.to_thread(
        eventually, lambda: active_channels(engine, m["id"]), what="the Graph subscription"
    )
    first_channel = google.active_channels(account)[0].id
    (subscription,) = graph.subscriptions_for(default)
    with Session(engine) as session:
        expiry_before = session.get(CalendarConnector, g["id"]).token_expires_at  # type: ignore[union-attr]

    every = f"maintenance-{uuid.uuid4().hex}"
    reports = {r.connector_id: r for r in await _maintain(temporal_client, worker, run_id=every)}
    await keep_history(temporal_client, every, "connector-maintenance-refreshes-and-renews")
    assert reports[g["id"]].token_refreshed and reports[m["id"]].token_refreshed
    assert (reports[g["id"]].channels_created, reports[g["id"]].channels_stopped) == (1, 1)
    assert reports[m["id"]].channels_renewed == 1
    # Google: a new channel, the old one stopped at Google too. Graph: the same subscription, extended.
    assert [c.id for c in google.active_channels(account)] != [first_channel]
    assert len(google.active_channels(account)) == 1
    assert [s.id for s in graph.subscriptions_for(default)] == [subscription.id]
    with Session(engine) as session:
        expiry_after = session.get(CalendarConnector, g["id"]).token_expires_at  # type: ignore[union-attr]
    assert expiry_before is not None and expiry_after is not None and expiry_after >= expiry_before

    google.revoke(account)
    reports = {r.connector_id: r for r in await _maintain(temporal_client, worker, g["id"])}
    assert reports[g["id"]].skipped == "needs_reauth"
    shown = await asyncio.to_thread(owner.connector, g["id"])
    assert shown["state"] == "needs_reauth"


async def test_events_a_broken_connector_missed_are_written_after_reconnecting(
    worker: Settings, engine: Engine, temporal_client: Client, owner: Owner, google: GoogleEmulator
) -> None:
    account = google.add_account(f"host-{uuid.uuid4().hex[:8]}@gmail.test")
    view = await asyncio.to_thread(owner.connect_google, google, account)
    uri = seed_offer(engine, five_slot_record(), host=owner.did)
    request = make_request(worker, uri, host=owner.did)
    assert (await book(temporal_client, worker, engine, request)).state == "held"
    google.revoke(account)  # the host revokes access between hold and confirmation
    confirmed = await send_command(
        temporal_client, engine, request.booking_id, "finalize", CommandInput(request.guest_did)
    )
    assert confirmed.state == "confirmed"  # the booking does not wait for the calendar

    def row() -> CalendarEvent | None:
        with Session(engine) as session:
            return session.exec(
                select(CalendarEvent).where(CalendarEvent.booking_id == request.booking_id)
            ).first()

    waiting = await asyncio.to_thread(
        eventually, lambda: (r := row()) and r.reason and r, what="a waiting event row"
    )
    assert waiting.state == "pending" and google.live_events(account) == []
    assert (await asyncio.to_thread(owner.connector, view["id"]))["eventsWaiting"] == 1

    await asyncio.to_thread(owner.connect_google, google, account)  # the host reconnects
    await asyncio.to_thread(
        eventually,
        lambda: (r := row()) is not None and r.state == "created",
        what="the event written",
        timeout=60,
    )
    assert len(google.live_events(account)) == 1


def test_the_schedule_runs_maintenance_on_the_calendar_queue(settings: Settings) -> None:
    ((schedule_id, schedule),) = calendar_schedules(settings)
    assert schedule_id.endswith("connector-maintenance")
    assert schedule.action.task_queue == settings.task_queue("calendar")  # type: ignore[attr-defined]
    assert schedule.spec.intervals[0].every == timedelta(
        seconds=settings.calendar_maintenance_interval_seconds
    )


@pytest.mark.history
async def test_a_request_while_maintenance_runs_gets_a_pass_of_its_own(
    worker: Settings, engine: Engine, temporal_client: Client, owner: Owner, google: GoogleEmulator
) -> None:
    """A lifecycle notification (or new calendars chosen) while the connector's maintenance is
    mid-way must not be folded into a pass that is already past the step it needs."""
    account = google.add_account(f"host-{uuid.uuid4().hex[:8]}@gmail.test")
    view = await asyncio.to_thread(owner.connect_google, google, account)
    await asyncio.to_thread(eventually, lambda: active_channels(engine, view["id"]), what="the channel")
    handle = temporal_client.get_workflow_handle(maintenance_workflow_id(worker, view["id"]))
    await handle.result()  # the connect's own maintenance is over
    watched = google.faults.count("POST", "events/watch")

    google.faults.add("POST", "events/watch", status=503, times=2)  # the first pass retries ~3 s
    await request_maintenance(temporal_client, worker, view["id"], force_channels=True)
    await asyncio.to_thread(
        eventually, lambda: google.faults.count("POST", "events/watch") > watched, what="the first pass"
    )
    await request_maintenance(temporal_client, worker, view["id"], force_channels=True)
    await handle.result()

    passes = [
        e
        async for e in handle.fetch_history_events()
        if e.activity_task_scheduled_event_attributes.activity_type.name == "maintain_connector"
    ]
    assert len(passes) == 2
    # Each pass replaced the channel: two successful watches after the two refused ones.
    assert [s for s, _ in google.faults.served("POST", "events/watch")][-4:] == [503, 503, 200, 200]
    assert len(active_channels(engine, view["id"])) == 1
    await keep_history(temporal_client, handle.id, "connector-maintenance-runs-again-on-request")
