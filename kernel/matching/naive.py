"""The obvious matcher: every grid slot of every window, tested against every interval.

It is the benchmark's baseline and the property tests' oracle, so it shares only the
rules (``plan_search``: bounds and windows) and the wording with ``engine``, never its
arithmetic. Both must return equal results for every request. It judges every slot in
the horizon before choosing, with no shortcut, so it stays obviously right.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from kernel.calendar.intervals import merge_spans
from kernel.calendar.windows import iter_window_spans
from kernel.matching.constraints import SearchPlan, plan_search
from kernel.matching.explain import Choice
from kernel.matching.request import MatchRequest, MatchResult, NoSlotReason, Slot

Pair = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class _Candidate:
    start: datetime
    day: date
    window: Pair


def pick_slot_naive(req: MatchRequest) -> MatchResult:
    """Same contract as ``engine.pick_slot``, by brute force."""
    plan = plan_search(req)
    if isinstance(plan, MatchResult):
        return plan
    d = plan.duration
    host = [
        (b.start - plan.buffer_after, b.end + plan.buffer_before) for b in req.host_busy if b.start < b.end
    ]
    host += [
        (b.block_start - plan.buffer_after, b.block_end + plan.buffer_before)
        for b in req.host_bookings
        if b.block_start < b.block_end
    ]
    guest = [(i.start, i.end) for i in (*(req.guest_busy or ()), *req.excluded) if i.start < i.end]
    preferred: list[Pair] | None = None
    if plan.preferred_hours is not None:
        spans = iter_window_spans(plan.preferred_hours, plan.start_min, plan.horizon_end + d)
        preferred = merge_spans((s, e) for s, e, _, _ in spans)

    def is_free(c: _Candidate) -> bool:
        s, e = c.start, c.start + d
        return not any(a < e and s < b for a, b in host) and not any(a < e and s < b for a, b in guest)

    def is_preferred(c: _Candidate) -> bool:
        assert preferred is not None
        return any(a <= c.start and c.start + d <= b for a, b in preferred)

    def gap(c: _Candidate) -> timedelta:
        s, e = c.start, c.start + d
        free_from = max([c.window[0], *(b for _, b in host if b <= s)])
        free_until = min([c.window[1], *(a for a, _ in host if a >= e)])
        return min(s - free_from, free_until - e)

    # Every candidate is judged before any is chosen: this is the baseline the benchmark
    # measures, and the simplest thing that is obviously right.
    judged = [(c, is_free(c)) for c in _candidates(plan)]
    allowed = [(c, ok) for c, ok in judged if c.day not in plan.full_days]
    # Preferred slots first, then any; without preferred hours there is one tier (None).
    tiers: list[bool | None] = [True, False] if preferred is not None else [None]
    for tier in tiers:
        pool = [(c, ok) for c, ok in allowed if tier is not True or is_preferred(c)]
        free = [c for c, ok in pool if ok]
        if not free:
            continue
        if plan.balanced:
            best = min(free, key=lambda c: (gap(c), c.start))
            choice = Choice(_slot(best, plan), tier, 0, gap(best), free[0].start, gap(free[0]))
        else:
            busy_before = sum(1 for c, _ in pool if c.start < free[0].start)
            choice = Choice(_slot(free[0], plan), tier, busy_before)
        return plan.texts.chosen(choice)

    if not judged:
        reason = NoSlotReason.NO_OPEN_HOURS
    elif any(ok for c, ok in judged if c.day in plan.full_days):
        reason = NoSlotReason.DAILY_LIMIT_REACHED
    else:
        reason = NoSlotReason.NO_FREE_SLOT
    end = plan.horizon_end if plan.end_max is None else min(plan.horizon_end, plan.end_max)
    return plan.texts.no_slot(reason, len(judged), plan.start_min, end)


def _candidates(plan: SearchPlan) -> list[_Candidate]:
    """Every grid start of every window that satisfies the hard rules other than being free."""
    found = []
    for start, end, day, origin in iter_window_spans(plan.hours, plan.window_start, plan.window_end):
        s = origin
        while s < end:
            if (
                start <= s
                and s + plan.duration <= end
                and s >= plan.start_min
                and s < plan.horizon_end
                and (plan.end_max is None or s + plan.duration <= plan.end_max)
            ):
                found.append(_Candidate(s, day, (start, end)))
            s += plan.step
    # Stable: windows that overlap keep their own candidates, in window order at equal starts.
    found.sort(key=lambda c: c.start)
    return found


def _slot(c: _Candidate, plan: SearchPlan) -> Slot:
    end = c.start + plan.duration
    return Slot(c.start, end, c.start - plan.buffer_before, end + plan.buffer_after, c.day)
