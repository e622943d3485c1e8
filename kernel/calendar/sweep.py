"""The union of a start-sorted stream of spans, merged only as far as someone looks.

The matching engine walks windows in time order and usually finds its slot in the first
days of a 60-day horizon; merging thousands of busy intervals it never reaches would be
most of its work. ``SweepUnion`` pulls spans from the stream on demand and keeps the
merged result as two sorted lists, so lookups are binary searches.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import datetime, timedelta

_ZERO = timedelta(0)
Pair = tuple[datetime, datetime]


class SweepUnion:
    """Normalized union of ``spans`` (sorted by start), each widened by the pads first."""

    __slots__ = ("_head", "_pad_after", "_pad_before", "_source", "ends", "starts")

    def __init__(
        self, spans: Iterable[Pair], pad_before: timedelta = _ZERO, pad_after: timedelta = _ZERO
    ) -> None:
        self._source = iter(spans)
        self._pad_before = pad_before
        self._pad_after = pad_after
        # Merged pieces so far, sorted; both lists grow only at the end.
        self.starts: list[datetime] = []
        self.ends: list[datetime] = []
        self._head = self._pull()

    def _pull(self) -> Pair | None:
        for start, end in self._source:
            # An empty span is no busy time at all, so it must not gain buffers either.
            if start < end:
                return start - self._pad_before, end + self._pad_after
        return None

    def _absorb_until(self, bound: datetime) -> None:
        """Merge every span that starts before ``bound``, and any that still join the last piece.

        Afterwards every piece starting before ``bound`` is final: the next span in the
        stream starts after the last piece ends.
        """
        starts, ends = self.starts, self.ends
        head = self._head
        while head is not None and (head[0] < bound or (ends and head[0] <= ends[-1])):
            start, end = head
            if ends and start <= ends[-1]:
                if end > ends[-1]:
                    ends[-1] = end
            else:
                starts.append(start)
                ends.append(end)
            head = self._pull()
        self._head = head

    def overlapping(self, start: datetime, end: datetime) -> list[Pair]:
        """The merged pieces that overlap [start, end), whole (unclipped), in order."""
        self._absorb_until(end)
        starts, ends = self.starts, self.ends
        i = bisect_right(ends, start)
        pieces: list[Pair] = []
        while i < len(starts) and starts[i] < end:
            pieces.append((starts[i], ends[i]))
            i += 1
        return pieces
