"""The office hours editor's form ⇄ a `com.huddle.slotOffer` record.

The form has up to RANGES_PER_DAY time ranges per weekday, date overrides as lines of text
(`2026-12-24 closed`, `2026-12-31 10:00-12:00 14:00-16:00`), durations as a list of minutes, and
one field per number. Days with the same range share one `#window` in the record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from api.web.words import DAY_KEYS
from kernel.lexicon import LexiconValidationError, SlotOffer, format_datetime
from kernel.lexicon.slot_offer import NSID

RANGES_PER_DAY = 3
NUMBER_FIELDS = {
    # form field: (record field, default, label)
    "slot_step": ("slotStepMinutes", 15, "Start times every"),
    "buffer_before": ("bufferBeforeMinutes", 0, "Free time before"),
    "buffer_after": ("bufferAfterMinutes", 0, "Free time after"),
    "min_notice": ("minNoticeMinutes", 120, "Notice"),
    "horizon": ("horizonDays", 60, "How far ahead"),
    "hold_minutes": ("holdMinutes", 15, "Hold"),
}
_RANGE = re.compile(r"^(\d{1,2}:\d{2})\s*[-–]\s*(\d{1,2}:\d{2})$")
_FIELD_OF_PATH = {
    "title": "title",
    "description": "description",
    "timezone": "timezone",
    "windows": "hours",
    "dateOverrides": "overrides",
    "durations": "durations",
    "slotStepMinutes": "slot_step",
    "bufferBeforeMinutes": "buffer_before",
    "bufferAfterMinutes": "buffer_after",
    "minNoticeMinutes": "min_notice",
    "horizonDays": "horizon",
    "maxPerDay": "max_per_day",
    "holdMinutes": "hold_minutes",
    "policy": "policy",
    "location": "location",
}


class OfferFormError(ValueError):
    """A form value that cannot make a valid offer; `field` is the form field to point at."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def blank_form(timezone: str) -> dict[str, Any]:
    """A new offer's form: weekdays 09:00–17:00, 30 minutes."""
    values: dict[str, Any] = {
        "title": "Office hours",
        "description": "",
        "location": "",
        "timezone": timezone,
        "durations": "30",
        "overrides": "",
        "max_per_day": "",
        "policy": "anyone",
        "requires_approval": False,
    }
    for name, (_, default, _label) in NUMBER_FIELDS.items():
        values[name] = str(default)
    for day in DAY_KEYS:
        for i in range(RANGES_PER_DAY):
            working = day not in ("sat", "sun") and i == 0
            values[f"hours_{day}_{i}_start"] = "09:00" if working else ""
            values[f"hours_{day}_{i}_end"] = "17:00" if working else ""
    return values


def form_from_offer(offer: SlotOffer) -> dict[str, Any]:
    """The form showing an existing offer."""
    values = blank_form(offer.timezone)
    values.update(
        {
            "title": offer.title,
            "description": offer.description or "",
            "location": offer.location or "",
            "durations": ", ".join(str(d) for d in offer.durations),
            "max_per_day": str(offer.max_per_day) if offer.max_per_day else "",
            "policy": offer.policy,
            "requires_approval": offer.requires_approval,
            "slot_step": str(offer.slot_step_minutes),
            "buffer_before": str(offer.buffer_before_minutes),
            "buffer_after": str(offer.buffer_after_minutes),
            "min_notice": str(offer.min_notice_minutes),
            "horizon": str(offer.horizon_days),
            "hold_minutes": str(offer.hold_minutes),
        }
    )
    per_day: dict[str, list[tuple[str, str]]] = {day: [] for day in DAY_KEYS}
    for window in offer.windows:
        for day in window.days:
            per_day[day].append((window.start, window.end))
    for day in DAY_KEYS:
        day_ranges = sorted(per_day[day])
        for i in range(RANGES_PER_DAY):
            start, end = day_ranges[i] if i < len(day_ranges) else ("", "")
            values[f"hours_{day}_{i}_start"] = start
            values[f"hours_{day}_{i}_end"] = end
    lines = []
    for override in offer.date_overrides:
        ranges = " ".join(f"{w.start}-{w.end}" for w in override.windows)
        lines.append(f"{override.date.isoformat()} {ranges or 'closed'}")
    values["overrides"] = "\n".join(lines)
    return values


def record_from_form(
    form: Mapping[str, Any], *, created_at: datetime, keep: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The record the form describes, checked against the lexicon; OfferFormError naming the field.

    `keep`: the record being edited; fields the form does not show (validFrom, validUntil, …) are kept.
    """
    record: dict[str, Any] = {k: v for k, v in (keep or {}).items() if k not in _known_keys()}
    record.update(
        {
            "$type": NSID,
            "title": _text(form, "title"),
            "timezone": _text(form, "timezone") or "UTC",
            "windows": _windows(form),
            "durations": _durations(form),
            "policy": _text(form, "policy") or "anyone",
            "requiresApproval": _checked(form, "requires_approval"),
            "createdAt": format_datetime(created_at),
        }
    )
    for name, (key, default, label) in NUMBER_FIELDS.items():
        record[key] = _int(form, name, label, default)
    max_per_day = _text(form, "max_per_day")
    if max_per_day:
        record["maxPerDay"] = _int(form, "max_per_day", "Meetings a day", None)
    for name, key in (("description", "description"), ("location", "location")):
        if _text(form, name):
            record[key] = _text(form, name)
    overrides = _overrides(form)
    if overrides:
        record["dateOverrides"] = overrides
    try:
        SlotOffer.from_record(record)
    except LexiconValidationError as exc:
        top = re.split(r"[.\[]", exc.path or "", maxsplit=1)[0]
        raise OfferFormError(_FIELD_OF_PATH.get(top, "title"), f"{exc.path}: {exc}") from exc
    return record


def _known_keys() -> set[str]:
    return (
        {"$type", "title", "timezone", "windows", "durations", "policy", "requiresApproval", "createdAt"}
        | {key for key, _, _ in NUMBER_FIELDS.values()}
        | {"maxPerDay", "description", "location", "dateOverrides"}
    )


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _checked(form: Mapping[str, Any], name: str) -> bool:
    value = form.get(name)
    return value is True or _text(form, name) in ("on", "true", "1", "yes")


def _int(form: Mapping[str, Any], name: str, label: str, default: int | None) -> int:
    text = _text(form, name)
    if not text and default is not None:
        return default
    try:
        return int(text)
    except ValueError as exc:
        raise OfferFormError(name, f"{label}: enter a whole number of minutes or days") from exc


def _windows(form: Mapping[str, Any]) -> list[dict[str, Any]]:
    by_range: dict[tuple[str, str], list[str]] = {}
    for day in DAY_KEYS:
        for i in range(RANGES_PER_DAY):
            start = _text(form, f"hours_{day}_{i}_start")[:5]
            end = _text(form, f"hours_{day}_{i}_end")[:5]
            if not start and not end:
                continue
            if not (start and end):
                raise OfferFormError("hours", f"{day.capitalize()}: a range needs both a start and an end")
            if end == "00:00":
                end = "24:00"  # "until midnight" from a time picker
            by_range.setdefault((start, end), []).append(day)
    if not by_range:
        raise OfferFormError("hours", "Open hours: give at least one day a start and an end time")
    windows = [{"days": days, "start": start, "end": end} for (start, end), days in by_range.items()]
    return sorted(windows, key=lambda w: (DAY_KEYS.index(w["days"][0]), w["start"]))


def _durations(form: Mapping[str, Any]) -> list[int]:
    parts = [p for p in re.split(r"[,\s]+", _text(form, "durations")) if p]
    try:
        values = sorted({int(p) for p in parts})
    except ValueError as exc:
        raise OfferFormError("durations", "Meeting lengths: whole minutes, separated by commas") from exc
    if not values:
        raise OfferFormError("durations", "Meeting lengths: give at least one, for example 30")
    return values


def _overrides(form: Mapping[str, Any]) -> list[dict[str, Any]]:
    overrides = []
    for n, line in enumerate(_text(form, "overrides").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        day, rest = parts[0], parts[1:]
        windows: list[dict[str, str]] = []
        if rest and rest[0].lower() not in ("closed", "off"):
            for item in " ".join(rest).replace(",", " ").split():
                match = _RANGE.match(item)
                if match is None:
                    raise OfferFormError(
                        "overrides", f"Date changes, line {n}: write ranges like 10:00-12:00, or 'closed'"
                    )
                start, end = match.groups()
                windows.append({"start": start.zfill(5), "end": end.zfill(5)})
        overrides.append({"date": day, "windows": windows})
    return overrides
