"""Booking states and what each means (DESIGN.md §4)."""

from __future__ import annotations

from typing import Final, Literal

State = Literal["pending", "held", "confirmed", "denied", "unavailable", "expired", "declined", "cancelled"]
Role = Literal["guest", "host"]

PENDING: Final = "pending"
HELD: Final = "held"
CONFIRMED: Final = "confirmed"
DENIED: Final = "denied"
UNAVAILABLE: Final = "unavailable"
EXPIRED: Final = "expired"
DECLINED: Final = "declined"
CANCELLED: Final = "cancelled"

ALL_STATES: Final = (PENDING, HELD, CONFIRMED, DENIED, UNAVAILABLE, EXPIRED, DECLINED, CANCELLED)
# States that occupy the host's time; the database's double-booking guard covers exactly these.
OCCUPYING: Final = frozenset({HELD, CONFIRMED})
TERMINAL: Final = frozenset({DENIED, UNAVAILABLE, EXPIRED, DECLINED, CANCELLED})


def awaiting(state: str, *, guest_finalized: bool, host_approved: bool, requires_approval: bool) -> list[str]:
    """Who must still act for a held booking to become confirmed (empty outside `held`)."""
    if state != HELD:
        return []
    waiting = []
    if not guest_finalized:
        waiting.append("guest")
    if requires_approval and not host_approved:
        waiting.append("host")
    return waiting
