"""Weekly hours (an offer's windows, a guest's preferred hours) as concrete instants.

Each local date in the zone gets that weekday's windows, or the date's override when
there is one (an empty override closes the day). A window belongs to the local date it
starts on; "24:00" ends it at the next midnight.

DST policy (implemented in ``kernel.calendar.zones.wall_time_to_utc``):

* A wall time that does not exist (spring-forward gap) becomes the first instant that
  does, the transition itself: on 8 Mar 2026 in New York a window 02:30–05:00 runs from
  03:00 EDT, and a window 02:00–02:30 is empty that night.
* A wall time that happens twice (fall-back overlap) is its first occurrence
  (``fold=0``), for starts and ends alike: on 1 Nov 2026 in New York a window
  00:00–01:30 ends at 01:30 EDT, and 01:30–03:00 runs from 01:30 EDT to 03:00 EST.
* A window spans real time from its resolved start to its resolved end, so a
  09:00–17:00 window is 8 hours except when a transition falls inside it. Slots start at
  the window's real start (``grid_origin``) plus whole steps of real time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from kernel.calendar.intervals import Interval
from kernel.calendar.wall_clock import WEEKDAYS, parse_hhmm
from kernel.calendar.zones import get_zone, wall_time_to_utc

if TYPE_CHECKING:
    # Only for annotations: kernel.lexicon itself imports kernel.calendar.
    from kernel.lexicon.slot_offer import DateOverride, SlotOffer, TimeRange, Window

WallRanges = tuple[tuple[int, int], ...]
"""(start, end) minutes after local midnight, sorted."""

_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class LocalWindow:
    """One window on one local date: ``interval`` clipped to the range asked for,
    ``grid_origin`` the window's real (unclipped) start, where its slot grid begins."""

    interval: Interval
    local_date: date
    grid_origin: datetime


@dataclass(frozen=True, slots=True)
class WeeklyHours:
    """Parsed weekly hours in one zone; ``weekly[0]`` is Monday."""

    zone: ZoneInfo
    weekly: tuple[WallRanges, ...]
    overrides: Mapping[date, WallRanges]

    @classmethod
    def build(
        cls, timezone_name: str, windows: Iterable[Window], overrides: Iterable[DateOverride] = ()
    ) -> WeeklyHours:
        per_day: list[list[tuple[int, int]]] = [[] for _ in WEEKDAYS]
        for window in windows:
            span = _parse_range(window)
            for day in set(window.days):
                per_day[WEEKDAYS.index(day)].append(span)
        return cls(
            zone=get_zone(timezone_name),
            weekly=tuple(tuple(sorted(spans)) for spans in per_day),
            overrides={o.date: tuple(sorted(_parse_range(w) for w in o.windows)) for o in overrides},
        )

    @classmethod
    def of_offer(cls, offer: SlotOffer) -> WeeklyHours:
        return cls.build(offer.timezone, offer.windows, offer.date_overrides)

    def on(self, day: date) -> WallRanges:
        """The ranges of one local date."""
        found = self.overrides.get(day)
        return self.weekly[day.weekday()] if found is None else found


def _parse_range(window: Window | TimeRange) -> tuple[int, int]:
    return parse_hhmm(window.start), parse_hhmm(window.end, end_of_day=True)


def iter_window_spans(
    hours: WeeklyHours, start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime, date, datetime]]:
    """``(clipped start, clipped end, local date, real start)`` of each window meeting [start, end).

    Yields in order of start, lazily, so a caller that finds what it needs early stops
    paying for zone conversions of later dates. ``start`` and ``end`` must be UTC.
    """
    zone = hours.zone
    # A window belongs to the date it starts on and may end at the next midnight, so the
    # date before start's local date can still reach into the range.
    day = start.astimezone(zone).date() - _ONE_DAY
    last = end.astimezone(zone).date()
    while day <= last:
        for start_minute, end_minute in hours.on(day):
            real_start = wall_time_to_utc(day, start_minute, zone)
            if real_start >= end:
                return
            real_end = wall_time_to_utc(day, end_minute, zone)
            clipped_start = max(real_start, start)
            clipped_end = min(real_end, end)
            if clipped_start < clipped_end:
                yield clipped_start, clipped_end, day, real_start
        day += _ONE_DAY


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("expected a timezone-aware datetime")
    return moment.astimezone(UTC)


def expand_hours(hours: WeeklyHours, start: datetime, end: datetime) -> list[LocalWindow]:
    """The windows of ``hours`` that meet [start, end), clipped to it, in order of start."""
    return [
        LocalWindow(Interval(s, e), day, origin)
        for s, e, day, origin in iter_window_spans(hours, _utc(start), _utc(end))
    ]


def expand_windows(offer: SlotOffer, start: datetime, end: datetime) -> list[LocalWindow]:
    """The offer's windows that meet [start, end) and its validity, clipped to both."""
    lo, hi = _utc(start), _utc(end)
    if offer.valid_from is not None:
        lo = max(lo, _utc(offer.valid_from))
    if offer.valid_until is not None:
        hi = min(hi, _utc(offer.valid_until))
    if lo >= hi:
        return []
    return expand_hours(WeeklyHours.of_offer(offer), lo, hi)


def expand_weekly(
    windows: Iterable[Window], timezone_name: str, start: datetime, end: datetime
) -> list[LocalWindow]:
    """Weekly windows in ``timezone_name`` (e.g. a guest's preferred hours) over [start, end)."""
    return expand_hours(WeeklyHours.build(timezone_name, windows), start, end)
