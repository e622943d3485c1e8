from datetime import date, timedelta

import pytest

from kernel.calendar.windows import LocalWindow, expand_weekly, expand_windows
from kernel.lexicon.slot_offer import Window
from tests.kernel.factories import at, offer


def spans(windows: list[LocalWindow], tz: str = "UTC") -> list[tuple[date, str, str]]:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    return [
        (
            w.local_date,
            w.interval.start.astimezone(zone).strftime("%H:%M%z"),
            w.interval.end.astimezone(zone).strftime("%H:%M%z"),
        )
        for w in windows
    ]


def test_weekly_windows_per_local_date() -> None:
    o = offer(
        timezone="Europe/Paris",
        windows=[
            {"days": ["mon", "wed"], "start": "09:00", "end": "12:00"},
            {"days": ["mon"], "start": "14:00", "end": "17:30"},
        ],
    )
    # Mon 30 Nov – Thu 3 Dec 2026.
    got = expand_windows(o, at(2026, 11, 30, tz="Europe/Paris"), at(2026, 12, 4, tz="Europe/Paris"))
    assert spans(got, "Europe/Paris") == [
        (date(2026, 11, 30), "09:00+0100", "12:00+0100"),
        (date(2026, 11, 30), "14:00+0100", "17:30+0100"),
        (date(2026, 12, 2), "09:00+0100", "12:00+0100"),
    ]
    assert all(w.grid_origin == w.interval.start for w in got)
    assert all(w.interval.start.utcoffset() == timedelta(0) for w in got)


def test_overrides_replace_or_close_a_date() -> None:
    o = offer(
        dateOverrides=[
            {"date": "2026-12-01", "windows": []},  # a Tuesday: closed
            {"date": "2026-12-05", "windows": [{"start": "10:00", "end": "11:00"}]},  # a Saturday: opened
            {"date": "2026-12-02", "windows": [{"start": "13:00", "end": "24:00"}]},
        ]
    )
    got = expand_windows(o, at(2026, 12, 1), at(2026, 12, 7))
    assert spans(got) == [
        (date(2026, 12, 2), "13:00+0000", "00:00+0000"),
        (date(2026, 12, 3), "09:00+0000", "17:00+0000"),
        (date(2026, 12, 4), "09:00+0000", "17:00+0000"),
        (date(2026, 12, 5), "10:00+0000", "11:00+0000"),
    ]
    assert got[0].interval.end == at(2026, 12, 3)


def test_clipping_keeps_the_grid_origin() -> None:
    o = offer(validFrom="2026-12-01T10:07:00Z", validUntil="2026-12-02T12:00:00Z")
    got = expand_windows(o, at(2026, 11, 30), at(2026, 12, 3))
    assert [(w.interval.start, w.interval.end, w.grid_origin) for w in got] == [
        (at(2026, 12, 1, 10, 7), at(2026, 12, 1, 17), at(2026, 12, 1, 9)),
        (at(2026, 12, 2, 9), at(2026, 12, 2, 12), at(2026, 12, 2, 9)),
    ]
    clipped = expand_windows(o, at(2026, 12, 2, 11), at(2026, 12, 2, 11, 30))
    assert [(w.interval.start, w.interval.end, w.grid_origin) for w in clipped] == [
        (at(2026, 12, 2, 11), at(2026, 12, 2, 11, 30), at(2026, 12, 2, 9))
    ]


def test_a_window_ending_at_midnight_is_found_from_the_next_day() -> None:
    o = offer(windows=[{"days": ["sun"], "start": "22:00", "end": "24:00"}])
    got = expand_windows(o, at(2026, 12, 7, 0, 0) - timedelta(minutes=30), at(2026, 12, 8))
    assert spans(got) == [(date(2026, 12, 6), "23:30+0000", "00:00+0000")]


def test_naive_bounds_are_refused() -> None:
    from datetime import datetime

    with pytest.raises(ValueError, match="aware"):
        expand_windows(offer(), datetime(2026, 12, 1), at(2026, 12, 2))


EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@pytest.mark.parametrize(
    ("tz", "day", "window", "expected"),
    [
        # New York, spring forward Sun 8 Mar 2026 02:00 -> 03:00.
        ("America/New_York", date(2026, 3, 8), ("01:00", "04:00"), ("01:00-0500", "04:00-0400", 2 * 60)),
        ("America/New_York", date(2026, 3, 8), ("02:30", "04:00"), ("03:00-0400", "04:00-0400", 60)),
        # New York, fall back Sun 1 Nov 2026 02:00 -> 01:00: 01:00–02:00 happens twice.
        ("America/New_York", date(2026, 11, 1), ("00:00", "03:00"), ("00:00-0400", "03:00-0500", 4 * 60)),
        ("America/New_York", date(2026, 11, 1), ("00:00", "01:30"), ("00:00-0400", "01:30-0400", 90)),
        ("America/New_York", date(2026, 11, 1), ("01:30", "02:30"), ("01:30-0400", "02:30-0500", 2 * 60)),
        # London, Sun 29 Mar 2026 01:00 -> 02:00 and Sun 25 Oct 2026 02:00 -> 01:00.
        ("Europe/London", date(2026, 3, 29), ("00:30", "02:30"), ("00:30+0000", "02:30+0100", 60)),
        ("Europe/London", date(2026, 10, 25), ("00:30", "02:30"), ("00:30+0100", "02:30+0000", 3 * 60)),
        # Lord Howe moves by 30 minutes: Sun 4 Oct 2026 02:00 -> 02:30, Sun 5 Apr 2026 02:00 -> 01:30.
        ("Australia/Lord_Howe", date(2026, 10, 4), ("01:00", "03:00"), ("01:00+1030", "03:00+1100", 90)),
        ("Australia/Lord_Howe", date(2026, 10, 4), ("02:00", "02:30"), None),  # wholly inside the gap
        ("Australia/Lord_Howe", date(2026, 4, 5), ("01:00", "03:00"), ("01:00+1100", "03:00+1030", 150)),
        # Kathmandu (+05:45, no DST): an ordinary day.
        ("Asia/Kathmandu", date(2026, 3, 29), ("09:00", "17:00"), ("09:00+0545", "17:00+0545", 8 * 60)),
    ],
)
def test_dst_nights(
    tz: str, day: date, window: tuple[str, str], expected: tuple[str, str, int] | None
) -> None:
    o = offer(timezone=tz, windows=[{"days": EVERY_DAY, "start": window[0], "end": window[1]}])
    got = [w for w in expand_windows(o, at(2026, 1, 1), at(2027, 1, 1)) if w.local_date == day]
    if expected is None:
        assert got == []
        return
    [w] = got
    start, end, minutes = expected
    assert spans([w], tz) == [(day, start, end)]
    assert w.interval.end - w.interval.start == timedelta(minutes=minutes)
    assert w.grid_origin == w.interval.start


def test_a_full_year_in_a_dst_zone_has_one_window_per_day() -> None:
    o = offer(timezone="Australia/Lord_Howe", windows=[{"days": EVERY_DAY, "start": "09:00", "end": "17:00"}])
    got = expand_windows(
        o, at(2026, 1, 1, tz="Australia/Lord_Howe"), at(2027, 1, 1, tz="Australia/Lord_Howe")
    )
    assert len(got) == 365
    assert len({w.local_date for w in got}) == 365
    assert {w.interval.end - w.interval.start for w in got} == {timedelta(hours=8)}


def test_weekly_hours_in_another_zone() -> None:
    # A guest in Kathmandu prefers 09:00–12:00 there; on the host's UTC clock that is 03:15–06:15.
    got = expand_weekly(
        [Window(("tue",), "09:00", "12:00")], "Asia/Kathmandu", at(2026, 12, 1), at(2026, 12, 2)
    )
    assert [(w.interval.start, w.interval.end) for w in got] == [
        (at(2026, 12, 1, 3, 15), at(2026, 12, 1, 6, 15))
    ]
