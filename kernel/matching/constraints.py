"""The hard rules of a match, turned into bounds both engines (fast and naive) share.

A *candidate* is a start ``s`` on a window's grid (``grid_origin + k * step``) with

* the meeting inside the window, which is already clipped to the offer's validity and
  to ``now + minNotice``;
* ``s >= earliest`` (the guest's) and ``s + duration <= latest``;
* ``s < now + horizonDays``: the horizon bounds when a meeting starts, not when it ends;
* a local date (the window's, in the offer's zone) not already at ``maxPerDay``
  held/confirmed bookings of this offer.

A candidate is *free* when its block ``[s - bufferBefore, s + duration + bufferAfter)``
overlaps no host busy time and no other booking's block (which carries that booking's
own buffers), and the meeting itself overlaps no guest busy time and nothing excluded.
The guest's calendar is checked against the meeting only: buffers are the host's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from kernel.calendar.windows import WeeklyHours
from kernel.calendar.zones import get_zone
from kernel.matching import explain
from kernel.matching.request import MatchRequest, MatchResult, NoSlotReason


@dataclass(frozen=True, slots=True)
class SearchPlan:
    duration: timedelta
    step: timedelta
    buffer_before: timedelta
    buffer_after: timedelta
    window_start: datetime  # windows are clipped here: now + notice, or validFrom if later
    window_end: datetime  # and here: horizon end + duration, or validUntil if sooner
    start_min: datetime  # candidates start at or after this
    horizon_end: datetime  # candidates start before this
    end_max: datetime | None  # candidates end at or before this (the guest's latest)
    hours: WeeklyHours
    full_days: frozenset[date]
    preferred_hours: WeeklyHours | None  # None: the guest stated no preferred hours
    balanced: bool
    texts: explain.Texts

    def stops_before(self, window_start: datetime) -> bool:
        """True when no window starting here or later can hold a candidate."""
        if window_start >= self.horizon_end:
            return True
        return self.end_max is not None and window_start + self.duration > self.end_max

    def start_range(self, origin: datetime, lo: datetime, hi: datetime) -> tuple[int, int]:
        """Grid indexes ``k`` of candidates whose meeting lies in [lo, hi); empty when k_lo > k_hi."""
        latest_end = hi if self.end_max is None else min(hi, self.end_max)
        k_lo = _ceil_div(max(lo, self.start_min) - origin, self.step)
        k_hi = min(
            (latest_end - self.duration - origin) // self.step,
            _ceil_div(self.horizon_end - origin, self.step) - 1,
        )
        return max(k_lo, 0), k_hi


def _ceil_div(a: timedelta, b: timedelta) -> int:
    return -(-a // b)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def plan_search(req: MatchRequest) -> SearchPlan | MatchResult:
    """The bounds of the search, or the answer when the request cannot have a slot at all."""
    offer = req.offer
    preferences = req.preferences
    # Explanations speak the guest's time when we know their zone, else the host's.
    display_zone = get_zone(preferences.timezone if preferences and preferences.timezone else offer.timezone)
    texts = explain.Texts.build(req.duration_minutes, display_zone, preferences, offer.timezone)
    if req.duration_minutes not in offer.durations:
        return texts.duration_not_offered(offer.durations)

    duration = timedelta(minutes=req.duration_minutes)
    bookable_from = _utc(req.now) + timedelta(minutes=offer.min_notice_minutes)
    horizon_end = _utc(req.now) + timedelta(days=offer.horizon_days)
    if bookable_from >= horizon_end:
        return texts.failure(
            NoSlotReason.NO_OPEN_HOURS, "This offer asks for more notice than it books ahead."
        )

    first_start = bookable_from if offer.valid_from is None else max(bookable_from, _utc(offer.valid_from))
    last_end = (
        horizon_end + duration
        if offer.valid_until is None
        else min(horizon_end + duration, _utc(offer.valid_until))
    )
    if first_start >= horizon_end or first_start + duration > last_end:
        return texts.outside_validity(offer.valid_from, offer.valid_until)

    start_min = first_start if req.earliest is None else max(first_start, _utc(req.earliest))
    end_max = None if req.latest is None else _utc(req.latest)
    fits_guest = end_max is None or start_min + duration <= end_max
    if start_min >= horizon_end or start_min + duration > last_end or not fits_guest:
        return texts.outside_booking_range(first_start, horizon_end)

    preferred_hours = None
    if preferences is not None and preferences.windows:
        preferred_hours = WeeklyHours.build(preferences.timezone or offer.timezone, preferences.windows)
    hours = WeeklyHours.of_offer(offer)
    return SearchPlan(
        duration=duration,
        step=timedelta(minutes=offer.slot_step_minutes),
        buffer_before=timedelta(minutes=offer.buffer_before_minutes),
        buffer_after=timedelta(minutes=offer.buffer_after_minutes),
        window_start=first_start,
        window_end=last_end,
        start_min=start_min,
        horizon_end=horizon_end,
        end_max=end_max,
        hours=hours,
        full_days=_full_days(req, hours.zone),
        preferred_hours=preferred_hours,
        balanced=preferences is not None and preferences.prefer == "balanced",
        texts=texts,
    )


def _full_days(req: MatchRequest, zone: ZoneInfo) -> frozenset[date]:
    """Host-local dates that already have maxPerDay bookings of this offer."""
    cap = req.offer.max_per_day
    if cap is None:
        return frozenset()
    per_day = Counter(
        b.start.astimezone(zone).date() for b in req.host_bookings if b.offer_uri == req.offer_uri
    )
    return frozenset(day for day, count in per_day.items() if count >= cap)
