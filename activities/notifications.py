"""Notification side effects: outbox rows per booking step and recipient, and sending them (idempotent).

`enqueue_notifications` writes one row per recipient of a step (dedupe key `{booking}:{step}:{role}`),
with everything its message will say; `send_notifications` sends that step's rows. A transient mail
failure makes it raise, so Temporal retries it with back-off; a permanent refusal (5xx) is recorded on
the row and in the booking's audit log, and the activity succeeds: the booking goes on regardless.
The `OutboxRetryWorkflow` schedule sends whatever is still waiting later.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col
from temporalio import activity
from temporalio.client import Client, Schedule
from temporalio.exceptions import ApplicationError

from clients.mail.outbox import OutboxSender, sender_from_settings
from clients.mail.payload import booking_payload, load_history, load_people
from kernel.booking.messages import SideEffect
from models import booking_store as store
from models.db import session_scope
from models.settings import Settings
from models.tables import Booking, OutboxMessage
from workers.periodic import periodic_schedule
from workflows.outbox_retry import OutboxRetryInput, OutboxRetryResult, OutboxRetryWorkflow

if TYPE_CHECKING:
    from workers.worker import WorkerParts

# Who hears about each step.
RECIPIENTS: dict[str, tuple[str, ...]] = {
    "held": ("guest",),
    "hold_moved": ("guest",),
    "hold_lost": ("guest",),
    "rescheduled": ("guest", "host"),
    "request_received": ("host",),
    "confirmed": ("guest", "host"),
    "declined": ("guest",),
    "expired": ("guest",),
    "cancelled": ("guest", "host"),
    "reminder": ("guest", "host"),
}

# Deliverable as one SMTP recipient: one @, no spaces, brackets or line breaks (the API checked length).
_ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"\\]+@[^@\s<>()\[\],;:\"\\]+")


class NotificationActivities:
    def __init__(self, engine: Engine, sender: OutboxSender | None = None) -> None:
        self._engine = engine
        self._sender = sender

    @activity.defn(name="enqueue_notifications")
    def enqueue_notifications(self, effect: SideEffect) -> int:
        """Write one outbox row per recipient of this step; the dedupe key makes a retry a no-op."""
        with Session(self._engine) as session:
            booking = session.get(Booking, effect.booking_id)
            if booking is None:
                raise LookupError(f"booking {effect.booking_id} not found")
            people = load_people(session, booking)
            history = load_history(session, booking.id)
        if effect.step == "reminder" and booking.state != "confirmed":
            self._skipped(effect, "all", f"the booking is {booking.state}, not confirmed")
            return 0
        addresses = {"guest": booking.guest_email, "host": people.host.email if people.host else None}
        hint = effect.detail.get("guestTimezone")
        messages = []
        for role in RECIPIENTS.get(effect.step, ()):
            address = (addresses[role] or "").strip()
            if not address:
                self._skipped(effect, role, "no email address known")
                continue
            if not _ADDRESS.fullmatch(address):
                self._skipped(effect, role, "the email address cannot be delivered to")
                continue
            payload = booking_payload(
                booking,
                people,
                history,
                step=effect.step,
                role=role,
                guest_zone_hint=hint if isinstance(hint, str) else None,
            )
            # A step that can happen more than once (a hold moved twice) names its occurrence, the
            # projection version it is about: also the invitation's SEQUENCE.
            occurrence = effect.detail.get("occurrence")
            suffix = f":{occurrence}" if occurrence is not None else ""
            if isinstance(occurrence, int):
                payload["sequence"] = occurrence
            # Who made this change and why, when the step says (a reschedule).
            for key in ("actor", "reason"):
                if key in effect.detail:
                    payload[key] = effect.detail[key]
            messages.append(
                {
                    "dedupe_key": f"{effect.booking_id}:{effect.step}:{role}{suffix}",
                    "booking_id": effect.booking_id,
                    "kind": effect.step,
                    "recipient": address,
                    "payload": payload,
                    "state": "pending",
                    "attempts": 0,
                }
            )
        return _enqueue(self._engine, messages)

    @activity.defn(name="send_notifications")
    def send_notifications(self, effect: SideEffect) -> int:
        """Send this step's unsent rows; raise while any is held up by a transient failure."""
        report = self._require_sender().send_step(effect.booking_id, effect.step)
        if report.deferred:
            raise ApplicationError(
                f"{report.deferred} message(s) for {effect.booking_id}:{effect.step} not sent yet: "
                + "; ".join(report.errors[:3]),
                type="MailDeferred",
            )
        return report.sent

    @activity.defn(name="retry_outbox")
    def retry_outbox(self, request: OutboxRetryInput) -> OutboxRetryResult:
        """Send the rows still pending after a while; give up on the very old ones."""
        report = self._require_sender().send_due(
            retry_after=timedelta(seconds=request.retry_after_seconds),
            give_up_after=timedelta(seconds=request.give_up_after_seconds),
            limit=request.batch_size,
        )
        if report.errors:
            activity.logger.warning("outbox retry: %d still waiting: %s", report.deferred, report.errors[0])
        return OutboxRetryResult(
            sent=report.sent,
            failed=report.failed,
            skipped=report.skipped,
            deferred=report.deferred,
            unconfirmed=report.unconfirmed,
        )

    def _require_sender(self) -> OutboxSender:
        if self._sender is None:
            raise RuntimeError("NotificationActivities was built without a mail sender")
        return self._sender

    def _skipped(self, effect: SideEffect, role: str, why: str) -> None:
        store.audit(
            self._engine,
            booking_id=effect.booking_id,
            action="notification_skipped",
            detail={"step": effect.step, "role": role, "why": why},
            key=f"{effect.booking_id}:{effect.step}:{role}",
        )


def _enqueue(engine: Engine, messages: list[dict[str, Any]]) -> int:
    """Insert the rows whose dedupe key is new; returns how many were added.

    Counted with RETURNING: on Postgres an ORM-executed INSERT … ON CONFLICT DO NOTHING reports a
    rowcount of -1.
    """
    insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    added = 0
    with session_scope(engine) as session:
        for message in messages:
            statement = (
                insert(OutboxMessage)
                .values(**message)
                .on_conflict_do_nothing(index_elements=["dedupe_key"])
                .returning(col(OutboxMessage.id))
            )
            added += len(session.execute(statement).all())
    return added


def add_notification_parts(parts: WorkerParts, settings: Settings, engine: Engine, client: Client) -> None:
    """The notify task queue: outbox writes, mail sending and the outbox retry sweep."""
    notifications = NotificationActivities(engine, sender_from_settings(engine, settings))
    parts.workflows["notify"] += [OutboxRetryWorkflow]
    parts.activities["notify"] += [
        notifications.enqueue_notifications,
        notifications.send_notifications,
        notifications.retry_outbox,
    ]


def outbox_retry_schedule(settings: Settings) -> tuple[str, Schedule]:
    """Sends again what a transient SMTP failure left waiting; gives up on the stale."""
    request = OutboxRetryInput(
        retry_after_seconds=settings.outbox_retry_after_seconds,
        give_up_after_seconds=settings.outbox_give_up_after_seconds,
    )
    return periodic_schedule(
        settings,
        "outbox-retry",
        OutboxRetryWorkflow.run,
        request,
        role="notify",
        every_seconds=settings.outbox_retry_interval_seconds,
    )
