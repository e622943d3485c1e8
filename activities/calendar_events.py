"""Calendar side effects of a booking: events created on confirm, moved on reschedule, removed on cancel.

Each is idempotent (the event's key is derived from the booking), so Temporal may retry freely:
transient provider errors are raised for its back-off, a 429 asks for the provider's Retry-After,
and a refusal that retrying cannot fix is non-retryable.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from clients.calendar.connected import CalendarWriteFailed
from clients.calendar.errors import ProviderError, ProviderRateLimited, ProviderUnavailable
from clients.calendar.ports import EventWriter
from kernel.booking.messages import SideEffect
from models.tables import Booking

T = TypeVar("T")


class CalendarActivities:
    def __init__(self, engine: Engine, writer: EventWriter) -> None:
        self._engine = engine
        self._writer = writer

    @activity.defn(name="create_calendar_events")
    def create_calendar_events(self, effect: SideEffect) -> int:
        return as_activity_errors(
            lambda: self._writer.create_events(_booking(self._engine, effect.booking_id))
        )

    @activity.defn(name="update_calendar_events")
    def update_calendar_events(self, effect: SideEffect) -> int:
        update = getattr(self._writer, "update_events", None)
        if update is None:
            return 0
        return as_activity_errors(lambda: int(update(_booking(self._engine, effect.booking_id))))

    @activity.defn(name="remove_calendar_events")
    def remove_calendar_events(self, effect: SideEffect) -> int:
        return as_activity_errors(
            lambda: self._writer.remove_events(_booking(self._engine, effect.booking_id))
        )


def as_activity_errors(call: Callable[[], T]) -> T:
    """Provider errors as Temporal sees them: retry with back-off, after Retry-After, or not at all."""
    try:
        return call()
    except ProviderRateLimited as exc:
        delay = timedelta(seconds=exc.retry_after) if exc.retry_after else None
        raise ApplicationError(str(exc), type="ProviderRateLimited", next_retry_delay=delay) from exc
    except ProviderUnavailable as exc:
        raise ApplicationError(str(exc), type="ProviderUnavailable") from exc
    except (CalendarWriteFailed, ProviderError) as exc:
        raise ApplicationError(str(exc), type="CalendarWriteFailed", non_retryable=True) from exc


def _booking(engine: Engine, booking_id: str) -> Booking:
    with Session(engine) as session:
        booking = session.get(Booking, booking_id)
    if booking is None:
        raise LookupError(f"booking {booking_id} not found")
    return booking
