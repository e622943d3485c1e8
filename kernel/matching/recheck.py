"""Is a held slot still free? The same rules the engine applies, for one slot already chosen.

Host busy times must clear the slot's block (the meeting with its buffers); the guest's busy times
must clear the meeting itself — exactly as `engine.pick_slot` judges a candidate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from kernel.calendar.intervals import Interval


@dataclass(frozen=True, slots=True)
class HeldSlot:
    start: datetime
    end: datetime
    block_start: datetime
    block_end: datetime


def slot_conflict(
    slot: HeldSlot, host_busy: Iterable[Interval], guest_busy: Iterable[Interval] | None
) -> str | None:
    """Why the slot is no longer free (None: it still is)."""
    for busy in host_busy:
        if busy.start < slot.block_end and slot.block_start < busy.end:
            return "the host is now busy at that time"
    for busy in guest_busy or ():
        if busy.start < slot.end and slot.start < busy.end:
            return "the guest is now busy at that time"
    return None
