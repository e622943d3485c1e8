"""The words a guest (and host) reads about a match: why this slot, or why none."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from kernel.calendar.wall_clock import WEEKDAYS, format_days
from kernel.lexicon.preferences import Preferences
from kernel.matching.request import MatchResult, NoSlotReason, Slot

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class Choice:
    """How the chosen slot compares with the others, for the explanation.

    ``preferred`` is None when the guest gave no preferred hours. ``busy_before`` counts
    candidates of the same kind (inside preferred hours, or any) before the slot that were
    not free. ``gap``/``earliest_*`` are set for "balanced": the smaller of the host's free
    gaps the slot leaves beside it, and the earliest free slot with its gap.
    """

    slot: Slot
    preferred: bool | None
    busy_before: int
    gap: timedelta | None = None
    earliest_start: datetime | None = None
    earliest_gap: timedelta | None = None


def when(moment: datetime, zone: ZoneInfo) -> str:
    """E.g. "Tue 1 Dec 2026, 09:15 Europe/Paris"; built by hand so no locale leaks in."""
    local = moment.astimezone(zone)
    return (
        f"{WEEKDAYS[local.weekday()].capitalize()} {local.day} {_MONTHS[local.month - 1]} {local.year}, "
        f"{local.hour:02d}:{local.minute:02d} {zone.key}"
    )


def _minutes(span: timedelta) -> int:
    return math.ceil(span / timedelta(minutes=1))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


@dataclass(frozen=True, slots=True)
class Texts:
    duration_minutes: int
    zone: ZoneInfo
    preferred_label: str | None

    @classmethod
    def build(
        cls, duration_minutes: int, zone: ZoneInfo, preferences: Preferences | None, offer_zone: str
    ) -> Texts:
        label = None
        if preferences is not None and preferences.windows:
            hours = ", ".join(f"{format_days(w.days)} {w.start}–{w.end}" for w in preferences.windows)
            label = f"{hours} {preferences.timezone or offer_zone}"
        return cls(duration_minutes, zone, label)

    @property
    def _meeting(self) -> str:
        return f"{self.duration_minutes}-minute"

    def failure(self, reason: NoSlotReason, text: str) -> MatchResult:
        return MatchResult(slot=None, reason=reason.value, explanation=text)

    def duration_not_offered(self, durations: tuple[int, ...]) -> MatchResult:
        offered = ", ".join(str(d) for d in sorted(set(durations)))
        return self.failure(
            NoSlotReason.DURATION_NOT_OFFERED,
            f"This offer has no {self._meeting} meetings; it offers {offered} minutes.",
        )

    def outside_validity(self, valid_from: datetime | None, valid_until: datetime | None) -> MatchResult:
        parts = []
        if valid_from is not None:
            parts.append(f"from {when(valid_from, self.zone)}")
        if valid_until is not None:
            parts.append(f"until {when(valid_until, self.zone)}")
        return self.failure(
            NoSlotReason.OUTSIDE_VALIDITY,
            f"This offer only takes meetings {' '.join(parts)}, outside the time it can book now.",
        )

    def outside_booking_range(self, first_start: datetime, horizon_end: datetime) -> MatchResult:
        return self.failure(
            NoSlotReason.OUTSIDE_BOOKING_RANGE,
            f"Your earliest/latest times leave no room for a {self._meeting} meeting between "
            f"{when(first_start, self.zone)} and {when(horizon_end, self.zone)}, the range this offer books.",
        )

    def no_slot(self, reason: NoSlotReason, candidates: int, start: datetime, end: datetime) -> MatchResult:
        span = f"between {when(start, self.zone)} and {when(end, self.zone)}"
        if reason is NoSlotReason.NO_OPEN_HOURS:
            text = f"The host has no hours {span} that fit a {self._meeting} meeting."
        elif reason is NoSlotReason.DAILY_LIMIT_REACHED:
            text = (
                f"No free {self._meeting} slot {span} on a day with room left: the days with free time "
                "already have as many bookings of this offer as the host allows."
            )
        else:
            busy = (
                "the only possible slot was" if candidates == 1 else f"all {candidates} possible slots were"
            )
            text = f"No free {self._meeting} slot {span}: {busy} busy."
        return self.failure(reason, text)

    def chosen(self, choice: Choice) -> MatchResult:
        text = self._balanced(choice) if choice.gap is not None else self._earliest(choice)
        return MatchResult(slot=choice.slot, reason=None, explanation=text)

    def _where(self, choice: Choice) -> str:
        if choice.preferred is None:
            return ""
        if choice.preferred:
            return f" inside your preferred hours ({self.preferred_label})"
        return f" outside your preferred hours ({self.preferred_label}), where none was free"

    def _earliest(self, choice: Choice) -> str:
        text = f"Earliest free {self._meeting} slot{self._where(choice)}"
        if choice.busy_before:
            verb = "was" if choice.busy_before == 1 else "were"
            text += f"; {_plural(choice.busy_before, 'earlier slot')} {verb} busy"
        return text + "."

    def _balanced(self, choice: Choice) -> str:
        assert (
            choice.gap is not None and choice.earliest_start is not None and choice.earliest_gap is not None
        )
        gap = (
            "it leaves no gap beside it"
            if not choice.gap
            else f"the smaller gap it leaves beside it is {_minutes(choice.gap)} minutes"
        )
        text = (
            f"Free {self._meeting} slot{self._where(choice)} that keeps the host's free time "
            f"in larger blocks: {gap}"
        )
        if choice.earliest_start == choice.slot.start:
            return text + "; it is also the earliest free slot."
        return (
            f"{text}; the earliest free slot ({when(choice.earliest_start, self.zone)}) would have left "
            f"a {_minutes(choice.earliest_gap)}-minute gap."
        )
