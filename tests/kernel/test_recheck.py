"""A held slot is still free exactly when the engine would still offer it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kernel.calendar.intervals import Interval
from kernel.matching.recheck import HeldSlot, slot_conflict

T = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
M = timedelta(minutes=1)
# A 10:00–10:30 meeting with 10 minutes of buffer either side.
SLOT = HeldSlot(start=T, end=T + 30 * M, block_start=T - 10 * M, block_end=T + 40 * M)


def test_host_busy_inside_the_buffers_takes_the_slot() -> None:
    assert (
        slot_conflict(SLOT, [Interval(T + 35 * M, T + 60 * M)], None) == "the host is now busy at that time"
    )
    assert slot_conflict(SLOT, [Interval(T - 20 * M, T - 5 * M)], None) is not None


def test_host_busy_touching_the_block_leaves_it_free() -> None:
    assert (
        slot_conflict(SLOT, [Interval(T + 40 * M, T + 90 * M), Interval(T - 60 * M, T - 10 * M)], []) is None
    )


def test_guest_busy_counts_against_the_meeting_only() -> None:
    assert slot_conflict(SLOT, [], [Interval(T + 30 * M, T + 40 * M)]) is None  # the host's buffer
    assert slot_conflict(SLOT, [], [Interval(T + 29 * M, T + 40 * M)]) == "the guest is now busy at that time"
