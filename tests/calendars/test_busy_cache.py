"""The busy cache: shared through the database, fresh for a TTL, never storing a read that raced a change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from clients.calendar.busy_cache import BusyCache
from kernel.calendar.intervals import Interval

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_a_fresh_read_covering_the_range_is_served(engine: Engine) -> None:
    clock = Clock()
    cache = BusyCache(engine, timedelta(minutes=5), clock)
    busy = [
        Interval(T0 + timedelta(hours=1), T0 + timedelta(hours=2)),
        Interval(T0 + 3 * DAY, T0 + 3 * DAY + DAY),
    ]
    assert cache.read(7, T0, T0 + DAY).intervals is None
    assert cache.write(7, 0, T0, T0 + 10 * DAY, busy)

    assert cache.read(7, T0, T0 + 2 * DAY).intervals == busy[:1]  # clipped to what was asked
    assert cache.read(7, T0 - DAY, T0 + DAY).intervals is None  # not covered: read again
    assert cache.read(7, T0, T0 + 11 * DAY).intervals is None
    clock.now = T0 + timedelta(minutes=6)
    assert cache.read(7, T0, T0 + DAY).intervals is None  # stale


def test_invalidation_wins_over_a_read_that_was_in_flight(engine: Engine) -> None:
    cache = BusyCache(engine, timedelta(minutes=5), Clock())
    cache.write(8, 0, T0, T0 + DAY, [])
    started = cache.read(8, T0, T0 + DAY)  # a fetch begins...
    assert started.intervals == [] and started.generation == 0
    cache.invalidate(8)  # ...a webhook says the calendar changed...
    assert not cache.write(8, started.generation, T0, T0 + DAY, [])  # ...so its answer is not kept
    assert cache.read(8, T0, T0 + DAY).intervals is None
    fresh = cache.read(8, T0, T0 + DAY)
    assert cache.write(8, fresh.generation, T0, T0 + DAY, [Interval(T0, T0 + DAY)])
    assert cache.read(8, T0, T0 + DAY).intervals == [Interval(T0, T0 + DAY)]
    cache.invalidate(9)  # a connector never read: invalidation still leaves a mark
    assert cache.read(9, T0, T0 + DAY).generation == 1
