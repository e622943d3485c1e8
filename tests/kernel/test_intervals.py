from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.calendar.intervals import (
    Interval,
    intersect,
    intersect_spans,
    merge_spans,
    normalize,
    subtract,
    subtract_spans,
    union,
    union_spans,
)

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def ivs(*pairs: tuple[float, float]) -> list[Interval]:
    return [Interval(h(a), h(b)) for a, b in pairs]


def test_interval_requires_aware_ordered_ends() -> None:
    with pytest.raises(ValueError, match="aware"):
        Interval(datetime(2026, 12, 1), datetime(2026, 12, 2))
    with pytest.raises(ValueError, match="ends before"):
        Interval(h(2), h(1))
    assert Interval(h(1), h(1)).is_empty


def test_interval_relations_are_half_open() -> None:
    a, b = Interval(h(1), h(2)), Interval(h(2), h(3))
    assert not a.overlaps(b)
    assert Interval(h(1), h(3)).contains(a)
    assert a.overlaps(Interval(h(1.5), h(4)))
    assert not Interval(h(1.5), h(1.5)).overlaps(a)  # empty: no instant to share
    assert not a.overlaps(Interval(h(1.5), h(1.5)))


def test_normalize_sorts_drops_empty_and_merges_touching() -> None:
    assert normalize(ivs((5, 6), (1, 2), (2, 3), (4, 4), (2.5, 2.75))) == ivs((1, 3), (5, 6))


def test_union_intersect_subtract() -> None:
    a = ivs((1, 3), (5, 8))
    b = ivs((2, 6), (8, 9))
    assert union(a, b) == ivs((1, 9))
    assert intersect(a, b) == ivs((2, 3), (5, 6))
    assert subtract(a, b) == ivs((1, 2), (6, 8))
    assert subtract(b, a) == ivs((3, 5), (8, 9))


def test_subtract_accepts_overlapping_minuend_sorted_by_start() -> None:
    # Offer windows may overlap each other; each keeps its own free pieces.
    assert subtract_spans([(0, 10), (5, 15)], [(3, 7)]) == [(0, 3), (7, 10), (7, 15)]


def test_different_zones_compare_as_instants() -> None:
    paris = timedelta(hours=1)
    from datetime import timezone

    other = Interval(h(1).astimezone(timezone(paris)), h(2).astimezone(timezone(paris)))
    assert normalize([other, *ivs((2, 3))]) == ivs((1, 3))


# Property tests against a model: a span list is the set of integer points it covers.
spans = st.lists(
    st.tuples(st.integers(0, 60), st.integers(0, 60)).map(lambda p: (min(p), max(p))), max_size=12
)


def points(ss: list[tuple[int, int]]) -> set[int]:
    return {t for a, b in ss for t in range(a, b)}


def is_normalized(ss: list[tuple[int, int]]) -> bool:
    return all(a < b for a, b in ss) and all(ss[i][1] < ss[i + 1][0] for i in range(len(ss) - 1))


@given(spans)
def test_merge_is_normalized_and_keeps_points(raw: list[tuple[int, int]]) -> None:
    merged = merge_spans(raw)
    assert is_normalized(merged)
    assert points(merged) == points(raw)


@given(spans, spans)
def test_set_operations_match_the_model(raw_a: list[tuple[int, int]], raw_b: list[tuple[int, int]]) -> None:
    a, b = merge_spans(raw_a), merge_spans(raw_b)
    for result, expected in (
        (union_spans(a, b), points(a) | points(b)),
        (intersect_spans(a, b), points(a) & points(b)),
        (subtract_spans(a, b), points(a) - points(b)),
    ):
        assert points(result) == expected
        assert is_normalized(result)
