"""Calendars in the real booking workflow: busy times from all three providers, events written once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.client import Client

from api.booking_commands import send_command
from kernel.booking.ids import workflow_id
from kernel.booking.messages import CommandInput
from models.calendar_tables import CalendarEvent
from models.settings import Settings
from models.tables import OutboxMessage
from models.types import utcnow
from tests.bookings.helpers import book, five_slot_record, make_request, seed_offer
from tests.calendars.caldav_util import add_caldav_event, caldav_events
from tests.calendars.helpers import Owner, eventually
from tests.emulators.fixtures import Radicale, radicale_calendars
from tests.emulators.google import GoogleEmulator
from tests.emulators.graph import GraphEmulator
from tests.emulators.server import TlsFiles
from tests.replay.recorder import keep_history


def _ten_tomorrow() -> datetime:
    day = (utcnow() + timedelta(days=1)).date()
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=UTC)


def _unique(prefix: str, domain: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@{domain}"


async def test_busy_blocks_in_every_provider_are_never_offered(
    worker: Settings,
    engine: Engine,
    temporal_client: Client,
    owner: Owner,
    google: GoogleEmulator,
    graph: GraphEmulator,
    tls_files: TlsFiles,
    radicale_server: Radicale,
) -> None:
    ten = _ten_tomorrow()
    slot = timedelta(minutes=30)
    account = google.add_account(_unique("host", "gmail.test"))
    google.add_event(account, ten, ten + slot)
    upn = _unique("host", "contoso.test")
    default = graph.add_user(upn)
    graph.add_event(default, ten + slot, ten + 2 * slot)
    user, password = radicale_server.account()
    (work,) = radicale_calendars(radicale_server, user, password, ("Work",))
    add_caldav_event(radicale_server.url, user, password, work, ten + 2 * slot, ten + 3 * slot)
    # Free in every provider's eyes: a transparent event, a declined invitation, a cancelled one.
    google.add_event(account, ten + 3 * slot, ten + 4 * slot, transparency="transparent")
    add_caldav_event(
        radicale_server.url, user, password, work, ten + 3 * slot, ten + 4 * slot, my_partstat="DECLINED"
    )
    graph.add_event(default, ten + 4 * slot, ten + 5 * slot, show_as="free")

    await asyncio.to_thread(owner.connect_google, google, account)
    await asyncio.to_thread(owner.connect_microsoft, graph, tls_files, upn)
    resp = await asyncio.to_thread(owner.connect_caldav, radicale_server.url, user, password)
    assert resp.status_code == 200, resp.text

    uri = seed_offer(engine, five_slot_record(), host=owner.did)
    starts = []
    for _ in range(3):
        view = await book(temporal_client, worker, engine, make_request(worker, uri, host=owner.did))
        starts.append(view.start if view.state == "held" else view.state)
    assert starts == [ten + 3 * slot, ten + 4 * slot, "unavailable"]

    connectors = await asyncio.to_thread(owner.connectors)
    assert {c["provider"]: c["state"] for c in connectors} == {
        "google": "ok",
        "microsoft": "ok",
        "caldav": "ok",
    }
    assert all("lastSyncAt" in c for c in connectors)


async def test_a_confirmed_booking_lands_once_in_the_chosen_calendars_despite_failures(
    worker: Settings,
    engine: Engine,
    temporal_client: Client,
    owner: Owner,
    google: GoogleEmulator,
    graph: GraphEmulator,
    tls_files: TlsFiles,
    radicale_server: Radicale,
) -> None:
    team = _unique("team", "group.test")
    account = google.add_account(_unique("host", "gmail.test"), others=(team,))
    upn = _unique("host", "contoso.test")
    default = graph.add_user(upn, others=("Bookings",))
    bookings_cal = graph.calendar_named(upn, "Bookings")
    user, password = radicale_server.account()
    home, meetings = radicale_calendars(radicale_server, user, password, ("Home", "Meetings"))
    g = await asyncio.to_thread(owner.connect_google, google, account)
    m = await asyncio.to_thread(owner.connect_microsoft, graph, tls_files, upn)
    c = (await asyncio.to_thread(owner.connect_caldav, radicale_server.url, user, password)).json()[
        "connector"
    ]
    await asyncio.to_thread(owner.choose, g["id"], event=team)
    await asyncio.to_thread(owner.choose, m["id"], event=bookings_cal)
    await asyncio.to_thread(owner.choose, c["id"], event=meetings)

    inserts, creates = r"/calendars/[^/]+/events$", r"/me/calendars/[^/]+/events$"
    faults = [
        google.faults.add("POST", inserts, status=429, headers={"Retry-After": "2"}),
        google.faults.add("POST", inserts, status=503),
        google.faults.add("POST", inserts, lose_response=5.0),  # done, but the answer comes too late
        graph.faults.add("POST", creates, status=503),
        graph.faults.add("POST", creates, status=429, headers={"Retry-After": "1"}),
        graph.faults.add("POST", creates, lose_response=5.0),
    ]

    uri = seed_offer(engine, five_slot_record(), host=owner.did)
    request = make_request(worker, uri, host=owner.did)
    held = await book(temporal_client, worker, engine, request)
    assert held.state == "held"
    confirmed = await send_command(
        temporal_client, engine, request.booking_id, "finalize", CommandInput(request.guest_did)
    )
    assert confirmed.state == "confirmed"

    def written() -> bool:
        with Session(engine) as session:
            rows = session.exec(
                select(CalendarEvent).where(CalendarEvent.booking_id == request.booking_id)
            ).all()
        return len(rows) == 3 and all(r.state == "created" for r in rows)

    await asyncio.to_thread(eventually, written, timeout=90, what="events written to all three calendars")
    assert len(google.live_events(team)) == 1 and google.live_events(account) == []
    assert len(graph.live_events(bookings_cal)) == 1 and graph.live_events(default) == []
    assert len(caldav_events(radicale_server.url, user, password, meetings)) == 1
    assert caldav_events(radicale_server.url, user, password, home) == []
    assert held.start is not None
    assert google.live_events(team)[0]["start"]["dateTime"].startswith(held.start.strftime("%Y-%m-%dT%H:%M"))
    assert [f.hits for f in faults] == [1] * len(faults)
    # The 429's Retry-After was honoured: the next attempt came no sooner.
    served = google.faults.served("POST", inserts)
    throttled = next(i for i, (status, _) in enumerate(served) if status == 429)
    assert served[throttled + 1][1] - served[throttled][1] >= 1.9

    cancelled = await send_command(
        temporal_client, engine, request.booking_id, "cancel", CommandInput(request.guest_did)
    )
    assert cancelled.state == "cancelled"
    await asyncio.to_thread(
        eventually,
        lambda: (
            not google.live_events(team)
            and not graph.live_events(bookings_cal)
            and not caldav_events(radicale_server.url, user, password, meetings)
        ),
        timeout=60,
        what="events removed after the cancel",
    )


@pytest.mark.history
async def test_a_revoked_grant_makes_the_host_unavailable_not_free(
    worker: Settings, engine: Engine, temporal_client: Client, owner: Owner, google: GoogleEmulator
) -> None:
    account = google.add_account(_unique("host", "gmail.test"))
    view = await asyncio.to_thread(owner.connect_google, google, account)
    google.revoke(account)

    uri = seed_offer(engine, five_slot_record(), host=owner.did)
    result = await book(temporal_client, worker, engine, make_request(worker, uri, host=owner.did))
    assert result.state == "unavailable" and result.start is None
    await keep_history(temporal_client, workflow_id(result.id), "booking-calendar-unreadable")

    shown = await asyncio.to_thread(owner.connector, view["id"])
    assert shown["state"] == "needs_reauth" and "invalid_grant" in shown["stateReason"]
    with Session(engine) as session:
        notices = session.exec(
            select(OutboxMessage).where(OutboxMessage.kind == "calendar_needs_reauth")
        ).all()
    assert [n.payload["connectorId"] for n in notices] == [view["id"]]
