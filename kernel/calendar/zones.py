"""IANA time zones and turning a local wall-clock time into an instant.

DST policy, used for offer windows and guest preferences alike:

* A wall time that does not exist (the spring-forward gap) becomes the first instant
  that does exist after it, which is the transition itself. A window starting at 02:30
  on a New York spring-forward night starts at 03:00 EDT; a window 02:00–02:30 that
  night is empty. This keeps exactly the wall-clock times the host wrote that exist.
* A wall time that happens twice (the fall-back overlap) means its first occurrence
  (``fold=0``), for window starts and ends alike. A window ending at 01:30 on a New
  York fall-back night ends at 01:30 EDT; the repeated hour after it is not offered.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

# Present in some installations' zone lists but not real places: "localtime" mirrors
# the machine's own setting (so results would differ per machine), "Factory" is a
# placeholder zone.
_NOT_PLACES = frozenset({"localtime", "Factory", "posixrules"})


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones() - _NOT_PLACES)


def is_iana_zone(name: object) -> bool:
    """True for a real IANA zone name such as ``Europe/Paris`` (case-sensitive)."""
    return isinstance(name, str) and name in _zone_names()


def get_zone(name: str) -> ZoneInfo:
    """The zone for an IANA name; ValueError for anything else."""
    if not is_iana_zone(name):
        raise ValueError(f"not an IANA time zone: {name!r}")
    return ZoneInfo(name)


def wall_time_to_utc(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of ``day`` at ``minutes`` past local midnight in ``zone``.

    ``minutes`` may be 1440 (the next day's midnight, for windows ending at "24:00").
    Gaps and overlaps are resolved as the module docstring says.
    """
    naive = datetime(day.year, day.month, day.day) + timedelta(minutes=minutes)  # noqa: DTZ001 - wall time
    # ZoneInfo reads only the wall-clock fields and ``fold`` of the datetime it is given,
    # so asking it about the naive value skips building two aware datetimes; this runs
    # twice per window per day in the matcher.
    before = zone.utcoffset(naive)
    after = zone.utcoffset(naive.replace(fold=1))
    assert before is not None and after is not None  # a ZoneInfo always knows its offset
    if before >= after:
        # Normal time, or an overlap where fold=0 is the first occurrence.
        return (naive - before).replace(tzinfo=UTC)
    return _transition_instant(naive - after, naive - before, after, zone)


def _transition_instant(lo: datetime, hi: datetime, after: timedelta, zone: ZoneInfo) -> datetime:
    """The first instant in (lo, hi] (naive UTC) whose offset is ``after``.

    zoneinfo exposes no transition list, so bisect: gaps are at most a few hours and
    transitions fall on whole seconds, so this takes about a dozen steps, and only on
    the nights a window starts or ends inside a gap.
    """
    lo_s, hi_s = 0, int((hi - lo).total_seconds())
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        instant = (lo + timedelta(seconds=mid)).replace(tzinfo=UTC)
        if instant.astimezone(zone).utcoffset() == after:
            hi_s = mid
        else:
            lo_s = mid
    return (lo + timedelta(seconds=hi_s)).replace(tzinfo=UTC)
