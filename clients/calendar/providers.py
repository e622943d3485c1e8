"""What every calendar provider client offers, in Huddle's terms (intervals, event specs, channels)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from kernel.calendar.intervals import Interval


@dataclass(frozen=True)
class CalendarInfo:
    """A calendar the account can see; `writable` calendars can receive booking events."""

    id: str
    name: str
    primary: bool = False
    writable: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "primary": self.primary, "writable": self.writable}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CalendarInfo:
        return cls(
            id=str(data["id"]),
            name=str(data.get("name", "")),
            primary=bool(data.get("primary")),
            writable=bool(data.get("writable", True)),
        )


@dataclass
class BusyRead:
    """Busy intervals read from some calendars, and the calendars that could not be read (and why)."""

    intervals: list[Interval] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EventSpec:
    """A booking as an event; `key` is the idempotency key the provider dedupes on."""

    key: str
    summary: str
    description: str
    start: datetime
    end: datetime
    timezone: str = "UTC"
    location: str | None = None


@dataclass(frozen=True)
class ChannelGrant:
    """A push channel the provider accepted: its id there and when it stops."""

    external_id: str
    expires_at: datetime


@dataclass
class ChangeSet:
    """What changed in a calendar since the last sync: time ranges, or `unknown` when they can't be told."""

    ranges: list[Interval] = field(default_factory=list)
    unknown: bool = False


class AccessTokens(Protocol):
    """A valid OAuth access token for one connector, refreshed as needed."""

    def current(self) -> str: ...

    def refreshed(self) -> str:
        """A new token, after the provider refused the current one."""
        ...


class CalendarProvider(Protocol):
    def list_calendars(self) -> list[CalendarInfo]: ...

    def busy(
        self, calendar_ids: list[str], start: datetime, end: datetime, *, unanswered_is_busy: bool
    ) -> BusyRead: ...

    def create_event(self, calendar_id: str, spec: EventSpec) -> str:
        """Create the event (or find the one a lost response created); returns the provider's event id."""
        ...

    def update_event(self, calendar_id: str, event_id: str, spec: EventSpec) -> None: ...

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        """Delete it; an event that is gone already is not an error."""
        ...

    def close(self) -> None: ...


def tls_verify(verify: str | bool) -> ssl.SSLContext | bool:
    """httpx's form of a CA choice: a context for a CA file, else True/False."""
    return ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify


def time_chunks(start: datetime, end: datetime, span: timedelta) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive pieces no longer than `span` (providers cap query windows)."""
    chunks = []
    cursor = start
    while cursor < end:
        stop = min(end, cursor + span)
        chunks.append((cursor, stop))
        cursor = stop
    return chunks


def batches(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def rfc3339(moment: datetime) -> str:
    """UTC, with a Z, as Google and Graph expect."""
    from datetime import UTC

    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
