from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from kernel.calendar.intervals import merge_spans
from kernel.calendar.sweep import SweepUnion

T0 = datetime(2026, 12, 1, tzinfo=UTC)
raw_spans = st.lists(st.tuples(st.integers(0, 300), st.integers(0, 90)), max_size=25)
queries = st.lists(st.tuples(st.integers(-20, 400), st.integers(1, 120)), min_size=1, max_size=8)


def m(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@given(raw_spans, queries, st.integers(0, 30), st.integers(0, 30))
def test_lazy_union_answers_like_a_full_merge(
    raw: list[tuple[int, int]], asks: list[tuple[int, int]], before: int, after: int
) -> None:
    spans = sorted((m(s), m(s + length)) for s, length in raw)
    pad_before, pad_after = timedelta(minutes=before), timedelta(minutes=after)
    expected = merge_spans((s - pad_before, e + pad_after) for s, e in spans if s < e)
    sweep = SweepUnion(spans, pad_before, pad_after)
    # Queries come in any order: the engine revisits earlier windows when it has to.
    for start, length in asks:
        lo, hi = m(start), m(start + length)
        assert sweep.overlapping(lo, hi) == [(s, e) for s, e in expected if s < hi and e > lo]


def test_empty_spans_get_no_buffers() -> None:
    sweep = SweepUnion([(m(10), m(10))], timedelta(minutes=5), timedelta(minutes=5))
    assert sweep.overlapping(m(0), m(60)) == []
