"""What the booking flow needs from calendars, independent of the provider behind them."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from kernel.calendar.intervals import Interval
from models.tables import Booking


class CalendarUnavailable(Exception):
    """A connected calendar could not be read: the owner's time is unknown, never assumed free."""


class BusySource(Protocol):
    def busy(self, owner_did: str, start: datetime, end: datetime) -> list[Interval]:
        """Busy intervals of every calendar the owner counts as busy; raises CalendarUnavailable."""
        ...


class EventWriter(Protocol):
    def create_events(self, booking: Booking) -> int:
        """Put the confirmed booking in the host's event calendar(s); idempotent. Returns events made."""
        ...

    def remove_events(self, booking: Booking) -> int:
        """Remove the booking's events; idempotent. Returns events removed."""
        ...
