"""Delivering outbox rows: claim at the commit point, mark sent, record failures; never send one twice.

A row moves pending → sending → sent, or to failed (the relay refused it for good) or skipped (it
was out of date when its turn came: a "your slot is held" after the hold expired). `sending` is
written at the transport's commit point (see clients/mail/transport.py), with `sent_at` as the time
the message was handed over; a row found in `sending` later belongs to a sender that is still
waiting for the relay's answer, or that died after handing the message over. Either way it is not
sent again: once it has been `sending` for `stale_after`, it is recorded as sent, unconfirmed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, case, or_, update
from sqlmodel import Session, col, select

from clients.mail.message import MailIdentity, compose, message_id
from clients.mail.sink import MailSink
from clients.mail.smtp import SmtpConfig, SmtpTransport
from clients.mail.transport import (
    DeliveryUnconfirmed,
    MailSession,
    PermanentMailError,
    TransientMailError,
    Transport,
)
from kernel.lexicon import parse_datetime
from models import booking_store
from models.db import session_scope
from models.settings import Settings
from models.tables import Booking, CalendarConnector, OutboxMessage
from models.types import utcnow

log = logging.getLogger("huddle.mail")

PENDING, SENDING, SENT, FAILED, SKIPPED = "pending", "sending", "sent", "failed", "skipped"
UNCONFIRMED_NOTE = "delivery not confirmed: the sender stopped after handing the message over; not resent"


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0  # refused for good (5xx)
    skipped: int = 0  # out of date
    deferred: int = 0  # transient failure: still pending
    unconfirmed: int = 0  # handed over, answer lost
    in_flight: int = 0  # another sender is handing it over right now
    errors: list[str] = field(default_factory=list)  # the transient failures, for the retry's message

    def add(self, other: DeliveryReport) -> None:
        for name in ("sent", "failed", "skipped", "deferred", "unconfirmed", "in_flight"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors += other.errors


class OutboxStore:
    """The outbox rows' state changes; each is one UPDATE guarded by the state it expects."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def rows_for_step(self, booking_id: str, step: str) -> list[OutboxMessage]:
        with Session(self._engine) as session:
            query = select(OutboxMessage).where(
                OutboxMessage.booking_id == booking_id,
                OutboxMessage.kind == step,
                col(OutboxMessage.state).in_((PENDING, SENDING)),
            )
            return list(session.exec(query.order_by(col(OutboxMessage.id))))

    def due_rows(
        self, written_before: datetime, limit: int, *, unowned_now: bool = False
    ) -> list[OutboxMessage]:
        """Pending rows older than `written_before` (the booking's own send should have done them).

        With `unowned_now`, also every pending row of no booking (a connector's notice): no workflow
        sends those, the sweep is their only sender, so waiting for them would only delay the mail.
        """
        due = col(OutboxMessage.created_at) < written_before
        if unowned_now:
            due = or_(due, col(OutboxMessage.booking_id).is_(None))
        with Session(self._engine) as session:
            query = select(OutboxMessage).where(OutboxMessage.state == PENDING, due)
            return list(session.exec(query.order_by(col(OutboxMessage.id)).limit(limit)))

    def stale_sending(self, handed_over_before: datetime, limit: int) -> list[OutboxMessage]:
        with Session(self._engine) as session:
            query = select(OutboxMessage).where(
                OutboxMessage.state == SENDING, col(OutboxMessage.sent_at) < handed_over_before
            )
            return list(session.exec(query.order_by(col(OutboxMessage.id)).limit(limit)))

    def booking_state(self, booking_id: str | None) -> str | None:
        if booking_id is None:
            return None
        with Session(self._engine) as session:
            booking = session.get(Booking, booking_id)
            return booking.state if booking else None

    def connector_state(self, connector_id: object) -> str | None:
        if not isinstance(connector_id, int):
            return None
        with Session(self._engine) as session:
            connector = session.get(CalendarConnector, connector_id)
            return connector.state if connector else None

    def claim(self, row_id: int, now: datetime) -> bool:
        """The commit point: the row is being handed over by us, and nobody else."""
        return self._update(
            row_id, (PENDING,), state=SENDING, sent_at=now, attempts=col(OutboxMessage.attempts) + 1
        )

    def mark_sent(self, row_id: int, *, note: str | None = None) -> bool:
        return self._update(row_id, (SENDING,), state=SENT, last_error=note)

    def defer(self, row_id: int, error: str) -> bool:
        """A transient failure: pending again (a claimed row was counted as an attempt already)."""
        return self._update(row_id, (PENDING, SENDING), state=PENDING, last_error=error, **self._count())

    def fail(self, row_id: int, error: str) -> bool:
        return self._update(
            row_id, (PENDING, SENDING), state=FAILED, last_error=error, sent_at=None, **self._count()
        )

    def skip(self, row_id: int, why: str) -> bool:
        return self._update(row_id, (PENDING,), state=SKIPPED, last_error=why)

    def note(self, row_id: int, error: str) -> bool:
        return self._update(row_id, (SENDING,), last_error=error)

    @staticmethod
    def _count() -> dict[str, Any]:
        attempts = col(OutboxMessage.attempts)
        return {"attempts": case((col(OutboxMessage.state) == PENDING, attempts + 1), else_=attempts)}

    def _update(self, row_id: int, states: tuple[str, ...], **values: Any) -> bool:
        with session_scope(self._engine) as session:
            result = session.execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == row_id, col(OutboxMessage.state).in_(states))
                .values(**values)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]


class OutboxSender:
    def __init__(
        self,
        engine: Engine,
        transport: Transport,
        identity: MailIdentity,
        *,
        stale_after: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self.store = OutboxStore(engine)
        self.transport = transport
        self.identity = identity
        self.stale_after = stale_after
        self._clock = clock

    def send_step(self, booking_id: str, step: str) -> DeliveryReport:
        """Send what is still unsent of one booking step."""
        return self.deliver(self.store.rows_for_step(booking_id, step))

    def send_due(self, *, retry_after: timedelta, give_up_after: timedelta, limit: int) -> DeliveryReport:
        """The retry sweep: settle stale hand-overs, give up on very old rows, send the rest that waited
        (and every connector notice at once)."""
        now = self._clock()
        report = self.deliver(self.store.stale_sending(now - self.stale_after, limit))
        for row in self.store.due_rows(now - give_up_after, limit):
            assert row.id is not None
            why = f"gave up after {row.attempts} attempts: {row.last_error or 'never sent'}"
            if self.store.fail(row.id, why[:2000]):
                self._audit(row, "notification_failed", why)
                report.failed += 1
        report.add(self.deliver(self.store.due_rows(now - retry_after, limit, unowned_now=True)))
        return report

    def deliver(self, rows: Sequence[OutboxMessage]) -> DeliveryReport:
        report = DeliveryReport()
        with ExitStack() as stack:
            session: MailSession | None = None
            down: str | None = None  # the relay failed for this whole session: defer the rest
            for row in rows:
                assert row.id is not None
                now = self._clock()
                if row.state == SENDING:
                    self._settle_handed_over(row, now, report)
                    continue
                if row.state != PENDING:
                    continue
                stale = (
                    self._notice_out_of_date(row) if row.booking_id is None else self._out_of_date(row, now)
                )
                if stale is not None:
                    if self.store.skip(row.id, stale):
                        self._audit(row, "notification_skipped", stale)
                        report.skipped += 1
                    continue
                if down is not None:
                    self.store.defer(row.id, down)
                    report.deferred += 1
                    continue
                try:
                    envelope = compose(row, self.identity)
                except Exception as exc:  # a bug or bad data in one row must not hold up the others
                    log.exception("mail %s could not be built", row.dedupe_key)
                    self.store.defer(row.id, f"could not build the message: {exc!r}"[:2000])
                    report.deferred += 1
                    report.errors.append(f"{row.dedupe_key}: could not build the message: {exc!r}")
                    continue
                if self.transport.delivered(envelope.message_id):
                    # Delivered by an attempt that died before marking it: record it, don't resend.
                    if self.store.claim(row.id, now):
                        self.store.mark_sent(row.id, note="found delivered already; not resent")
                        report.sent += 1
                    continue
                if session is None:
                    session = stack.enter_context(self.transport.session())
                row_id = row.id
                try:
                    accepted = session.send(envelope, functools.partial(self._claim, row_id))
                except PermanentMailError as exc:
                    self.store.fail(row_id, str(exc)[:2000])
                    self._audit(row, "notification_failed", str(exc))
                    log.warning("mail %s to %s refused for good: %s", row.dedupe_key, row.recipient, exc)
                    report.failed += 1
                except DeliveryUnconfirmed as exc:
                    self.store.note(row_id, f"{UNCONFIRMED_NOTE} ({exc})"[:2000])
                    log.warning("mail %s: %s", row.dedupe_key, exc)
                    report.unconfirmed += 1
                except TransientMailError as exc:
                    self.store.defer(row_id, str(exc)[:2000])
                    report.deferred += 1
                    report.errors.append(f"{row.dedupe_key}: {exc}")
                    if exc.connection:
                        down = str(exc)[:2000]
                else:
                    if accepted:
                        self.store.mark_sent(row_id)
                        log.info("mail %s sent to %s", row.dedupe_key, row.recipient)
                        report.sent += 1
                    else:
                        report.in_flight += 1
        return report

    def _claim(self, row_id: int) -> bool:
        return self.store.claim(row_id, self._clock())

    def _settle_handed_over(self, row: OutboxMessage, now: datetime, report: DeliveryReport) -> None:
        """A row another attempt handed over: record it as sent once it is clearly not in flight."""
        assert row.id is not None
        delivered = self.transport.delivered(message_id(row.dedupe_key, self.identity.domain))
        if delivered:
            if self.store.mark_sent(row.id):
                report.sent += 1
            return
        if row.sent_at is not None and row.sent_at >= now - self.stale_after:
            report.in_flight += 1
            return
        if delivered is False:
            # The transport knows it never got the message (the dev sink): the sender died first.
            if self.store.defer(row.id, "the sender stopped before delivering; sending again"):
                report.deferred += 1
                report.errors.append(f"{row.dedupe_key}: interrupted before delivery")
        elif self.store.mark_sent(row.id, note=row.last_error or UNCONFIRMED_NOTE):
            report.unconfirmed += 1

    def _out_of_date(self, row: OutboxMessage, now: datetime) -> str | None:
        """Why this message would mislead if sent now (None: it still says something true)."""
        if row.kind not in ("held", "hold_moved", "request_received", "confirmed", "rescheduled", "reminder"):
            return None  # declined, expired, cancelled, hold_lost: final, true whenever they arrive
        state = self.store.booking_state(row.booking_id)
        wanted = "held" if row.kind in ("held", "hold_moved", "request_received") else "confirmed"
        if state != wanted:
            return f"not sent: the booking is {state or 'gone'} now"
        payload = row.payload
        if wanted == "held" and _passed(payload.get("holdExpiresAt"), now):
            return "not sent: the hold expired before the message could go out"
        if row.kind == "reminder" and _passed(payload.get("start"), now):
            return "not sent: the meeting had started before the reminder could go out"
        return None

    def _notice_out_of_date(self, row: OutboxMessage) -> str | None:
        """A "reconnect your calendar" that would arrive after the owner reconnected (or removed) it."""
        if row.kind != "calendar_needs_reauth":
            return None
        state = self.store.connector_state(row.payload.get("connectorId"))
        if state is None:
            return "not sent: the calendar was disconnected"
        if state != "needs_reauth":
            return "not sent: the calendar was reconnected"
        return None

    def _audit(self, row: OutboxMessage, action: str, why: str) -> None:
        booking_store.audit(
            self._engine,
            booking_id=row.booking_id,
            action=action,
            detail={"kind": row.kind, "role": row.payload.get("role"), "why": why[:500]},
            key=f"{row.dedupe_key}:{action}",
        )


def _passed(value: str | None, now: datetime) -> bool:
    return bool(value) and parse_datetime(value or "") <= now


def sender_from_settings(engine: Engine, settings: Settings) -> OutboxSender:
    """SMTP when `smtp_url` is set, else the dev Maildir sink under `mail_sink_dir`."""
    transport: Transport
    if settings.smtp_url:
        config = SmtpConfig.from_url(
            settings.smtp_url, timeout=settings.smtp_timeout_seconds, local_hostname=settings.hostname
        )
        transport = SmtpTransport(config)
    else:
        if settings.dev_mode:
            log.info(
                "mail goes to the dev sink %s (python -m clients.mail.sink lists it)", settings.mail_sink_dir
            )
        else:
            log.warning("HUDDLE_SMTP_URL is empty: mail goes to %s, not to people", settings.mail_sink_dir)
        transport = MailSink(settings.mail_sink_dir)
    # Longer than a live sender can sit between its commit point and the relay's answer.
    stale_after = max(timedelta(minutes=2), timedelta(seconds=3 * settings.smtp_timeout_seconds))
    return OutboxSender(engine, transport, MailIdentity.from_settings(settings), stale_after=stale_after)
