from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from kernel.calendar.intervals import merge_spans
from kernel.calendar.span_index import SpanIndex

T0 = datetime(2026, 12, 1, tzinfo=UTC)
raw_spans = st.lists(st.tuples(st.integers(0, 300), st.integers(0, 90)), max_size=25)
queries = st.lists(st.tuples(st.integers(-20, 400), st.integers(1, 120)), min_size=1, max_size=8)


def m(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@given(raw_spans, queries, st.integers(0, 30), st.integers(0, 30), st.booleans())
def test_covering_answers_like_a_full_merge(
    raw: list[tuple[int, int]], asks: list[tuple[int, int]], before: int, after: int, ordered: bool
) -> None:
    if ordered:
        raw = sorted(raw)
    starts = [m(s) for s, _ in raw]
    ends = [m(s + length) for s, length in raw]
    pad_before, pad_after = timedelta(minutes=before), timedelta(minutes=after)
    merged = merge_spans((s - pad_before, e + pad_after) for s, e in zip(starts, ends, strict=True) if s < e)
    index = SpanIndex(starts, ends, pad_before, pad_after)
    # Mostly forward, sometimes back: offer windows can overlap.
    for start, length in sorted(asks)[:-1] + asks[-1:]:
        lo, hi = m(start), m(start + length)
        expected = [(max(s, lo), min(e, hi)) for s, e in merged if s < hi and e > lo]
        assert index.covering(lo, hi) == expected


def test_empty_spans_get_no_padding() -> None:
    five = timedelta(minutes=5)
    index = SpanIndex([m(10), m(20)], [m(10), m(30)], five, five)
    assert index.covering(m(0), m(60)) == [(m(15), m(35))]


def test_a_long_span_from_long_ago_still_covers() -> None:
    index = SpanIndex([m(0), m(100)], [m(10_000), m(110)])
    assert index.covering(m(5_000), m(5_060)) == [(m(5_000), m(5_060))]
    assert index.covering(m(50), m(60)) == [(m(50), m(60))]
