"""What the matching engine is asked and what it answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from kernel.calendar.intervals import Interval
from kernel.lexicon.preferences import Preferences
from kernel.lexicon.slot_offer import SlotOffer


@dataclass(frozen=True, slots=True)
class BookedBlock:
    """A held or confirmed booking of the host: the meeting and its block with its own buffers."""

    start: datetime
    end: datetime
    block_start: datetime
    block_end: datetime
    offer_uri: str

    def __post_init__(self) -> None:
        if any(t.tzinfo is None for t in (self.start, self.end, self.block_start, self.block_end)):
            raise ValueError("BookedBlock needs timezone-aware datetimes")


@dataclass(frozen=True, slots=True)
class MatchRequest:
    """Everything one matching decision depends on; equal requests get equal answers.

    ``earliest``/``latest`` are the guest's window: the meeting starts at or after
    ``earliest`` and ends at or before ``latest``. ``excluded`` holds meeting intervals
    to stay clear of, e.g. a slot just lost to a concurrent booking.
    """

    offer: SlotOffer
    offer_uri: str
    duration_minutes: int
    now: datetime
    host_busy: tuple[Interval, ...] = ()
    host_bookings: tuple[BookedBlock, ...] = ()
    guest_busy: tuple[Interval, ...] | None = None
    earliest: datetime | None = None
    latest: datetime | None = None
    preferences: Preferences | None = None
    excluded: tuple[Interval, ...] = ()

    def __post_init__(self) -> None:
        for name in ("now", "earliest", "latest"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                raise ValueError(f"MatchRequest.{name} must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Slot:
    """The chosen meeting (UTC), its block including the offer's buffers, and its host-local date."""

    start: datetime
    end: datetime
    block_start: datetime
    block_end: datetime
    local_date: date


class NoSlotReason(StrEnum):
    """Why there is no slot; the values are what ``MatchResult.reason`` carries."""

    DURATION_NOT_OFFERED = "duration_not_offered"
    OUTSIDE_VALIDITY = "outside_validity"  # the offer is not valid in the bookable range
    OUTSIDE_BOOKING_RANGE = "outside_booking_range"  # the guest's window misses the bookable range
    NO_OPEN_HOURS = "no_open_hours"  # the host has no hours that could hold the meeting
    DAILY_LIMIT_REACHED = "daily_limit_reached"  # free time only on days already at maxPerDay
    NO_FREE_SLOT = "no_free_slot"


@dataclass(frozen=True, slots=True)
class MatchResult:
    """A slot, or ``reason`` (a NoSlotReason value) when there is none; ``explanation`` in words."""

    slot: Slot | None
    reason: str | None
    explanation: str
