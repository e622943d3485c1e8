"""``offerView`` and ``bookingView`` (``com.huddle.defs``) as typed values that render their JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kernel.lexicon.formats import format_datetime

BOOKING_STATES = ("pending", "held", "confirmed", "denied", "unavailable", "expired", "declined", "cancelled")


@dataclass(frozen=True, slots=True)
class OfferView:
    uri: str
    cid: str
    host: str
    indexed_at: datetime
    record: dict[str, Any]
    handle: str | None = None

    def to_json(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "uri": self.uri,
            "cid": self.cid,
            "host": self.host,
            "indexedAt": format_datetime(self.indexed_at),
            "record": self.record,
        }
        if self.handle is not None:
            view["handle"] = self.handle
        return view


@dataclass(frozen=True, slots=True)
class BookingView:
    """``start``/``end`` are None until a slot is chosen, and stay None for denied/unavailable."""

    id: str
    state: str
    host: str
    guest: str
    offer: str
    duration_minutes: int
    awaiting: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    start: datetime | None = None
    end: datetime | None = None
    hold_expires_at: datetime | None = None
    reason: str | None = None
    explanation: str | None = None

    def to_json(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": self.id,
            "state": self.state,
            "host": self.host,
            "guest": self.guest,
            "offer": self.offer,
            "durationMinutes": self.duration_minutes,
            "awaiting": list(self.awaiting),
            "createdAt": format_datetime(self.created_at),
            "updatedAt": format_datetime(self.updated_at),
        }
        for key, moment in (
            ("start", self.start),
            ("end", self.end),
            ("holdExpiresAt", self.hold_expires_at),
        ):
            if moment is not None:
                view[key] = format_datetime(moment)
        for key, text in (("reason", self.reason), ("explanation", self.explanation)):
            if text is not None:
                view[key] = text
        return view
