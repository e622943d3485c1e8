"""Matching benchmark: ``pick_slot`` against the brute-force ``pick_slot_naive`` on the same inputs.

Run ``python -m bench.matching``. Inputs are generated from a fixed seed: a host in
Europe/Paris open on weekdays over a 60-day horizon with 2,000 busy intervals and 200
bookings, and a guest with 1,000 busy intervals. Busy lists come sorted by start, as
calendar free/busy APIs return them, except in the "unsorted" case.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from kernel.calendar.intervals import Interval
from kernel.lexicon.preferences import Preferences
from kernel.lexicon.slot_offer import SlotOffer, Window
from kernel.matching import BookedBlock, MatchRequest, MatchResult, pick_slot, pick_slot_naive

SEED = 20261125
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
OFFER_URI = "at://did:plc:benchhost/com.huddle.slotOffer/3l4k5j6h7g2aa"
OTHER_URI = "at://did:plc:benchhost/com.huddle.slotOffer/3l4k5j6h7g2bb"


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    description: str
    request: MatchRequest


def _offer(horizon_days: int) -> SlotOffer:
    return SlotOffer.from_record(
        {
            "$type": "com.huddle.slotOffer",
            "title": "Office hours",
            "timezone": "Europe/Paris",
            "windows": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "12:30"},
                {"days": ["mon", "tue", "wed", "thu"], "start": "13:30", "end": "18:00"},
            ],
            "dateOverrides": [{"date": "2026-12-25", "windows": []}, {"date": "2027-01-01", "windows": []}],
            "durations": [30, 60],
            "slotStepMinutes": 15,
            "bufferBeforeMinutes": 10,
            "bufferAfterMinutes": 5,
            "minNoticeMinutes": 120,
            "horizonDays": horizon_days,
            "maxPerDay": 6,
            "createdAt": "2026-11-01T00:00:00.000Z",
        }
    )


def _busy(rng: random.Random, count: int, days: int, work_share: float) -> list[Interval]:
    """``count`` intervals over ``days`` days, ``work_share`` of them in Paris office hours."""
    found = []
    for _ in range(count):
        day = NOW + timedelta(days=rng.randrange(days))
        if rng.random() < work_share:
            minute = rng.randrange(7 * 60, 17 * 60, 5)  # 08:00–18:00 Paris, in UTC
        else:
            minute = rng.randrange(0, 24 * 60, 5)
        start = day.replace(hour=0, minute=0) + timedelta(minutes=minute)
        found.append(
            Interval(start, start + timedelta(minutes=rng.choice([15, 30, 30, 45, 60, 60, 90, 120])))
        )
    return sorted(found)


def _bookings(rng: random.Random, count: int, days: int) -> list[BookedBlock]:
    found = []
    for _ in range(count):
        day = NOW + timedelta(days=rng.randrange(days))
        start = day.replace(hour=0, minute=0) + timedelta(minutes=rng.randrange(8 * 60, 16 * 60, 15))
        end = start + timedelta(minutes=rng.choice([30, 60]))
        uri = OFFER_URI if rng.random() < 0.7 else OTHER_URI
        found.append(BookedBlock(start, end, start - timedelta(minutes=10), end + timedelta(minutes=5), uri))
    return sorted(found, key=lambda b: b.start)


def cases() -> list[Case]:
    rng = random.Random(SEED)
    small = MatchRequest(
        offer=_offer(7),
        offer_uri=OFFER_URI,
        duration_minutes=30,
        now=NOW,
        host_busy=tuple(_busy(rng, 50, 7, 0.8)),
        host_bookings=tuple(_bookings(rng, 10, 7)),
        guest_busy=tuple(_busy(rng, 20, 7, 0.5)),
    )
    full = MatchRequest(
        offer=_offer(60),
        offer_uri=OFFER_URI,
        duration_minutes=30,
        now=NOW,
        host_busy=tuple(_busy(rng, 2000, 60, 0.8)),
        host_bookings=tuple(_bookings(rng, 200, 60)),
        guest_busy=tuple(_busy(rng, 1000, 60, 0.5)),
    )
    shuffled_host, shuffled_guest = list(full.host_busy), list(full.guest_busy or ())
    rng.shuffle(shuffled_host)
    rng.shuffle(shuffled_guest)
    new_york_mornings = Preferences(
        "America/New_York", (Window(("mon", "tue", "wed", "thu", "fri"), "08:00", "11:00"),), "earliest"
    )
    return [
        Case("small", "7-day horizon, 50 host busy, 10 bookings, 20 guest busy, 30 min", small),
        Case("full", "60 days, 2,000 host busy, 200 bookings, 1,000 guest busy, 30 min, earliest", full),
        Case(
            "full, unsorted",
            "as full, busy lists in random order",
            replace(full, host_busy=tuple(shuffled_host), guest_busy=tuple(shuffled_guest)),
        ),
        Case(
            "full, preferred hours",
            "as full, guest prefers weekdays 08:00–11:00 New York (none free: scans all 60 days)",
            replace(full, preferences=new_york_mornings),
        ),
        Case(
            "full, balanced",
            "as full, prefer balanced",
            replace(full, preferences=Preferences(prefer="balanced")),
        ),
        Case(
            "full, 60 min",
            "as full, a 60-minute meeting: no free slot, both engines scan all 60 days",
            replace(full, duration_minutes=60),
        ),
    ]


def _time(
    call: Callable[[MatchRequest], MatchResult], request: MatchRequest, repeats: int
) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of each call; CPU time shrugs off other processes' load."""
    gc.collect()
    wall, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        call(request)
        cpu.append((time.process_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return wall, cpu


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, -(-99 * len(ordered) // 100) - 1)]


def run(repeats: int = 200, naive_repeats: int = 9) -> list[dict[str, object]]:
    """Rows ``{bench, case, metric, value, baseline, ratio}``: ``value`` is pick_slot's time and
    ``baseline`` the naive matcher's, in milliseconds per match; ``ratio`` is baseline / value.

    Metrics: ``median_ms`` and ``p99_ms`` of wall-clock time, and ``cpu_median_ms`` of CPU
    time, which stays meaningful when other processes share the machine.
    """
    rows: list[dict[str, object]] = []
    for case in cases():
        fast_result, naive_result = pick_slot(case.request), pick_slot_naive(case.request)
        if fast_result != naive_result:
            raise AssertionError(f"{case.name}: engines disagree: {fast_result} != {naive_result}")
        fast, fast_cpu = _time(pick_slot, case.request, repeats)
        naive, naive_cpu = _time(pick_slot_naive, case.request, naive_repeats)
        for metric, value, baseline in (
            ("median_ms", statistics.median(fast), statistics.median(naive)),
            ("p99_ms", _p99(fast), _p99(naive)),
            ("cpu_median_ms", statistics.median(fast_cpu), statistics.median(naive_cpu)),
        ):
            rows.append(
                {
                    "bench": "matching",
                    "case": case.name,
                    "metric": metric,
                    "value": round(value, 3),
                    "baseline": round(baseline, 1),
                    "ratio": round(baseline / max(value, 1e-6), 1),
                }
            )
    return rows
