"""Picks the best slot for a match request with interval arithmetic.

For each offer window, in time order: free = window − host obstacles − guest obstacles,
where a host busy interval or booking block [a, b) rules out meetings that overlap
[a − bufferAfter, b + bufferBefore) (the new meeting's block must clear it). In each free
piece the candidates are an arithmetic progression on the window's grid, so the earliest
one, or the ones at the piece's ends, come from a division instead of a scan. Obstacles
come from ``SpanIndex``es, which look only at the spans starting inside a window, and
the walk stops as soon as no later window can do better: a slot found on day two does not
pay for sixty days of busy times.

Ranking: a slot inside the guest's preferred hours beats any outside them; then
"earliest" takes the earliest start, and "balanced" takes the slot that leaves the
smallest free gap in the host's time beside it (0 when it sits against another
commitment or a window edge), so the host's remaining free time stays in larger blocks;
ties go to the earliest start. ``kernel.matching.naive`` is the brute-force reference
that must agree with this module on every request.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import chain
from operator import attrgetter
from typing import NamedTuple

from kernel.calendar.intervals import intersect_spans, subtract_spans, union_spans
from kernel.calendar.span_index import SpanIndex
from kernel.calendar.sweep import Pair, SweepUnion
from kernel.calendar.windows import iter_window_spans
from kernel.matching.constraints import SearchPlan, plan_search
from kernel.matching.explain import Choice
from kernel.matching.request import BookedBlock, MatchRequest, MatchResult, NoSlotReason, Slot

__all__ = ["BookedBlock", "MatchRequest", "MatchResult", "NoSlotReason", "Slot", "pick_slot"]

_start, _end = attrgetter("start"), attrgetter("end")
_block_start, _block_end = attrgetter("block_start"), attrgetter("block_end")


def pick_slot(req: MatchRequest) -> MatchResult:
    """The best slot for ``req``, or the reason there is none, with an explanation."""
    plan = plan_search(req)
    if isinstance(plan, MatchResult):
        return plan
    return _Search(req, plan).run()


class _Window(NamedTuple):
    start: datetime
    end: datetime
    day: date
    origin: datetime
    k_lo: int  # grid indexes of the window's candidates, free or not
    k_hi: int


@dataclass(slots=True)
class _Tier:
    """Best and earliest free candidates among one kind (preferred, or any)."""

    best: tuple[timedelta, datetime, date] | None = None  # (gap or 0, start, local date)
    earliest: tuple[datetime, timedelta] | None = None  # (start, gap)

    def offer(self, start: datetime, day: date, gap: timedelta) -> None:
        if self.best is None or (gap, start) < self.best[:2]:
            self.best = (gap, start, day)
        if self.earliest is None or start < self.earliest[0]:
            self.earliest = (start, gap)


_NO_GAP = timedelta(0)


@dataclass(slots=True)
class _Search:
    req: MatchRequest
    plan: SearchPlan
    host_busy: SpanIndex = field(init=False)
    bookings: SpanIndex = field(init=False)
    guest: SpanIndex = field(init=False)
    preferred: SweepUnion | None = field(init=False)
    preferred_tier: _Tier = field(init=False, default_factory=_Tier)
    any_tier: _Tier = field(init=False, default_factory=_Tier)

    def __post_init__(self) -> None:
        req, plan = self.req, self.plan
        # A host busy interval or booking block [a, b) rules out meetings overlapping
        # [a - bufferAfter, b + bufferBefore): the new meeting's block must clear it.
        # Busy times and bookings stay in separate indexes: each usually arrives sorted,
        # and keeping them apart spares sorting the two together.
        pads = {"pad_before": plan.buffer_after, "pad_after": plan.buffer_before}
        busy, bookings = req.host_busy, req.host_bookings
        self.host_busy = SpanIndex([*map(_start, busy)], [*map(_end, busy)], **pads)
        self.bookings = SpanIndex([*map(_block_start, bookings)], [*map(_block_end, bookings)], **pads)
        # The guest's calendar and lost races are checked against the meeting itself.
        guest = (*(req.guest_busy or ()), *req.excluded)
        self.guest = SpanIndex([*map(_start, guest)], [*map(_end, guest)])
        self.preferred = None
        if plan.preferred_hours is not None:
            spans = iter_window_spans(plan.preferred_hours, plan.start_min, plan.horizon_end + plan.duration)
            self.preferred = SweepUnion((s, e) for s, e, _, _ in spans)

    def run(self) -> MatchResult:
        plan = self.plan
        scanned: list[_Window] = []
        capped: list[_Window] = []
        for start, end, day, origin in iter_window_spans(plan.hours, plan.window_start, plan.window_end):
            if plan.stops_before(start) or self._settled(self._target(), start):
                break
            k_lo, k_hi = plan.start_range(origin, start, end)
            if k_lo > k_hi:
                continue
            window = _Window(start, end, day, origin, k_lo, k_hi)
            if day in plan.full_days:
                capped.append(window)
                continue
            scanned.append(window)
            self._consider(window, self.preferred_tier, self.any_tier)
        return self._answer(scanned, capped)

    def _target(self) -> _Tier:
        return self.preferred_tier if self.preferred is not None else self.any_tier

    def _settled(self, tier: _Tier, window_start: datetime) -> bool:
        """True when no window starting at ``window_start`` or later can beat ``tier``'s best."""
        best = tier.best
        if best is None or window_start < best[1]:
            return False
        # "earliest" is settled by any find; "balanced" only by one that leaves no gap.
        return not self.plan.balanced or best[0] == _NO_GAP

    def _free_pieces(self, window: _Window) -> tuple[list[Pair], list[Pair]]:
        """The window's free pieces, and the host's obstacles in it (for measuring gaps)."""
        whole = [(window.start, window.end)]
        host = self.host_busy.covering(window.start, window.end)
        if host == whole:
            return [], host  # a busy day: no need to look further
        bookings = self.bookings.covering(window.start, window.end)
        if bookings:
            host = union_spans(host, bookings)
        guest = self.guest.covering(window.start, window.end)
        blocked = union_spans(host, guest) if guest else host
        return subtract_spans(whole, blocked), host

    def _consider(self, window: _Window, preferred_tier: _Tier, any_tier: _Tier) -> None:
        any_settled = self._settled(any_tier, window.start)
        preferred: list[Pair] = []
        if self.preferred is not None:
            preferred = self.preferred.overlapping(window.start, window.end)
            if not preferred and any_settled:
                return  # neither kind of candidate can improve here
        free, host = self._free_pieces(window)
        if not free:
            return
        if not any_settled:
            self._offer(window, free, host, any_tier)
        if preferred:
            self._offer(window, intersect_spans(free, preferred), host, preferred_tier)

    def _offer(self, window: _Window, pieces: list[Pair], host: list[Pair], tier: _Tier) -> None:
        plan = self.plan
        for lo, hi in pieces:
            k_lo, k_hi = plan.start_range(window.origin, lo, hi)
            k_lo, k_hi = max(k_lo, window.k_lo), min(k_hi, window.k_hi)
            if k_lo > k_hi:
                continue
            first = window.origin + k_lo * plan.step
            if not plan.balanced:
                tier.offer(first, window.day, _NO_GAP)
                return  # pieces are in order: nothing later in this window is earlier
            # The smaller gap is smallest at one end of the run of candidates.
            last = window.origin + k_hi * plan.step
            tier.offer(first, window.day, self._gap(first, window, host))
            tier.offer(last, window.day, self._gap(last, window, host))

    def _gap(self, start: datetime, window: _Window, host: list[Pair]) -> timedelta:
        """The smaller of the host's free gaps left before and after a meeting at ``start``."""
        end = start + self.plan.duration
        ends = [e for _, e in host]
        i = bisect_right(ends, start)
        free_from = max(window.start, ends[i - 1]) if i else window.start
        starts = [s for s, _ in host]
        j = bisect_left(starts, end)
        free_until = min(window.end, starts[j]) if j < len(starts) else window.end
        return min(start - free_from, free_until - end)

    def _answer(self, scanned: list[_Window], capped: list[_Window]) -> MatchResult:
        plan = self.plan
        preferred = self.preferred is not None
        tier, in_preferred = self.any_tier, (False if preferred else None)
        if preferred and self.preferred_tier.best is not None:
            tier, in_preferred = self.preferred_tier, True
        if tier.best is None:
            return self._no_slot(scanned, capped)
        gap, start, day = tier.best
        slot = Slot(
            start=start,
            end=start + plan.duration,
            block_start=start - plan.buffer_before,
            block_end=start + plan.duration + plan.buffer_after,
            local_date=day,
        )
        if plan.balanced:
            assert tier.earliest is not None
            earliest_start, earliest_gap = tier.earliest
            choice = Choice(slot, in_preferred, 0, gap, earliest_start, earliest_gap)
        else:
            choice = Choice(slot, in_preferred, self._candidates_before(scanned, start, bool(in_preferred)))
        return plan.texts.chosen(choice)

    def _candidates_before(self, scanned: list[_Window], before: datetime, in_preferred: bool) -> int:
        """Candidates (inside preferred hours, if asked) starting before ``before``."""
        plan = self.plan
        count = 0
        for window in scanned:
            if window.start >= before:
                continue
            k_before = -(-(before - window.origin) // plan.step) - 1
            if in_preferred:
                assert self.preferred is not None
                ranges = [
                    plan.start_range(window.origin, max(lo, window.start), min(hi, window.end))
                    for lo, hi in self.preferred.overlapping(window.start, window.end)
                ]
            else:
                ranges = [(window.k_lo, window.k_hi)]
            for k_lo, k_hi in ranges:
                count += max(0, min(k_hi, window.k_hi, k_before) - max(k_lo, window.k_lo) + 1)
        return count

    def _no_slot(self, scanned: list[_Window], capped: list[_Window]) -> MatchResult:
        plan = self.plan
        candidates = sum(w.k_hi - w.k_lo + 1 for w in chain(scanned, capped))
        if not candidates:
            reason = NoSlotReason.NO_OPEN_HOURS
        else:
            on_full_days = _Tier()
            for window in capped:
                self._consider(window, _Tier(), on_full_days)
            reason = NoSlotReason.DAILY_LIMIT_REACHED if on_full_days.best else NoSlotReason.NO_FREE_SLOT
        end = plan.horizon_end if plan.end_max is None else min(plan.horizon_end, plan.end_max)
        return plan.texts.no_slot(reason, candidates, plan.start_min, end)
