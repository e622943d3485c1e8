"""Rules on time notation that JSON schemas cannot express: zones, "HH:MM", dates."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from kernel.calendar.wall_clock import format_hhmm, parse_hhmm
from kernel.calendar.zones import is_iana_zone
from kernel.lexicon.errors import LexiconValidationError, join_path

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def check_zone(name: str, path: str) -> None:
    if not is_iana_zone(name):
        raise LexiconValidationError(path, f"must be an IANA time zone such as 'Europe/Paris', not {name!r}")


def check_time_range(value: Mapping[str, Any], path: str) -> tuple[int, int]:
    """Minutes after midnight of a ``{start, end}`` pair; end after start, "24:00" only as end."""
    try:
        start = parse_hhmm(value["start"])
    except ValueError:
        raise LexiconValidationError(
            join_path(path, "start"), "must be a time 'HH:MM' from 00:00 to 23:59"
        ) from None
    try:
        end = parse_hhmm(value["end"], end_of_day=True)
    except ValueError:
        raise LexiconValidationError(
            join_path(path, "end"), "must be a time 'HH:MM' from 00:00 to 24:00"
        ) from None
    if end <= start:
        raise LexiconValidationError(join_path(path, "end"), f"must be after start ({format_hhmm(start)})")
    return start, end


def check_local_date(text: str, path: str) -> date:
    # date.fromisoformat alone would also take "20261124" and week dates.
    if _DATE.fullmatch(text) is None:
        raise LexiconValidationError(path, "must be a date 'YYYY-MM-DD'")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise LexiconValidationError(path, f"is not a calendar date: {text!r}") from None
