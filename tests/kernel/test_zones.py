from datetime import date

import pytest

from kernel.calendar.wall_clock import format_days, format_hhmm, parse_hhmm
from kernel.calendar.zones import get_zone, is_iana_zone, wall_time_to_utc
from tests.kernel.factories import at


def resolve(zone: str, day: date, hhmm: str):
    return wall_time_to_utc(day, parse_hhmm(hhmm, end_of_day=True), get_zone(zone))


@pytest.mark.parametrize(
    "name", ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"]
)
def test_real_zones_are_known(name: str) -> None:
    assert is_iana_zone(name)


@pytest.mark.parametrize(
    "name", ["", "Mars/Olympus", "europe/paris", "../etc/passwd", "localtime", "UTC\x00", 5, None]
)
def test_other_names_are_not_zones(name: object) -> None:
    assert not is_iana_zone(name)


def test_get_zone_raises_value_error_for_unknown_names() -> None:
    with pytest.raises(ValueError, match="IANA"):
        get_zone("Mars/Olympus")


@pytest.mark.parametrize(
    ("zone", "day", "wall", "expected"),
    [
        # Spring-forward gaps: a wall time that does not exist becomes the transition instant.
        ("America/New_York", date(2026, 3, 8), "02:30", at(2026, 3, 8, 7, 0)),  # = 03:00 EDT
        ("America/New_York", date(2026, 3, 8), "03:00", at(2026, 3, 8, 7, 0)),
        ("Europe/London", date(2026, 3, 29), "01:30", at(2026, 3, 29, 1, 0)),  # = 02:00 BST
        ("Australia/Lord_Howe", date(2026, 10, 4), "02:15", at(2026, 10, 3, 15, 30)),  # 30-minute gap
        # Fall-back overlaps: the first occurrence.
        ("America/New_York", date(2026, 11, 1), "01:30", at(2026, 11, 1, 5, 30)),  # 01:30 EDT
        ("Europe/London", date(2026, 10, 25), "01:30", at(2026, 10, 25, 0, 30)),  # 01:30 BST
        ("Australia/Lord_Howe", date(2026, 4, 5), "01:45", at(2026, 4, 4, 14, 45)),  # 01:45 +11
        # No DST but an odd offset.
        ("Asia/Kathmandu", date(2026, 3, 29), "09:00", at(2026, 3, 29, 3, 15)),
        # "24:00" is the next midnight.
        ("Europe/Paris", date(2026, 12, 31), "24:00", at(2026, 12, 31, 23, 0)),
    ],
)
def test_wall_time_resolution(zone: str, day: date, wall: str, expected) -> None:
    assert resolve(zone, day, wall) == expected


def test_parse_hhmm() -> None:
    assert parse_hhmm("00:00") == 0
    assert parse_hhmm("23:59") == 1439
    assert parse_hhmm("24:00", end_of_day=True) == 1440
    for bad in ("24:00", "9:00", "09:60", "25:00", "0900", "09:0a", "٠٩:٠٠", "09:00 "):
        with pytest.raises(ValueError):
            parse_hhmm(bad)
    with pytest.raises(ValueError):
        parse_hhmm("24:01", end_of_day=True)


def test_formatting() -> None:
    assert format_hhmm(1440) == "24:00"
    assert format_days(("mon", "tue", "wed", "thu", "fri")) == "Mon–Fri"
    assert format_days(("sun", "mon", "wed")) == "Mon, Wed, Sun"
    assert format_days(("mon", "tue", "wed", "thu", "fri", "sat", "sun")) == "Every day"
    assert format_days(()) == ""
