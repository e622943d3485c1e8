"""The ``com.huddle.slotOffer`` record as a typed value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from kernel.lexicon.errors import LexiconValidationError
from kernel.lexicon.formats import format_datetime, parse_datetime
from kernel.lexicon.time_rules import check_local_date, check_time_range, check_zone
from kernel.lexicon.validator import validate_record

NSID = "com.huddle.slotOffer"
KNOWN_POLICIES = ("anyone", "followers", "mutuals")


@dataclass(frozen=True, slots=True)
class Window:
    """Weekly hours: on each of ``days`` ("mon".."sun"), ``start`` to ``end`` ("HH:MM", up to "24:00")."""

    days: tuple[str, ...]
    start: str
    end: str

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Window:
        return cls(days=tuple(value["days"]), start=value["start"], end=value["end"])

    def to_json(self) -> dict[str, Any]:
        return {"days": list(self.days), "start": self.start, "end": self.end}


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Hours on one date: ``start`` to ``end`` ("HH:MM", end may be "24:00")."""

    start: str
    end: str

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end}


@dataclass(frozen=True, slots=True)
class DateOverride:
    """The hours of one local date, replacing its weekly windows; no windows closes the day."""

    date: date
    windows: tuple[TimeRange, ...]

    def to_json(self) -> dict[str, Any]:
        return {"date": self.date.isoformat(), "windows": [w.to_json() for w in self.windows]}


@dataclass(frozen=True, slots=True)
class SlotOffer:
    """A host's office hours. Build it with ``from_record`` to have it checked.

    ``policy`` keeps whatever the record says; ``kernel.matching.policy`` treats a value
    it does not know as the most restrictive known policy.
    """

    title: str
    timezone: str
    windows: tuple[Window, ...]
    durations: tuple[int, ...]
    created_at: datetime
    description: str | None = None
    date_overrides: tuple[DateOverride, ...] = ()
    slot_step_minutes: int = 15
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    min_notice_minutes: int = 120
    horizon_days: int = 60
    max_per_day: int | None = None
    policy: str = "anyone"
    requires_approval: bool = False
    hold_minutes: int = 15
    location: str | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    @classmethod
    def from_record(cls, record: object) -> SlotOffer:
        """Validate a record (from a PDS or the firehose) and convert it; LexiconValidationError if bad."""
        value = validate_record(NSID, record)
        _check_offer_rules(value)
        return cls(
            title=value["title"],
            timezone=value["timezone"],
            windows=tuple(Window.from_json(w) for w in value["windows"]),
            durations=tuple(value["durations"]),
            created_at=parse_datetime(value["createdAt"]),
            description=value.get("description"),
            date_overrides=tuple(
                DateOverride(
                    date=date.fromisoformat(o["date"]),
                    windows=tuple(TimeRange(w["start"], w["end"]) for w in o["windows"]),
                )
                for o in value.get("dateOverrides", ())
            ),
            slot_step_minutes=value["slotStepMinutes"],
            buffer_before_minutes=value["bufferBeforeMinutes"],
            buffer_after_minutes=value["bufferAfterMinutes"],
            min_notice_minutes=value["minNoticeMinutes"],
            horizon_days=value["horizonDays"],
            max_per_day=value.get("maxPerDay"),
            policy=value["policy"],
            requires_approval=value["requiresApproval"],
            hold_minutes=value["holdMinutes"],
            location=value.get("location"),
            valid_from=_optional_datetime(value.get("validFrom")),
            valid_until=_optional_datetime(value.get("validUntil")),
        )

    def to_record(self) -> dict[str, Any]:
        """The record as published, every default written out."""
        record: dict[str, Any] = {
            "$type": NSID,
            "title": self.title,
            "timezone": self.timezone,
            "windows": [w.to_json() for w in self.windows],
            "durations": list(self.durations),
            "slotStepMinutes": self.slot_step_minutes,
            "bufferBeforeMinutes": self.buffer_before_minutes,
            "bufferAfterMinutes": self.buffer_after_minutes,
            "minNoticeMinutes": self.min_notice_minutes,
            "horizonDays": self.horizon_days,
            "policy": self.policy,
            "requiresApproval": self.requires_approval,
            "holdMinutes": self.hold_minutes,
            "createdAt": format_datetime(self.created_at),
        }
        optional = {
            "description": self.description,
            "dateOverrides": [o.to_json() for o in self.date_overrides] or None,
            "maxPerDay": self.max_per_day,
            "location": self.location,
            "validFrom": format_datetime(self.valid_from) if self.valid_from else None,
            "validUntil": format_datetime(self.valid_until) if self.valid_until else None,
        }
        record.update({key: value for key, value in optional.items() if value is not None})
        return record


def _optional_datetime(text: str | None) -> datetime | None:
    return None if text is None else parse_datetime(text)


def _check_offer_rules(value: Mapping[str, Any]) -> None:
    """What the schema cannot say about a slot offer."""
    check_zone(value["timezone"], "timezone")
    for i, window in enumerate(value["windows"]):
        check_time_range(window, f"windows[{i}]")
    seen: dict[date, int] = {}
    for i, override in enumerate(value.get("dateOverrides", ())):
        path = f"dateOverrides[{i}]"
        day = check_local_date(override["date"], f"{path}.date")
        if day in seen:
            raise LexiconValidationError(f"{path}.date", f"repeats dateOverrides[{seen[day]}] ({day})")
        seen[day] = i
        for j, window in enumerate(override["windows"]):
            check_time_range(window, f"{path}.windows[{j}]")
    if "validFrom" in value and "validUntil" in value:
        if parse_datetime(value["validUntil"]) <= parse_datetime(value["validFrom"]):
            raise LexiconValidationError("validUntil", "must be after validFrom")
