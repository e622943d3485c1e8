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


@given(raw_spans, queries)
def test_lazy_union_answers_like_a_full_merge(
    raw: list[tuple[int, int]], asks: list[tuple[int, int]]
) -> None:
    spans = sorted((m(s), m(s + length)) for s, length in raw)
    expected = merge_spans(spans)
    sweep = SweepUnion(iter(spans))
    # Queries come in any order: the engine revisits earlier windows when it has to.
    for start, length in asks:
        lo, hi = m(start), m(start + length)
        assert sweep.overlapping(lo, hi) == [(s, e) for s, e in expected if s < hi and e > lo]


def test_empty_spans_are_ignored() -> None:
    assert SweepUnion([(m(10), m(10)), (m(20), m(20))]).overlapping(m(0), m(60)) == []
