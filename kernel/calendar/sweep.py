"""The union of a start-sorted stream of spans, merged only as far as someone looks.

The matcher uses it for a guest's preferred hours, which are generated day by day: an
answer found on day two should not pay for expanding sixty days of them. The merged
result is kept as two sorted lists, so lookups are binary searches.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import datetime

Pair = tuple[datetime, datetime]


class SweepUnion:
    """Normalized union of ``spans``, which must come sorted by start; empty spans are ignored."""

    __slots__ = ("_head", "_source", "ends", "starts")

    def __init__(self, spans: Iterable[Pair]) -> None:
        self._source = iter(spans)
        self._head: Pair | None = next(self._source, None)
        # Merged pieces so far, sorted; both lists grow only at the end.
        self.starts: list[datetime] = []
        self.ends: list[datetime] = []

    def _absorb_until(self, bound: datetime) -> None:
        """Merge every span that starts before ``bound``, and any that still join the last piece.

        Afterwards every piece starting before ``bound`` is final: the next span in the
        stream starts after the last piece ends.
        """
        starts, ends = self.starts, self.ends
        head = self._head
        while head is not None:
            start, end = head
            if ends and start <= ends[-1]:
                if end > ends[-1]:
                    ends[-1] = end
            elif start >= bound:
                break
            elif start < end:
                starts.append(start)
                ends.append(end)
            head = next(self._source, None)
        self._head = head

    def overlapping(self, start: datetime, end: datetime) -> list[Pair]:
        """The merged pieces that overlap [start, end), whole (unclipped), in order."""
        self._absorb_until(end)
        starts, ends = self.starts, self.ends
        i = bisect_right(ends, start)
        j = i
        while j < len(starts) and starts[j] < end:
            j += 1
        return list(zip(starts[i:j], ends[i:j], strict=True))
