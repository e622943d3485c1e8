"""The matching benchmark keeps running: its inputs build and both engines agree on them."""

from bench.matching import cases, run


def test_benchmark_rows() -> None:
    rows = run(repeats=1, naive_repeats=1)
    names = [case.name for case in cases()]
    assert [row["case"] for row in rows] == [name for name in names for _ in range(3)]
    for row in rows:
        assert set(row) == {"bench", "case", "metric", "value", "baseline", "ratio"}
        assert row["bench"] == "matching" and row["metric"] in ("median_ms", "p99_ms", "cpu_median_ms")
        assert isinstance(row["value"], float) and row["value"] >= 0


def test_the_full_case_is_the_one_the_issue_asks_for() -> None:
    full = next(case.request for case in cases() if case.name == "full")
    assert full.offer.horizon_days == 60
    assert (len(full.host_busy), len(full.host_bookings), len(full.guest_busy or ())) == (2000, 200, 1000)
