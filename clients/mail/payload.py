"""What a notification says about a booking: the outbox payload, built from the rows once, at enqueue.

The payload is a snapshot: the message (and its invitation) render from it alone, so a message sent
late, or again, says what was true at its step. The `.ics` download builds the same shape from the
booking as it is now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from kernel.calendar.zones import is_iana_zone
from kernel.lexicon import format_datetime
from models.tables import AuditEntry, Booking, OfferIndex, User

# The booking state a step's message is about (a message is out of date once the booking left it).
STEP_STATE: dict[str, str] = {
    "held": "held",
    "hold_moved": "held",
    "hold_lost": "unavailable",
    "rescheduled": "confirmed",
    "request_received": "held",
    "confirmed": "confirmed",
    "reminder": "confirmed",
    "declined": "declined",
    "expired": "expired",
    "cancelled": "cancelled",
}


@dataclass(frozen=True)
class People:
    """The rows around a booking that its messages mention."""

    offer: OfferIndex | None
    host: User | None
    guest: User | None


@dataclass(frozen=True)
class History:
    """From the audit log: the projection version each state was reached at, and who acted."""

    versions: dict[str, int] = field(default_factory=dict)  # state → version it was reached at
    actors: dict[str, str] = field(default_factory=dict)  # state → DID of who moved it there

    @property
    def was_confirmed(self) -> bool:
        return "confirmed" in self.versions


def load_people(session: Session, booking: Booking) -> People:
    return People(
        offer=session.get(OfferIndex, booking.offer_uri),
        host=session.get(User, booking.host_did),
        guest=session.get(User, booking.guest_did),
    )


def load_history(session: Session, booking_id: str) -> History:
    entries = session.exec(
        select(AuditEntry).where(AuditEntry.booking_id == booking_id).order_by(col(AuditEntry.id))
    ).all()
    versions: dict[str, int] = {}
    actors: dict[str, str] = {}
    for entry in entries:
        state, version = entry.detail.get("state"), entry.detail.get("version")
        if isinstance(state, str) and isinstance(version, int) and state not in versions:
            versions[state] = version
            if entry.actor_did:
                actors[state] = entry.actor_did
    return History(versions=versions, actors=actors)


def sequence_for(step: str, booking: Booking, history: History) -> int:
    """The invitation SEQUENCE for a step: the projection version of the state it is about.

    Taken from the audit log rather than the live row, because side effects run beside the booking:
    a `confirmed` message enqueued after a quick cancel must still carry the lower number.
    """
    return history.versions.get(STEP_STATE.get(step, ""), booking.version)


def invitation_method(step: str, history: History) -> str | None:
    """REQUEST when a booking is confirmed; CANCEL when a booking that was confirmed is called off."""
    if step in ("confirmed", "rescheduled"):
        return "REQUEST"
    if step == "cancelled" and history.was_confirmed:
        return "CANCEL"
    return None


def display_name(user: User | None, did: str) -> str:
    return user.handle if user is not None and user.handle else did


def recipient_zone(role: str, people: People, guest_zone_hint: str | None) -> str:
    """The zone a recipient reads times in: theirs when known, else the offer's (the zone is always shown)."""
    offer_zone = people.offer.timezone if people.offer else "UTC"
    user = people.host if role == "host" else people.guest
    candidates = [user.timezone if user else None]
    if role == "guest":
        candidates.append(guest_zone_hint)
    return next((z for z in candidates if z and is_iana_zone(z)), offer_zone)


def booking_payload(
    booking: Booking,
    people: People,
    history: History,
    *,
    step: str,
    role: str,
    guest_zone_hint: str | None = None,
) -> dict[str, Any]:
    """Everything one recipient's message for one step needs, JSON-ready."""

    def fmt(value: Any) -> str | None:
        return format_datetime(value) if value is not None else None

    offer, record = people.offer, (people.offer.record if people.offer else {})
    actor = history.actors.get(STEP_STATE.get(step, ""))
    return {
        "bookingId": booking.id,
        "step": step,
        "role": role,
        "title": offer.title if offer else "Meeting",
        "timezone": offer.timezone if offer else "UTC",  # the host's offer zone (the invitation's TZID)
        "recipientTimezone": recipient_zone(role, people, guest_zone_hint),
        "host": booking.host_did,
        "guest": booking.guest_did,
        "hostName": display_name(people.host, booking.host_did),
        "guestName": display_name(people.guest, booking.guest_did),
        "hostEmail": people.host.email if people.host else None,
        "guestEmail": booking.guest_email,
        "start": fmt(booking.start_at),
        "end": fmt(booking.end_at),
        "durationMinutes": booking.duration_minutes,
        "holdExpiresAt": fmt(booking.hold_expires_at),
        "requiresApproval": bool(offer.requires_approval) if offer else False,
        "location": record.get("location"),
        "reason": booking.reason,
        "note": booking.note,
        "actor": "host" if actor == booking.host_did else "guest" if actor == booking.guest_did else None,
        "sequence": sequence_for(step, booking, history),
        "ics": invitation_method(step, history),
    }
