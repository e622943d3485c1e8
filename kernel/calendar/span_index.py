"""Busy spans indexed for the question the matcher asks per window: what covers [lo, hi)?

Spans are kept sorted by start. For a window, the spans that start inside it are found by
binary search and merged; every span that starts earlier can only reach into the window
from its left edge, so together they cover [lo, the latest of their ends). That latest
end is a running maximum over the spans already passed, taken with C-level ``max`` over
a slice. Spans that lie wholly between windows (nights, weekends) are never looked at one
by one, which is where a merge of every span would spend its time.

Each span is widened by ``pad_before``/``pad_after`` as it is read (a host busy time
rules out meetings whose buffers would touch it); empty spans are dropped first, since
they are no time at all and must not gain padding.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import compress, islice
from operator import itemgetter, le, lt

Pair = tuple[datetime, datetime]
_ZERO = timedelta(0)


class SpanIndex:
    """Spans answering ``covering(lo, hi)`` quickly when queries move forward in time."""

    __slots__ = ("_carry", "_ends", "_pad_after", "_pad_before", "_passed", "_starts")

    def __init__(
        self,
        starts: Sequence[datetime],
        ends: Sequence[datetime],
        pad_before: timedelta = _ZERO,
        pad_after: timedelta = _ZERO,
    ) -> None:
        keep = list(map(lt, starts, ends))
        if not all(keep):
            starts, ends = list(compress(starts, keep)), list(compress(ends, keep))
        if not all(map(le, starts, islice(starts, 1, None))):
            # Calendar APIs usually answer in order, so this sort is the exception.
            pairs = sorted(zip(starts, ends, strict=True), key=itemgetter(0))
            starts, ends = [p[0] for p in pairs], [p[1] for p in pairs]
        self._starts = list(starts)
        self._ends = list(ends)
        self._pad_before = pad_before
        self._pad_after = pad_after
        # The latest raw end among spans[:_passed], kept as queries move forward.
        self._passed = 0
        self._carry: datetime | None = None

    def _latest_end_before(self, index: int) -> datetime | None:
        """The latest raw end among the first ``index`` spans."""
        if index < self._passed:
            # A query went back (offer windows may overlap): answer without the running value.
            return max(self._ends[:index]) if index else None
        if index > self._passed:
            latest = max(islice(self._ends, self._passed, index))
            if self._carry is None or latest > self._carry:
                self._carry = latest
            self._passed = index
        return self._carry

    def covering(self, lo: datetime, hi: datetime) -> list[Pair]:
        """The parts of [lo, hi) the padded spans cover, as merged pieces in order."""
        starts, ends = self._starts, self._ends
        pad_before, pad_after = self._pad_before, self._pad_after
        first = bisect_left(starts, lo + pad_before)  # spans from here start at or after lo
        stop = bisect_left(starts, hi + pad_before, first)  # and from here at or after hi
        pieces: list[Pair] = []
        carried = self._latest_end_before(first)
        piece_start = piece_end = lo
        open_piece = False
        if carried is not None and carried + pad_after > lo:
            piece_end, open_piece = carried + pad_after, True
        for k in range(first, stop):
            start, end = starts[k] - pad_before, ends[k] + pad_after
            if open_piece and start <= piece_end:
                if end > piece_end:
                    piece_end = end
                continue
            if open_piece:
                pieces.append((piece_start, piece_end))
            piece_start, piece_end, open_piece = start, end, True
        if open_piece:
            pieces.append((piece_start, min(piece_end, hi)))
        return pieces
