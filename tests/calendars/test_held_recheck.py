"""A held booking whose time the host's calendar takes is moved to the next free slot, or released."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client

from api.booking_commands import send_command
from kernel.booking.ids import workflow_id
from kernel.booking.messages import CommandInput, RespondInput
from kernel.lexicon.views import BookingView
from models.booking_store import host_bookings
from models.settings import Settings
from models.types import utcnow
from tests.bookings.helpers import (
    audit_actions,
    book,
    final_view,
    five_slot_record,
    make_request,
    outbox,
    projection,
    seed_offer,
)
from tests.calendars.helpers import Owner, active_channels, eventually
from tests.emulators.google import GoogleEmulator
from tests.replay.recorder import keep_history

SLOT = timedelta(minutes=30)


def _ten_tomorrow() -> datetime:
    day = (utcnow() + timedelta(days=1)).date()
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=UTC)


async def _connected(owner: Owner, google: GoogleEmulator, engine: Engine) -> str:
    account = google.add_account(f"host-{uuid.uuid4().hex[:8]}@gmail.test")
    view = await asyncio.to_thread(owner.connect_google, google, account)
    await asyncio.to_thread(eventually, lambda: active_channels(engine, view["id"]), what="a watch channel")
    return account


def _starts_at(events: list[dict[str, object]], when: datetime) -> list[dict[str, object]]:
    stamp = when.strftime("%Y-%m-%dT%H:%M")
    return [e for e in events if str(e["start"]["dateTime"]).startswith(stamp)]  # type: ignore[index]


@pytest.mark.history
async def test_a_held_slot_the_host_gets_busy_in_moves_and_the_guest_finalizes_again(
    worker: Settings, engine: Engine, temporal_client: Client, owner: Owner, google: GoogleEmulator
) -> None:
    ten = _ten_tomorrow()
    account = await _connected(owner, google, engine)
    uri = seed_offer(engine, five_slot_record(requiresApproval=True), host=owner.did)
    request = make_request(worker, uri, host=owner.did, hold_seconds=600)
    held = await book(temporal_client, worker, engine, request)
    assert (held.state, held.start) == ("held", ten)
    finalized = await send_command(
        temporal_client, engine, request.booking_id, "finalize", CommandInput(request.guest_did)
    )
    assert list(finalized.awaiting) == ["host"]

    google.add_event(account, ten, ten + SLOT)  # the host takes 10:00 for something else

    moved = await asyncio.to_thread(
        eventually,
        lambda: (row := projection(engine, request.booking_id)).start_at != ten and row,
        what="the hold moved",
    )
    assert moved.state == "held"
    assert moved.start_at == ten + SLOT  # the next free slot, not some later one
    assert moved.awaiting == ["guest", "host"]  # the guest agreed to 10:00, not to 10:30
    assert moved.hold_expires_at is not None and held.hold_expires_at is not None
    assert moved.hold_expires_at >= held.hold_expires_at
    assert "hold_moved" in audit_actions(engine, request.booking_id)
    await asyncio.to_thread(
        eventually, lambda: ("hold_moved", "guest") in outbox(engine, request.booking_id), what="mail"
    )
    view = await temporal_client.get_workflow_handle(moved.workflow_id).query("view", result_type=BookingView)
    assert view.start == ten + SLOT and list(view.awaiting) == ["guest", "host"]

    again = await send_command(
        temporal_client, engine, request.booking_id, "finalize", CommandInput(request.guest_did)
    )
    assert list(again.awaiting) == ["host"]
    confirmed = await send_command(
        temporal_client,
        engine,
        request.booking_id,
        "respond",
        RespondInput(caller_did=owner.did, decision="approve"),
    )
    assert (confirmed.state, confirmed.start) == ("confirmed", ten + SLOT)
    created = await asyncio.to_thread(
        eventually,
        lambda: _starts_at(google.live_events(account), ten + SLOT),
        timeout=60,
        what="the event at the new time",
    )
    assert len(created) == 1
    assert len(_starts_at(google.live_events(account), ten)) == 1  # only the host's own event at 10:00
    await keep_history(temporal_client, moved.workflow_id, "booking-recheck-moved-then-confirmed")


@pytest.mark.history
async def test_a_held_slot_with_nowhere_to_go_is_released(
    worker: Settings, engine: Engine, temporal_client: Client, owner: Owner, google: GoogleEmulator
) -> None:
    ten = _ten_tomorrow()
    account = await _connected(owner, google, engine)
    google.add_event(account, ten + SLOT, ten + 5 * SLOT)  # only 10:00 is free
    uri = seed_offer(engine, five_slot_record(), host=owner.did)
    request = make_request(worker, uri, host=owner.did, hold_seconds=600)
    held = await book(temporal_client, worker, engine, request)
    assert (held.state, held.start) == ("held", ten)

    google.add_event(account, ten, ten + SLOT)

    final = await asyncio.wait_for(final_view(temporal_client, request.booking_id), timeout=60)
    assert final.state == "unavailable"
    assert final.reason is not None and "host is now busy" in final.reason
    row = projection(engine, request.booking_id)
    assert row.state == "unavailable" and row.reason == final.reason
    assert audit_actions(engine, request.booking_id)[-1] == "hold_lost"
    await asyncio.to_thread(
        eventually, lambda: ("hold_lost", "guest") in outbox(engine, request.booking_id), what="mail"
    )
    # The host's time is no longer taken by the booking.
    with Session(engine) as session:
        assert host_bookings(session, owner.did, ten, ten + 5 * SLOT) == []
    await keep_history(temporal_client, workflow_id(request.booking_id), "booking-recheck-hold-lost")


async def test_a_rate_limited_busy_read_waits_as_long_as_the_provider_asks_and_still_holds(
    worker: Settings, engine: Engine, temporal_client: Client, owner: Owner, google: GoogleEmulator
) -> None:
    ten = _ten_tomorrow()
    account = await _connected(owner, google, engine)
    google.add_event(account, ten, ten + SLOT)
    freebusy = r"/freeBusy$"
    fault = google.faults.add("POST", freebusy, status=429, headers={"Retry-After": "2"})
    uri = seed_offer(engine, five_slot_record(), host=owner.did)
    held = await book(temporal_client, worker, engine, make_request(worker, uri, host=owner.did))
    assert (held.state, held.start) == ("held", ten + SLOT)  # 10:00 is busy: the calendar was read
    assert fault.hits == 1
    served = google.faults.served("POST", freebusy)
    throttled = next(i for i, (status, _) in enumerate(served) if status == 429)
    assert served[throttled + 1][1] - served[throttled][1] >= 1.9
