"""Small builders for kernel tests. Dates are fixed in 2026–2027 (today is 2026-11-25)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from kernel.calendar.intervals import Interval
from kernel.lexicon.slot_offer import SlotOffer

if TYPE_CHECKING:
    from kernel.matching.request import MatchRequest

OFFER_URI = "at://did:plc:host/com.huddle.slotOffer/3l4k5j6h7g2aa"


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: str = "UTC") -> datetime:
    """An aware instant, given as wall time in ``tz``, returned in UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def iv(start: datetime, end: datetime) -> Interval:
    return Interval(start, end)


def offer_record(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "$type": "com.huddle.slotOffer",
        "title": "Office hours",
        "timezone": "UTC",
        "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}],
        "durations": [30, 60],
        "minNoticeMinutes": 0,
        "createdAt": "2026-11-01T00:00:00.000Z",
    }
    record.update(fields)
    return {key: value for key, value in record.items() if value is not None}


def offer(**fields: Any) -> SlotOffer:
    return SlotOffer.from_record(offer_record(**fields))


def request(o: SlotOffer | None = None, **fields: Any) -> MatchRequest:
    """A match request for ``o`` (default: weekdays 09–17 UTC, no notice) at Mon 30 Nov 2026 07:00 UTC."""
    from kernel.matching.request import MatchRequest

    values: dict[str, Any] = {
        "offer": o or offer(),
        "offer_uri": OFFER_URI,
        "duration_minutes": 30,
        "now": at(2026, 11, 30, 7),
    }
    values.update(fields)
    return MatchRequest(**values)
