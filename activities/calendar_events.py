"""Calendar side effects of a booking: events created on confirm, removed on cancel (idempotent)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import activity

from clients.calendar.ports import EventWriter
from kernel.booking.messages import SideEffect
from models.tables import Booking


class CalendarActivities:
    def __init__(self, engine: Engine, writer: EventWriter) -> None:
        self._engine = engine
        self._writer = writer

    @activity.defn(name="create_calendar_events")
    def create_calendar_events(self, effect: SideEffect) -> int:
        return self._writer.create_events(_booking(self._engine, effect.booking_id))

    @activity.defn(name="remove_calendar_events")
    def remove_calendar_events(self, effect: SideEffect) -> int:
        return self._writer.remove_events(_booking(self._engine, effect.booking_id))


def _booking(engine: Engine, booking_id: str) -> Booking:
    with Session(engine) as session:
        booking = session.get(Booking, booking_id)
    if booking is None:
        raise LookupError(f"booking {booking_id} not found")
    return booking
