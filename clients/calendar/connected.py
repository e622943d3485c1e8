"""Calendars as the owner connected them (rows in calendar_connectors).

Provider clients (Google, Microsoft, CalDAV) arrive with the calendar issue. Until a provider is
supported, a connector of that kind makes its owner's time *unknown*: matching refuses to guess.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, select

from clients.calendar.ports import CalendarUnavailable
from kernel.calendar.intervals import Interval
from models.tables import Booking, CalendarConnector


class ConnectedCalendars:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _connectors(self, owner_did: str) -> list[CalendarConnector]:
        with Session(self._engine) as session:
            return list(
                session.exec(select(CalendarConnector).where(CalendarConnector.owner_did == owner_did))
            )

    def busy(self, owner_did: str, start: datetime, end: datetime) -> list[Interval]:
        connectors = self._connectors(owner_did)
        if connectors:
            kinds = ", ".join(sorted({c.provider for c in connectors}))
            raise CalendarUnavailable(f"reading {kinds} calendars is not supported yet")
        return []

    def create_events(self, booking: Booking) -> int:
        return self._require_none(booking.host_did)

    def remove_events(self, booking: Booking) -> int:
        return self._require_none(booking.host_did)

    def _require_none(self, owner_did: str) -> int:
        if self._connectors(owner_did):
            raise CalendarUnavailable("writing events to connected calendars is not supported yet")
        return 0
