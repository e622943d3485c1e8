"""Real bookings through the BookingWorkflow: each transition mails exactly the expected messages."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from temporalio.client import Client

from api.booking_commands import send_command
from kernel.booking.ids import workflow_id
from kernel.booking.messages import CommandInput, RespondInput
from models.settings import REPO_ROOT, Settings
from tests.bookings.helpers import ALL_DAYS, HOST, book, final_view, make_request, offer_record, seed_offer
from tests.notifications.helpers import body, calendar_part, check_itip, row_states, vevent
from tests.notifications.smtp_peer import Received, SmtpPeer
from tests.replay.recorder import keep_history
from workflows.outbox_retry import OutboxRetryInput, OutboxRetryWorkflow

GUEST = "guest@example.test"
HOST_MAIL = "host@example.test"


async def _rows(engine: Engine, booking: str, keys: set[str], wait: float = 20) -> None:
    """Side effects run beside the booking: wait (bounded) until its outbox holds these rows."""
    deadline = asyncio.get_running_loop().time() + wait
    while not keys <= set(row_states(engine, booking)):
        assert asyncio.get_running_loop().time() < deadline, f"outbox: {row_states(engine, booking)}"
        await asyncio.sleep(0.1)


async def _mail(
    client: Client, settings: Settings, smtp: SmtpPeer, booking: str, count: int
) -> list[Received]:
    """Send what is waiting (the retry workflow, with no delay) and return the booking's mail so far."""
    await client.execute_workflow(
        OutboxRetryWorkflow.run,
        OutboxRetryInput(retry_after_seconds=0),
        id=f"outbox-retry-{uuid.uuid4().hex}",
        task_queue=settings.task_queue("notify"),
    )
    await asyncio.to_thread(smtp.wait_for, count, 5)
    await asyncio.sleep(0.3)  # room for an unexpected extra message to show up
    return [r for r in smtp.received if r.message["X-Huddle-Booking"] == booking]


def _kinds(received: list[Received]) -> list[tuple[str, str]]:
    return sorted((str(r.message["X-Huddle-Kind"]), r.rcpt_tos[0]) for r in received)


async def test_held_confirmed_cancelled(
    worker: Settings, engine: Engine, temporal_client: Client, smtp_server: SmtpPeer
) -> None:
    req = make_request(worker, seed_offer(engine, offer_record()), email=GUEST, reminder_minutes_before=0)
    assert (await book(temporal_client, worker, engine, req)).state == "held"
    await _rows(engine, req.booking_id, {"held:guest"})
    mail = await _mail(temporal_client, worker, smtp_server, req.booking_id, 1)
    assert _kinds(mail) == [("held", GUEST)]
    assert f"https://huddle.test/bookings/{req.booking_id}" in body(mail[0].message, "plain")

    await send_command(temporal_client, engine, req.booking_id, "finalize", CommandInput(req.guest_did))
    await _rows(engine, req.booking_id, {"confirmed:guest", "confirmed:host"})
    mail = await _mail(temporal_client, worker, smtp_server, req.booking_id, 3)
    assert _kinds(mail) == [("confirmed", GUEST), ("confirmed", HOST_MAIL), ("held", GUEST)]
    requests = [check_itip(calendar_part(r.message)[1], "REQUEST") for r in mail if calendar_part(r.message)]  # type: ignore[index]
    assert len(requests) == 2

    await send_command(temporal_client, engine, req.booking_id, "cancel", CommandInput(HOST, reason="ill"))
    await _rows(engine, req.booking_id, {"cancelled:guest", "cancelled:host"})
    mail = await _mail(temporal_client, worker, smtp_server, req.booking_id, 5)
    assert _kinds(mail) == [
        ("cancelled", GUEST),
        ("cancelled", HOST_MAIL),
        ("confirmed", GUEST),
        ("confirmed", HOST_MAIL),
        ("held", GUEST),
    ]
    cancels = [r for r in mail if r.message["X-Huddle-Kind"] == "cancelled"]
    for cancel in cancels:
        method, data = calendar_part(cancel.message) or ("", b"")
        event = vevent(check_itip(data, "CANCEL"))
        assert method == "CANCEL"
        assert event["UID"] == vevent(requests[0])["UID"] == f"{req.booking_id}@huddle.test"
        assert event.decoded("SEQUENCE") > vevent(requests[0]).decoded("SEQUENCE")
    assert (await final_view(temporal_client, req.booking_id)).state == "cancelled"


async def test_approval_asked_of_the_host_then_declined(
    worker: Settings, engine: Engine, temporal_client: Client, smtp_server: SmtpPeer
) -> None:
    uri = seed_offer(engine, offer_record(requiresApproval=True))
    req = make_request(worker, uri, email=GUEST, reminder_minutes_before=0)
    await book(temporal_client, worker, engine, req)
    await _rows(engine, req.booking_id, {"held:guest", "request_received:host"})
    mail = await _mail(temporal_client, worker, smtp_server, req.booking_id, 2)
    assert _kinds(mail) == [("held", GUEST), ("request_received", HOST_MAIL)]
    request = body(next(r for r in mail if r.rcpt_tos == [HOST_MAIL]).message, "plain")
    assert f"https://huddle.test/host/bookings/{req.booking_id}?decision=approve" in request

    await send_command(
        temporal_client, engine, req.booking_id, "respond", RespondInput(HOST, "decline", "away")
    )
    await _rows(engine, req.booking_id, {"declined:guest"})
    mail = await _mail(temporal_client, worker, smtp_server, req.booking_id, 3)
    assert _kinds(mail) == [("declined", GUEST), ("held", GUEST), ("request_received", HOST_MAIL)]
    declined = next(r for r in mail if r.message["X-Huddle-Kind"] == "declined")
    assert "Reason: away" in body(declined.message, "plain")


async def test_expired_hold(
    worker: Settings, engine: Engine, temporal_client: Client, smtp_server: SmtpPeer
) -> None:
    req = make_request(worker, seed_offer(engine, offer_record()), email=GUEST, hold_seconds=4)
    await book(temporal_client, worker, engine, req)
    await _rows(engine, req.booking_id, {"held:guest"})
    assert _kinds(await _mail(temporal_client, worker, smtp_server, req.booking_id, 1)) == [("held", GUEST)]
    assert (await final_view(temporal_client, req.booking_id)).state == "expired"
    # The booking sends the notice itself before it ends: no retry sweep runs for it here.
    assert row_states(engine, req.booking_id) == {"held:guest": "sent", "expired:guest": "sent"}
    await asyncio.to_thread(smtp_server.wait_for, 2, 5)
    mail = [r for r in smtp_server.received if r.message["X-Huddle-Booking"] == req.booking_id]
    assert _kinds(mail) == [("expired", GUEST), ("held", GUEST)]


async def test_a_refused_guest_address_leaves_the_booking_confirmed(
    worker: Settings, engine: Engine, temporal_client: Client, smtp_server: SmtpPeer
) -> None:
    smtp_server.recorder.refuse_rcpt[GUEST] = "550 5.1.1 no such mailbox"
    req = make_request(worker, seed_offer(engine, offer_record()), email=GUEST, reminder_minutes_before=0)
    await book(temporal_client, worker, engine, req)
    await _rows(engine, req.booking_id, {"held:guest"})
    assert await _mail(temporal_client, worker, smtp_server, req.booking_id, 1) == []
    confirmed = await send_command(
        temporal_client, engine, req.booking_id, "finalize", CommandInput(req.guest_did)
    )
    assert confirmed.state == "confirmed"
    await _rows(engine, req.booking_id, {"confirmed:guest", "confirmed:host"})
    mail = await _mail(temporal_client, worker, smtp_server, req.booking_id, 1)
    assert _kinds(mail) == [("confirmed", HOST_MAIL)]
    assert row_states(engine, req.booking_id) == {
        "held:guest": "failed",
        "confirmed:guest": "failed",
        "confirmed:host": "sent",
    }
    view = await send_command(temporal_client, engine, req.booking_id, "cancel", CommandInput(req.guest_did))
    assert view.state == "cancelled"  # the booking went on as if nothing happened


@pytest.mark.history
async def test_reminder_before_the_meeting(
    worker: Settings, engine: Engine, temporal_client: Client, smtp_server: SmtpPeer
) -> None:
    # A window opening two minutes from now (UTC): the slot starts there, the reminder a minute before.
    now = datetime.now(UTC)
    opens = (now + timedelta(minutes=2)).replace(second=0, microsecond=0)
    if opens.date() != now.date() or (opens.hour == 23 and opens.minute >= 30):
        pytest.skip("too close to midnight UTC for a same-day window")
    closes = opens + timedelta(minutes=30)
    window = {"days": ALL_DAYS, "start": f"{opens:%H:%M}", "end": f"{closes:%H:%M}"}
    uri = seed_offer(engine, offer_record(windows=[window]))
    req = make_request(worker, uri, email=GUEST, reminder_minutes_before=1)
    held = await book(temporal_client, worker, engine, req)
    assert held.start == opens
    await send_command(temporal_client, engine, req.booking_id, "finalize", CommandInput(req.guest_did))
    await _rows(engine, req.booking_id, {"reminder:guest", "reminder:host"}, wait=150)
    mail = await _mail(temporal_client, worker, smtp_server, req.booking_id, 5)
    reminders = [r for r in mail if r.message["X-Huddle-Kind"] == "reminder"]
    assert sorted(r.rcpt_tos[0] for r in reminders) == [GUEST, HOST_MAIL]
    assert all(str(r.message["Subject"]).startswith("Reminder: Office hours with ") for r in reminders)
    assert all(calendar_part(r.message) is None for r in reminders)  # no new invitation, no SEQUENCE bump
    await keep_history(temporal_client, workflow_id(req.booking_id), "booking-reminded-before-the-meeting")


_WORKFLOW_SENDS = "send_notifications" in (REPO_ROOT / "workflows" / "booking.py").read_text()


@pytest.mark.skipif(not _WORKFLOW_SENDS, reason="workflows/booking.py does not run send_notifications yet")
async def test_the_booking_workflow_sends_its_own_mail(
    worker: Settings, engine: Engine, temporal_client: Client, smtp_server: SmtpPeer
) -> None:
    """No retry sweep here: each step's mail goes out from the booking's own send_notifications."""
    req = make_request(worker, seed_offer(engine, offer_record()), email=GUEST, reminder_minutes_before=0)
    await book(temporal_client, worker, engine, req)
    held = await asyncio.to_thread(smtp_server.wait_for, 1, 20)
    assert _kinds(held) == [("held", GUEST)]
    await send_command(temporal_client, engine, req.booking_id, "finalize", CommandInput(req.guest_did))
    mail = await asyncio.to_thread(smtp_server.wait_for, 3, 20)
    await asyncio.sleep(0.5)
    assert _kinds(list(smtp_server.received)) == [
        ("confirmed", GUEST),
        ("confirmed", HOST_MAIL),
        ("held", GUEST),
    ]
    assert all(calendar_part(r.message) for r in mail if r.message["X-Huddle-Kind"] == "confirmed")
    assert set(row_states(engine, req.booking_id).values()) == {"sent"}
