"""Half-open time intervals and set operations on sorted lists of them.

The span functions work on ``(start, end)`` pairs of any ordered type, so the same
linear-time merges serve ``Interval`` lists, the matching engine's datetime pairs and
tests that use plain integers. Every function that takes "normalized" input expects a
list sorted by start with no two spans overlapping or touching, which is what
``normalize``/``merge_spans`` return.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar


class _Ordered(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...
    def __le__(self, other: Any, /) -> bool: ...


T = TypeVar("T", bound=_Ordered)
Span = tuple[T, T]


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """The instants ``start <= t < end``; both ends timezone-aware."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("Interval needs timezone-aware datetimes")
        if self.end < self.start:
            raise ValueError(f"Interval ends before it starts: {self.start} > {self.end}")

    @property
    def is_empty(self) -> bool:
        return self.start == self.end

    def overlaps(self, other: Interval) -> bool:
        """True when some instant lies in both (never for an empty interval)."""
        return max(self.start, other.start) < min(self.end, other.end)

    def contains(self, other: Interval) -> bool:
        return self.start <= other.start and other.end <= self.end


def merge_spans(spans: Iterable[Span[T]]) -> list[Span[T]]:
    """Sort, drop empty spans and merge overlapping or touching ones."""
    ordered = sorted(s for s in spans if s[0] < s[1])
    merged: list[Span[T]] = []
    for start, end in ordered:
        if merged and start <= merged[-1][1]:
            if merged[-1][1] < end:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def union_spans(a: Sequence[Span[T]], b: Sequence[Span[T]]) -> list[Span[T]]:
    """Union of two normalized span lists, normalized."""
    merged: list[Span[T]] = []
    i = j = 0
    while i < len(a) or j < len(b):
        if j == len(b) or (i < len(a) and a[i][0] <= b[j][0]):
            start, end = a[i]
            i += 1
        else:
            start, end = b[j]
            j += 1
        if merged and start <= merged[-1][1]:
            if merged[-1][1] < end:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def intersect_spans(a: Sequence[Span[T]], b: Sequence[Span[T]]) -> list[Span[T]]:
    """Intersection of two normalized span lists, normalized."""
    result: list[Span[T]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start = max(a[i][0], b[j][0])
        end = min(a[i][1], b[j][1])
        if start < end:
            result.append((start, end))
        # Whichever span ends first cannot meet anything further along the other list.
        if a[i][1] <= b[j][1]:
            i += 1
        else:
            j += 1
    return result


def subtract_spans(a: Sequence[Span[T]], b: Sequence[Span[T]]) -> list[Span[T]]:
    """The parts of ``a`` not covered by normalized ``b``, span by span.

    ``a`` need only be sorted by start: spans of ``a`` may overlap (offer windows can),
    and each keeps its own remaining pieces.
    """
    result: list[Span[T]] = []
    j = 0
    for start, end in a:
        # Spans of b that end before this one starts can't affect it or any later one.
        while j < len(b) and b[j][1] <= start:
            j += 1
        k = j
        cursor = start
        while k < len(b) and b[k][0] < end:
            if cursor < b[k][0]:
                result.append((cursor, b[k][0]))
            if cursor < b[k][1]:
                cursor = b[k][1]
            k += 1
        if cursor < end:
            result.append((cursor, end))
    return result


def _spans(intervals: Iterable[Interval]) -> list[Span[datetime]]:
    return [(iv.start, iv.end) for iv in intervals]


def _intervals(spans: Iterable[Span[datetime]]) -> list[Interval]:
    return [Interval(start, end) for start, end in spans]


def normalize(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-empty, non-overlapping, non-touching intervals covering the same instants."""
    return _intervals(merge_spans(_spans(intervals)))


def union(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """Union of two normalized interval lists."""
    return _intervals(union_spans(_spans(a), _spans(b)))


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """Intersection of two normalized interval lists."""
    return _intervals(intersect_spans(_spans(a), _spans(b)))


def subtract(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """The parts of normalized ``a`` not covered by normalized ``b``."""
    return _intervals(subtract_spans(_spans(a), _spans(b)))
