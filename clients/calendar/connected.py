"""Calendars as their owners connected them (rows in calendar_connectors), behind the two ports.

Busy times: every busy calendar of every connector of the owner, cached per connector. A connector
that cannot be read makes the owner's time *unknown*: `CalendarUnavailable` for conditions only the
owner can fix (reconnect, a calendar gone), the provider's transient error otherwise, so the caller
retries. Nothing here ever answers "free" because a calendar could not be read.

Events: one row per (booking, connector) in calendar_events holds the idempotency key the provider
dedupes on, so a retried activity finds the event it made instead of making another.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from clients.calendar.accounts import CalendarAccounts
from clients.calendar.busy_cache import BusyCache
from clients.calendar.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from clients.calendar.ports import CalendarUnavailable
from clients.calendar.providers import EventSpec
from clients.calendar.store import NEEDS_REAUTH
from kernel.calendar.ics import booking_uid
from kernel.calendar.intervals import Interval, normalize
from models.calendar_tables import CalendarEvent
from models.db import session_scope
from models.settings import Settings
from models.tables import Booking, CalendarConnector, OfferIndex, User
from models.types import utcnow

log = logging.getLogger("huddle.calendars")

PENDING, CREATED, REMOVED, FAILED = "pending", "created", "removed", "failed"


class CalendarWriteFailed(Exception):
    """A provider refused to write a booking's event for good (the connector's state says why)."""


@dataclass
class WriteOutcome:
    done: int = 0
    transient: ProviderUnavailable | None = None
    permanent: list[str] | None = None

    def note_transient(self, exc: ProviderUnavailable) -> None:
        # Keep the one asking for the longest wait, so a retry does not hit a limit again at once.
        if self.transient is None or _wait(exc) > _wait(self.transient):
            self.transient = exc

    def raise_if_failed(self) -> int:
        if self.transient is not None:
            raise self.transient
        if self.permanent:
            raise CalendarWriteFailed("; ".join(self.permanent))
        return self.done


class ConnectedCalendars:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        accounts: CalendarAccounts | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self.accounts = accounts or CalendarAccounts(settings, engine)
        self.cache = BusyCache(engine, timedelta(seconds=settings.calendar_busy_cache_ttl_seconds), clock)
        self._clock = clock

    @property
    def store(self):  # type: ignore[no-untyped-def]
        return self.accounts.store

    # ------------------------------------------------------------------ busy

    def busy(self, owner_did: str, start: datetime, end: datetime) -> list[Interval]:
        found: list[Interval] = []
        for connector in self.store.for_owner(owner_did):
            found += self._connector_busy(connector, start, end)
        return normalize(found)

    def _connector_busy(self, connector: CalendarConnector, start: datetime, end: datetime) -> list[Interval]:
        assert connector.id is not None
        label = f"the {connector.provider} calendar {connector.account!r}"
        if connector.state == NEEDS_REAUTH:
            raise CalendarUnavailable(f"{label} must be reconnected before its busy times can be read")
        if not connector.busy_calendar_ids:
            return []
        cached = self.cache.read(connector.id, start, end)
        if cached.intervals is not None:
            return cached.intervals
        # Read a little more than asked, so the next few requests of the TTL are answered from cache.
        fetch_start = start.replace(minute=0, second=0, microsecond=0)
        fetch_end = end.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2)
        try:
            provider = self.accounts.provider(connector)
            try:
                read = provider.busy(
                    list(connector.busy_calendar_ids),
                    fetch_start,
                    fetch_end,
                    unanswered_is_busy=self._settings.calendar_unanswered_is_busy,
                )
            finally:
                provider.close()
        except ProviderAuthError as exc:
            self.store.mark_needs_reauth(connector.id, str(exc))
            raise CalendarUnavailable(f"{label} must be reconnected: {exc}") from exc
        except ProviderUnavailable:
            raise  # transient: the caller's retry policy decides
        except ProviderError as exc:
            self.store.mark_error(connector.id, str(exc))
            raise CalendarUnavailable(f"{label} could not be read: {exc}") from exc
        if read.errors:
            why = "; ".join(f"calendar {cid}: {reason}" for cid, reason in sorted(read.errors.items()))
            self.store.mark_error(connector.id, why)
            raise CalendarUnavailable(f"{label} could not be read ({why})")
        busy = normalize(read.intervals)
        self.cache.write(connector.id, cached.generation, fetch_start, fetch_end, busy)
        self.store.mark_ok(connector.id, synced=True)
        return [iv for iv in busy if iv.end > start and iv.start < end]

    # ------------------------------------------------------------------ events

    def create_events(self, booking: Booking) -> int:
        if booking.state != "confirmed":
            return 0  # cancelled before this ran: remove_events has the last word
        outcome = WriteOutcome()
        spec_for = self._spec_factory(booking)
        for connector in self.store.for_owner(booking.host_did):
            if not connector.event_calendar_id:
                continue
            row = self._event_row(booking, connector)
            if row.state in (CREATED, REMOVED):
                continue
            self._create_one(booking, connector, row, spec_for(row.event_key), outcome)
        return outcome.raise_if_failed()

    def _create_one(
        self,
        booking: Booking,
        connector: CalendarConnector,
        row: CalendarEvent,
        spec: EventSpec,
        outcome: WriteOutcome,
    ) -> None:
        assert connector.id is not None and row.id is not None
        if connector.state == NEEDS_REAUTH:
            self._set_row(row.id, reason="waiting for the calendar to be reconnected")
            return
        try:
            provider = self.accounts.provider(connector)
            try:
                event_id = provider.create_event(row.calendar_id, spec)
            finally:
                provider.close()
        except ProviderAuthError as exc:
            self.store.mark_needs_reauth(connector.id, str(exc))
            self._set_row(row.id, reason="waiting for the calendar to be reconnected")
            return
        except ProviderUnavailable as exc:
            outcome.note_transient(exc)
            return
        except ProviderError as exc:
            self.store.mark_error(connector.id, f"could not write events to {row.calendar_id}: {exc}")
            self._set_row(row.id, state=FAILED, reason=str(exc))
            outcome.permanent = [*(outcome.permanent or []), f"{connector.provider}: {exc}"]
            return
        if self._set_row(row.id, state=CREATED, provider_event_id=event_id, only_from=(PENDING, FAILED)):
            outcome.done += 1
            self.cache.invalidate(connector.id)
            return
        # The booking was cancelled while we wrote: take the event back out.
        self._delete_quietly(connector, row.calendar_id, event_id)

    def update_events(self, booking: Booking) -> int:
        """Move the booking's events to its current time (a reschedule)."""
        outcome = WriteOutcome()
        spec_for = self._spec_factory(booking)
        for row, connector in self._rows(booking.id, (CREATED,)):
            assert row.provider_event_id is not None
            try:
                provider = self.accounts.provider(connector)
                try:
                    provider.update_event(row.calendar_id, row.provider_event_id, spec_for(row.event_key))
                finally:
                    provider.close()
            except ProviderAuthError as exc:
                assert connector.id is not None
                self.store.mark_needs_reauth(connector.id, str(exc))
                continue
            except ProviderUnavailable as exc:
                outcome.note_transient(exc)
                continue
            except ProviderError as exc:
                outcome.permanent = [*(outcome.permanent or []), f"{connector.provider}: {exc}"]
                continue
            outcome.done += 1
        return outcome.raise_if_failed()

    def remove_events(self, booking: Booking) -> int:
        outcome = WriteOutcome()
        with Session(self._engine) as session:
            rows = list(session.exec(select(CalendarEvent).where(CalendarEvent.booking_id == booking.id)))
        connectors = {c.id: c for c in self.store.for_owner(booking.host_did)}
        for row in rows:
            assert row.id is not None
            if row.state == REMOVED:
                continue
            connector = connectors.get(row.connector_id)
            if row.state != CREATED or connector is None or row.provider_event_id is None:
                # Never written (or its connector is gone): nothing to take out, and nothing may be added.
                self._set_row(row.id, state=REMOVED)
                continue
            if connector.state == NEEDS_REAUTH:
                continue  # the maintenance reconcile removes it once the owner reconnects
            try:
                provider = self.accounts.provider(connector)
                try:
                    provider.delete_event(row.calendar_id, row.provider_event_id)
                finally:
                    provider.close()
            except ProviderAuthError as exc:
                assert connector.id is not None
                self.store.mark_needs_reauth(connector.id, str(exc))
                continue
            except ProviderUnavailable as exc:
                outcome.note_transient(exc)
                continue
            except ProviderError as exc:
                outcome.permanent = [*(outcome.permanent or []), f"{connector.provider}: {exc}"]
                continue
            self._set_row(row.id, state=REMOVED)
            assert connector.id is not None
            self.cache.invalidate(connector.id)
            outcome.done += 1
        return outcome.raise_if_failed()

    # ------------------------------------------------------------------ rows

    def _event_row(self, booking: Booking, connector: CalendarConnector) -> CalendarEvent:
        assert connector.id is not None and connector.event_calendar_id is not None
        key = event_key(connector.provider, booking.id, connector.id, self._settings.hostname)
        with session_scope(self._engine) as session:
            row = session.exec(
                select(CalendarEvent).where(
                    CalendarEvent.booking_id == booking.id, CalendarEvent.connector_id == connector.id
                )
            ).first()
            if row is None:
                row = CalendarEvent(
                    booking_id=booking.id,
                    connector_id=connector.id,
                    provider=connector.provider,
                    calendar_id=connector.event_calendar_id,
                    event_key=key,
                )
                session.add(row)
                session.flush()
        return row

    def _rows(
        self, booking_id: str, states: tuple[str, ...]
    ) -> list[tuple[CalendarEvent, CalendarConnector]]:
        with Session(self._engine, expire_on_commit=False) as session:
            query = (
                select(CalendarEvent, CalendarConnector)
                .join(CalendarConnector, col(CalendarConnector.id) == CalendarEvent.connector_id)
                .where(CalendarEvent.booking_id == booking_id, col(CalendarEvent.state).in_(states))
            )
            return [(row, connector) for row, connector in session.exec(query)]

    def _set_row(
        self,
        row_id: int,
        *,
        state: str | None = None,
        reason: str | None = None,
        provider_event_id: str | None = None,
        only_from: tuple[str, ...] | None = None,
    ) -> bool:
        values: dict[str, object] = {"updated_at": self._clock(), "reason": reason}
        if state is not None:
            values["state"] = state
        if provider_event_id is not None:
            values["provider_event_id"] = provider_event_id
        statement = update(CalendarEvent).where(col(CalendarEvent.id) == row_id)
        if only_from is not None:
            statement = statement.where(col(CalendarEvent.state).in_(only_from))
        with session_scope(self._engine) as session:
            result = session.execute(statement.values(**values))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def _delete_quietly(self, connector: CalendarConnector, calendar_id: str, event_id: str) -> None:
        try:
            provider = self.accounts.provider(connector)
            try:
                provider.delete_event(calendar_id, event_id)
            finally:
                provider.close()
        except ProviderError as exc:
            log.warning("could not remove event %s of a cancelled booking: %s", event_id, exc)

    def _spec_factory(self, booking: Booking) -> Callable[[str], EventSpec]:
        with Session(self._engine) as session:
            offer = session.get(OfferIndex, booking.offer_uri)
            guest = session.get(User, booking.guest_did)
        title = offer.title if offer else "Meeting"
        who = guest.handle if guest and guest.handle else booking.guest_did
        lines = [f"Booked through Huddle with {who} ({booking.guest_did}).", f"Booking {booking.id}."]
        if booking.note:
            lines.append(f"Note from the guest: {booking.note}")
        location = offer.record.get("location") if offer else None
        assert booking.start_at is not None and booking.end_at is not None
        start, end = booking.start_at, booking.end_at

        def spec(key: str) -> EventSpec:
            return EventSpec(
                key=key,
                summary=f"{title} with {who}",
                description="\n".join(lines),
                start=start,
                end=end,
                timezone=offer.timezone if offer else "UTC",
                location=str(location) if location else None,
            )

        return spec


def event_key(provider: str, booking_id: str, connector_id: int, hostname: str) -> str:
    """The idempotency key of a booking's event in one connector's calendar."""
    if provider == "caldav":
        return booking_uid(booking_id, hostname)  # the UID the booking's invitations carry too
    return f"huddle-{booking_id}-{connector_id}"


def _wait(exc: ProviderUnavailable) -> float:
    return (exc.retry_after or 0.0) if isinstance(exc, ProviderRateLimited) else 0.0
