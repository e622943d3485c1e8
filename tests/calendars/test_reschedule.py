"""Rescheduling a confirmed booking: a new time picked by Huddle, the calendar event moved (not
duplicated), both people sent an updated invitation; refused or unchanged when it cannot be done."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import Engine
from temporalio.client import Client

from api.booking_commands import BookingCommandError, send_command
from clients.mail.sink import MailSink
from kernel.booking.ids import workflow_id
from kernel.booking.messages import CommandInput, RescheduleInput
from models.settings import Settings
from models.types import utcnow
from tests.bookings.helpers import audit_actions, book, five_slot_record, make_request, projection, seed_offer
from tests.calendars.helpers import Owner, active_channels, eventually
from tests.emulators.google import GoogleEmulator
from tests.replay.recorder import keep_history

SLOT = timedelta(minutes=30)


def _ten_tomorrow() -> datetime:
    day = (utcnow() + timedelta(days=1)).date()
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=UTC)


def _at(events: list[dict[str, object]], when: datetime) -> list[dict[str, object]]:
    stamp = when.strftime("%Y-%m-%dT%H:%M")
    return [e for e in events if str(e["start"]["dateTime"]).startswith(stamp)]  # type: ignore[index]


async def _confirmed_with_event(
    worker: Settings,
    engine: Engine,
    client: Client,
    owner: Owner,
    google: GoogleEmulator,
    busy: tuple[tuple[datetime, datetime], ...] = (),
) -> tuple[str, str, str]:
    """A host with Google connected and a booking confirmed at 10:00 whose event is written."""
    account = google.add_account(f"host-{uuid.uuid4().hex[:8]}@gmail.test")
    view = await asyncio.to_thread(owner.connect_google, google, account)
    await asyncio.to_thread(eventually, lambda: active_channels(engine, view["id"]), what="a watch channel")
    for start, end in busy:
        google.add_event(account, start, end)
    uri = seed_offer(engine, five_slot_record(), host=owner.did)
    request = make_request(worker, uri, host=owner.did)
    held = await book(client, worker, engine, request)
    assert held.start == _ten_tomorrow()
    confirmed = await send_command(
        client, engine, request.booking_id, "finalize", CommandInput(request.guest_did)
    )
    assert confirmed.state == "confirmed"
    await asyncio.to_thread(
        eventually, lambda: _at(google.live_events(account), _ten_tomorrow()), timeout=60, what="the event"
    )
    return account, request.booking_id, request.guest_did


def _invitations(sink: MailSink, booking: str, kind: str) -> dict[str, Calendar]:
    found = {}
    for entry in sink.messages(booking_id=booking):
        if entry.kind == kind:
            message = sink.read(entry.name)
            assert message is not None and message.calendar is not None
            found[entry.recipient] = Calendar.from_ical(message.calendar)
    return found


@pytest.mark.history
async def test_the_guest_reschedules_and_the_event_and_invitations_follow(
    worker: Settings, engine: Engine, temporal_client: Client, owner: Owner, google: GoogleEmulator
) -> None:
    ten = _ten_tomorrow()
    account, booking, guest = await _confirmed_with_event(worker, engine, temporal_client, owner, google)
    (event,) = _at(google.live_events(account), ten)

    moved = await send_command(
        temporal_client, engine, booking, "reschedule", RescheduleInput(guest, reason="a clash")
    )
    assert (moved.state, moved.start) == ("confirmed", ten + SLOT)  # the next free time, never 10:00
    row = projection(engine, booking)
    assert (row.state, row.start_at, row.end_at) == ("confirmed", ten + SLOT, ten + 2 * SLOT)
    assert audit_actions(engine, booking)[-1] == "rescheduled"

    def event_moved() -> bool:
        return bool(_at(google.live_events(account), ten + SLOT)) and not _at(
            google.live_events(account), ten
        )

    await asyncio.to_thread(eventually, event_moved, timeout=60, what="the event moved")
    (after,) = google.live_events(account)
    assert after["id"] == event["id"]  # the same event, updated in place

    sink = MailSink(worker.mail_sink_dir)
    first = _invitations(sink, booking, "confirmed")
    updated = await asyncio.to_thread(
        eventually,
        lambda: (
            len(_invitations(sink, booking, "rescheduled")) == 2
            and _invitations(sink, booking, "rescheduled")
        ),
        what="updated invitations to both",
    )
    for recipient, calendar in updated.items():
        old, new = first[recipient].events[0], calendar.events[0]
        assert calendar["METHOD"] == "REQUEST"
        assert new["UID"] == old["UID"] and int(new["SEQUENCE"]) > int(old["SEQUENCE"])
        assert new.decoded("DTSTART") == ten + SLOT
    guest_mail = next(
        e for e in sink.messages(booking_id=booking) if e.kind == "rescheduled" and "guest" in e.recipient
    )
    text = sink.read(guest_mail.name)
    assert text is not None and text.text is not None
    assert "You moved" in text.text and "a clash" in text.text

    # A cancel now removes the moved event.
    await send_command(temporal_client, engine, booking, "cancel", CommandInput(owner.did))
    await asyncio.to_thread(eventually, lambda: not google.live_events(account), timeout=60, what="removal")
    await keep_history(temporal_client, workflow_id(booking), "booking-rescheduled-then-cancelled")


@pytest.mark.history
async def test_with_no_other_free_time_the_booking_keeps_its_time(
    worker: Settings, engine: Engine, temporal_client: Client, owner: Owner, google: GoogleEmulator
) -> None:
    ten = _ten_tomorrow()
    account, booking, _ = await _confirmed_with_event(
        worker, engine, temporal_client, owner, google, busy=((ten + SLOT, ten + 5 * SLOT),)
    )
    with pytest.raises(BookingCommandError) as refused:
        await send_command(temporal_client, engine, booking, "reschedule", RescheduleInput(owner.did))
    assert (refused.value.status, refused.value.error) == (409, "NoSlotAvailable")
    assert "keeps its time" in str(refused.value)
    row = projection(engine, booking)
    assert (row.state, row.start_at) == ("confirmed", ten)
    assert len(_at(google.live_events(account), ten)) == 1
    await keep_history(temporal_client, workflow_id(booking), "booking-reschedule-refused-no-slot")


async def test_only_a_confirmed_booking_of_ones_own_can_be_rescheduled(
    worker: Settings, engine: Engine, temporal_client: Client, owner: Owner
) -> None:
    uri = seed_offer(engine, five_slot_record(), host=owner.did)
    request = make_request(worker, uri, host=owner.did)
    await book(temporal_client, worker, engine, request)
    for caller, expected in ((request.guest_did, 409), ("did:plc:stranger", 403)):
        with pytest.raises(BookingCommandError) as refused:
            await send_command(
                temporal_client, engine, request.booking_id, "reschedule", RescheduleInput(caller)
            )
        assert refused.value.status == expected
    assert projection(engine, request.booking_id).state == "held"
