"""Sending outbox rows over a real SMTP server: exactly once through outages, refusals and crashes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, update
from sqlmodel import col
from temporalio.exceptions import ApplicationError

from clients.mail.message import MailIdentity, message_id
from clients.mail.outbox import UNCONFIRMED_NOTE, OutboxSender, sender_from_settings
from clients.mail.sink import MailSink
from models.db import session_scope
from models.settings import REPO_ROOT, Settings
from models.tables import Booking, OutboxMessage
from tests.notifications.helpers import (
    GUEST_EMAIL,
    HOST_EMAIL,
    activities,
    audit,
    effect,
    row_states,
    rows,
    seed_booking,
)
from tests.notifications.smtp_peer import SmtpPeer
from workflows.outbox_retry import OutboxRetryInput


def _sender(engine: Engine, settings: Settings, now: datetime | None = None) -> OutboxSender:
    base = sender_from_settings(engine, settings)
    clock = (lambda: now) if now else (lambda: datetime.now(UTC))
    return OutboxSender(engine, base.transport, base.identity, stale_after=base.stale_after, clock=clock)


def _confirmed(engine: Engine, settings: Settings, **seed: object) -> str:
    booking = seed_booking(engine, **seed)  # type: ignore[arg-type]
    activities(engine, settings).enqueue_notifications(effect(booking, "confirmed"))
    return booking


def test_each_message_goes_out_once_with_its_message_id(
    engine: Engine, settings: Settings, smtp_server: SmtpPeer
) -> None:
    booking = _confirmed(engine, settings)
    acts = activities(engine, settings)
    assert acts.send_notifications(effect(booking, "confirmed")) == 2
    assert acts.send_notifications(effect(booking, "confirmed")) == 0  # a retried activity sends nothing
    received = smtp_server.received
    assert sorted(r.rcpt_tos[0] for r in received) == [GUEST_EMAIL, HOST_EMAIL]
    assert {r.message_id for r in received} == {
        message_id(f"{booking}:confirmed:guest", "huddle.test"),
        message_id(f"{booking}:confirmed:host", "huddle.test"),
    }
    assert all(r.mail_from == "no-reply@huddle.test" for r in received)
    assert row_states(engine, booking) == {"confirmed:guest": "sent", "confirmed:host": "sent"}
    assert all(
        r.sent_at is not None and r.attempts == 1 and r.last_error is None for r in rows(engine, booking)
    )


def test_a_permanently_refused_recipient_is_recorded_and_the_rest_goes_out(
    engine: Engine, settings: Settings, smtp_server: SmtpPeer
) -> None:
    smtp_server.recorder.refuse_rcpt[GUEST_EMAIL] = "550 5.1.1 <guest@example.test>: no such user"
    booking = _confirmed(engine, settings)
    # Does not raise: a refusal for good is not retried, and the booking is not the mail's business.
    assert activities(engine, settings).send_notifications(effect(booking, "confirmed")) == 1
    assert [r.rcpt_tos for r in smtp_server.received] == [[HOST_EMAIL]]
    guest_row = next(r for r in rows(engine, booking) if r.recipient == GUEST_EMAIL)
    assert guest_row.state == "failed" and guest_row.attempts == 1
    assert guest_row.last_error == "RCPT TO: 550 5.1.1 <guest@example.test>: no such user"
    [failure] = [e for e in audit(engine, booking) if e.action == "notification_failed"]
    assert failure.detail["role"] == "guest" and "550" in failure.detail["why"]
    with session_scope(engine) as session:
        booking_row = session.get(Booking, booking)
        assert booking_row is not None and booking_row.state == "confirmed"


def test_relay_down_raises_for_a_retry_and_the_mail_arrives_once_when_it_is_back(
    engine: Engine, settings: Settings, smtp_server: SmtpPeer
) -> None:
    booking = _confirmed(engine, settings)
    acts = activities(engine, settings)
    smtp_server.stop()
    for _ in range(2):
        with pytest.raises(ApplicationError, match="not sent yet") as deferred:
            acts.send_notifications(effect(booking, "confirmed"))
        assert deferred.value.type == "MailDeferred" and not deferred.value.non_retryable
    assert row_states(engine, booking) == {"confirmed:guest": "pending", "confirmed:host": "pending"}
    assert all(
        r.attempts == 2 and "cannot reach 127.0.0.1" in (r.last_error or "") for r in rows(engine, booking)
    )

    smtp_server.start()
    assert acts.send_notifications(effect(booking, "confirmed")) == 2
    assert acts.send_notifications(effect(booking, "confirmed")) == 0
    assert len(smtp_server.received) == 2
    assert all(r.state == "sent" and r.attempts == 3 for r in rows(engine, booking))


def test_a_temporary_refusal_of_the_message_is_retried(
    engine: Engine, settings: Settings, smtp_server: SmtpPeer
) -> None:
    smtp_server.recorder.data_replies.append("451 4.3.0 mailbox busy, try later")
    booking = _confirmed(engine, settings)
    acts = activities(engine, settings)
    with pytest.raises(ApplicationError, match=r"451 4\.3\.0"):
        acts.send_notifications(effect(booking, "confirmed"))
    assert len(smtp_server.received) == 1  # the other recipient's message went out
    assert sorted(row_states(engine, booking).values()) == ["pending", "sent"]
    assert acts.send_notifications(effect(booking, "confirmed")) == 1
    assert len(smtp_server.received) == 2


def _crash(settings: Settings, booking: str, where: str) -> None:
    args = [settings.database_url, settings.smtp_url, booking, "confirmed", where]
    run = subprocess.run(
        [sys.executable, "-m", "tests.notifications.crash_sender", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == -9, run.stderr


def test_a_crash_after_the_relay_took_the_message_does_not_send_it_again(
    engine: Engine, settings: Settings, smtp_server: SmtpPeer
) -> None:
    booking = _confirmed(engine, settings, guest_email=None)  # one message: the host's
    _crash(settings, booking, "mark_sent")
    assert len(smtp_server.received) == 1  # delivered, but never marked sent
    [row] = rows(engine, booking)
    assert row.state == "sending" and row.sent_at is not None

    # The activity's retry finds the row handed over and does not send it again...
    assert activities(engine, settings).send_notifications(effect(booking, "confirmed")) == 0
    # ...nor does the retry sweep, which records it as sent once it is clearly not in flight.
    later = datetime.now(UTC) + timedelta(minutes=5)
    report = _sender(engine, settings, now=later).send_due(
        retry_after=timedelta(minutes=10), give_up_after=timedelta(days=3), limit=100
    )
    assert (report.sent, report.unconfirmed) == (0, 1)
    [row] = rows(engine, booking)
    assert row.state == "sent" and row.last_error == UNCONFIRMED_NOTE
    assert len(smtp_server.wait_for(2, timeout=1)) == 1


def test_a_crash_before_the_commit_point_sends_it_once_on_retry(
    engine: Engine, settings: Settings, smtp_server: SmtpPeer
) -> None:
    booking = _confirmed(engine, settings, guest_email=None)
    _crash(settings, booking, "claim")  # the body was sent, the final "." never was
    assert smtp_server.received == []
    assert row_states(engine, booking) == {"confirmed:host": "pending"}
    assert activities(engine, settings).send_notifications(effect(booking, "confirmed")) == 1
    assert len(smtp_server.received) == 1


def test_two_senders_racing_for_the_same_rows_deliver_each_once(
    engine: Engine, settings: Settings, smtp_server: SmtpPeer
) -> None:
    booking = _confirmed(engine, settings)
    senders = [_sender(engine, settings) for _ in range(3)]
    start = threading.Barrier(len(senders))
    reports = []

    def run(sender: OutboxSender) -> None:
        start.wait()
        reports.append(sender.send_step(booking, "confirmed"))

    threads = [threading.Thread(target=run, args=(s,)) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.sent for r in reports) == 2
    assert len(smtp_server.wait_for(3, timeout=1)) == 2
    assert set(row_states(engine, booking).values()) == {"sent"}


def test_messages_that_went_out_of_date_while_waiting_are_skipped(
    engine: Engine, settings: Settings, smtp_server: SmtpPeer
) -> None:
    booking = seed_booking(engine, states=("held",))
    acts = activities(engine, settings)
    acts.enqueue_notifications(effect(booking, "held"))
    with session_scope(engine) as session:
        session.execute(update(Booking).where(col(Booking.id) == booking).values(state="expired"))
    assert acts.send_notifications(effect(booking, "held")) == 0
    assert smtp_server.received == []
    [row] = rows(engine, booking)
    assert row.state == "skipped" and row.last_error == "not sent: the booking is expired now"
    assert [e.detail["kind"] for e in audit(engine, booking) if e.action == "notification_skipped"] == [
        "held"
    ]


def test_reminder_is_only_for_a_confirmed_booking(
    engine: Engine, settings: Settings, smtp_server: SmtpPeer
) -> None:
    acts = activities(engine, settings)
    cancelled = seed_booking(engine, states=("held", "confirmed", "cancelled"))
    assert acts.enqueue_notifications(effect(cancelled, "reminder")) == 0
    confirmed = seed_booking(engine, start=datetime.now(UTC) + timedelta(hours=1))
    assert acts.enqueue_notifications(effect(confirmed, "reminder")) == 2
    assert acts.send_notifications(effect(confirmed, "reminder")) == 2
    subjects = sorted(str(r.message["Subject"]) for r in smtp_server.received)
    assert all(s.startswith("Reminder: Office hours with ") for s in subjects)


def test_the_retry_sweep_sends_what_waited_and_gives_up_on_what_is_too_old(
    engine: Engine, settings: Settings, smtp_server: SmtpPeer
) -> None:
    waited = _confirmed(engine, settings)
    ancient = _confirmed(engine, settings, guest_email=None)
    fresh = _confirmed(engine, settings, guest_email=None)
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        for booking, age in ((waited, timedelta(minutes=30)), (ancient, timedelta(days=4))):
            session.execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.booking_id) == booking)
                .values(created_at=now - age, attempts=7, last_error="cannot reach relay")
            )
    result = activities(engine, settings).retry_outbox(
        OutboxRetryInput(retry_after_seconds=600, give_up_after_seconds=3 * 86400)
    )
    assert (result.sent, result.failed, result.deferred) == (2, 1, 0)
    assert set(row_states(engine, waited).values()) == {"sent"}
    assert row_states(engine, fresh) == {"confirmed:host": "pending"}  # the booking's own send does it
    [given_up] = rows(engine, ancient)
    assert given_up.state == "failed"
    assert given_up.last_error == "gave up after 7 attempts: cannot reach relay"
    assert len(smtp_server.received) == 2


def test_the_dev_sink_keeps_one_file_per_message_and_reads_them_back(
    engine: Engine, settings: Settings, tmp_path: object
) -> None:
    sink_settings = settings.model_copy(update={"smtp_url": ""})
    booking = _confirmed(engine, sink_settings)
    acts = activities(engine, sink_settings)
    assert acts.send_notifications(effect(booking, "confirmed")) == 2
    sink = MailSink(sink_settings.mail_sink_dir)
    entries = sink.messages()
    assert sorted(e.recipient for e in entries) == [GUEST_EMAIL, HOST_EMAIL]
    assert {e.kind for e in entries} == {"confirmed"} and {e.booking_id for e in entries} == {booking}
    guest = next(e for e in entries if e.recipient == GUEST_EMAIL)
    assert guest.subject.startswith("Confirmed: Office hours with host.test")
    message = sink.read(guest.name)
    assert message is not None and message.text and message.html and message.calendar
    assert b"METHOD:REQUEST" in message.calendar
    assert sink.read("../../etc/passwd") is None and sink.read("nope.eml") is None

    # Check before resend: a row put back to pending finds its message in the sink and is not written twice.
    with session_scope(engine) as session:
        session.execute(update(OutboxMessage).values(state="pending"))
    assert acts.send_notifications(effect(booking, "confirmed")) == 2
    assert len(sink.messages()) == 2
    assert all(r.last_error == "found delivered already; not resent" for r in rows(engine, booking))
    assert sink.delivered(
        message_id(f"{booking}:confirmed:guest", MailIdentity.from_settings(settings).domain)
    )

    # What a new user runs to see the mail `make dev` would have sent.
    env = {**os.environ, "HUDDLE_DEV_MODE": "1", "HUDDLE_MAIL_SINK_DIR": sink_settings.mail_sink_dir}
    command = [sys.executable, "-m", "clients.mail.sink"]
    listing = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert listing.returncode == 0 and GUEST_EMAIL in listing.stdout and guest.name in listing.stdout
    shown = subprocess.run([*command, guest.name], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert "Subject: Confirmed: Office hours" in shown.stdout and "METHOD:REQUEST" in shown.stdout


def test_a_sink_delivery_cut_short_is_sent_again(engine: Engine, settings: Settings) -> None:
    """The dev sink knows exactly what it holds: a claimed row without its file is sent again."""
    sink_settings = settings.model_copy(update={"smtp_url": ""})
    booking = _confirmed(engine, sink_settings, guest_email=None)
    [row] = rows(engine, booking)
    assert row.id is not None
    sender = _sender(engine, sink_settings, now=datetime.now(UTC) + timedelta(minutes=5))
    assert sender.store.claim(row.id, datetime.now(UTC))  # the sender died right after its commit point
    report = sender.send_step(booking, "confirmed")
    assert (report.deferred, report.sent) == (1, 0)
    assert sender.send_step(booking, "confirmed").sent == 1
    assert len(MailSink(sink_settings.mail_sink_dir).messages()) == 1


def test_a_message_that_cannot_be_built_does_not_hold_up_the_others(
    engine: Engine, settings: Settings, smtp_server: SmtpPeer
) -> None:
    booking = _confirmed(engine, settings)
    with session_scope(engine) as session:
        broken = session.get(OutboxMessage, rows(engine, booking)[0].id)
        assert broken is not None
        broken.payload = {**broken.payload, "step": "nonsense"}
        session.add(broken)
    with pytest.raises(ApplicationError, match="could not build the message"):
        activities(engine, settings).send_notifications(effect(booking, "confirmed"))
    assert sorted(row_states(engine, booking).values()) == ["pending", "sent"]
    assert len(smtp_server.received) == 1
