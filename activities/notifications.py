"""Notification side effects: outbox rows per booking step and recipient (idempotent)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import activity

from kernel.booking.messages import SideEffect
from kernel.lexicon import format_datetime
from models import booking_store as store
from models.tables import Booking, OfferIndex, User

# Who hears about each step. The sender (huddle-notify) renders and mails them.
RECIPIENTS: dict[str, tuple[str, ...]] = {
    "held": ("guest",),
    "request_received": ("host",),
    "confirmed": ("guest", "host"),
    "declined": ("guest",),
    "expired": ("guest",),
    "cancelled": ("guest", "host"),
}


class NotificationActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn(name="enqueue_notifications")
    def enqueue_notifications(self, effect: SideEffect) -> int:
        """Write one outbox row per recipient of this step; the dedupe key makes a retry a no-op."""
        with Session(self._engine) as session:
            booking = session.get(Booking, effect.booking_id)
            if booking is None:
                raise LookupError(f"booking {effect.booking_id} not found")
            offer = session.get(OfferIndex, booking.offer_uri)
            host = session.get(User, booking.host_did)
            addresses = {"guest": booking.guest_email, "host": host.email if host else None}
            payload = _payload(booking, offer, effect.step)
        messages = []
        for role in RECIPIENTS.get(effect.step, ()):
            address = addresses[role]
            key = f"{effect.booking_id}:{effect.step}:{role}"
            if not address:
                store.audit(
                    self._engine,
                    booking_id=effect.booking_id,
                    action="notification_skipped",
                    detail={"step": effect.step, "role": role, "why": "no email address known"},
                    key=key,
                )
                continue
            messages.append(
                {
                    "dedupe_key": key,
                    "booking_id": effect.booking_id,
                    "kind": effect.step,
                    "recipient": address,
                    "payload": {**payload, "role": role},
                    "state": "pending",
                    "attempts": 0,
                }
            )
        return store.enqueue(self._engine, messages)


def _payload(booking: Booking, offer: OfferIndex | None, step: str) -> dict[str, Any]:
    def fmt(value: Any) -> str | None:
        return format_datetime(value) if value is not None else None

    return {
        "bookingId": booking.id,
        "step": step,
        "title": offer.title if offer else "Meeting",
        "timezone": offer.timezone if offer else "UTC",
        "host": booking.host_did,
        "guest": booking.guest_did,
        "start": fmt(booking.start_at),
        "end": fmt(booking.end_at),
        "holdExpiresAt": fmt(booking.hold_expires_at),
        "reason": booking.reason,
        "note": booking.note,
    }
