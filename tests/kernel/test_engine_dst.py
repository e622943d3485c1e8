"""Matching on the nights clocks change, in zones with 60- and 30-minute shifts and odd offsets."""

from dataclasses import replace
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from kernel.lexicon.preferences import Preferences
from kernel.lexicon.slot_offer import Window
from kernel.matching import MatchRequest, MatchResult, pick_slot, pick_slot_naive
from tests.kernel.factories import at, iv, offer, request

EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def pick(req: MatchRequest) -> MatchResult:
    result = pick_slot(req)
    assert pick_slot_naive(req) == result
    return result


def free_starts(req: MatchRequest, tz: str, limit: int = 20) -> list[str]:
    """Local start times of the first free slots, found by excluding each slot found."""
    zone = ZoneInfo(tz)
    found: list[str] = []
    excluded = list(req.excluded)
    for _ in range(limit):
        result = pick(replace(req, excluded=tuple(excluded)))
        if result.slot is None:
            break
        found.append(result.slot.start.astimezone(zone).strftime("%d %H:%M%z"))
        excluded.append(iv(result.slot.start, result.slot.end))
    return found


def night_offer(tz: str, start: str, end: str, **fields: object):
    return offer(
        timezone=tz, windows=[{"days": EVERY_DAY, "start": start, "end": end}], slotStepMinutes=30, **fields
    )


def test_new_york_spring_forward() -> None:
    # Sun 8 Mar 2026: 02:00 EST jumps to 03:00 EDT. A 01:00–04:00 window is two real hours.
    req = request(night_offer("America/New_York", "01:00", "04:00", horizonDays=1), now=at(2026, 3, 8, 5, 30))
    assert free_starts(req, "America/New_York") == [
        "08 01:00-0500",
        "08 01:30-0500",
        "08 03:00-0400",
        "08 03:30-0400",
        "09 01:00-0400",  # 05:00 UTC, before the horizon at 05:30 UTC
    ]


def test_new_york_fall_back() -> None:
    # Sun 1 Nov 2026: 02:00 EDT falls back to 01:00 EST. A 00:00–03:00 window is four real hours,
    # and its grid keeps stepping in real time through the repeated hour.
    req = request(
        night_offer("America/New_York", "00:00", "03:00", horizonDays=1), now=at(2026, 11, 1, 3, 30)
    )
    assert free_starts(req, "America/New_York") == [
        "01 00:00-0400",
        "01 00:30-0400",
        "01 01:00-0400",
        "01 01:30-0400",
        "01 01:00-0500",
        "01 01:30-0500",
        "01 02:00-0500",
        "01 02:30-0500",
    ]


def test_fall_back_busy_in_the_first_hour_leaves_the_repeated_hour_free() -> None:
    o = night_offer("America/New_York", "00:00", "03:00", horizonDays=1)
    busy = (
        iv(at(2026, 11, 1, 4), at(2026, 11, 1, 6)),
    )  # 00:00–01:00 EDT and 01:00–02:00 EDT... until 01:00 EST
    result = pick(request(o, now=at(2026, 11, 1, 3, 30), host_busy=busy))
    assert result.slot is not None
    assert result.slot.start.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M%z") == "01:00-0500"
    assert result.slot.local_date == date(2026, 11, 1)


def test_london_spring_forward_window_inside_and_across_the_gap() -> None:
    # Sun 29 Mar 2026: 01:00 GMT jumps to 02:00 BST. 00:30–02:30 holds one real hour.
    o = night_offer("Europe/London", "00:30", "02:30", durations=[60, 90], horizonDays=2)
    req = request(o, now=at(2026, 3, 28, 23), duration_minutes=60)
    assert free_starts(req, "Europe/London", limit=2) == ["29 00:30+0000", "30 00:30+0100"]
    longer = pick(request(o, now=at(2026, 3, 28, 23), duration_minutes=90))
    assert longer.slot is not None and longer.slot.local_date == date(2026, 3, 30)


def test_london_fall_back() -> None:
    # Sun 25 Oct 2026: 02:00 BST falls back to 01:00 GMT. 01:30 means the first 01:30 (BST).
    o = night_offer("Europe/London", "01:30", "02:30", horizonDays=1)
    req = request(o, now=at(2026, 10, 24, 23))
    assert free_starts(req, "Europe/London") == [
        "25 01:30+0100",
        "25 01:00+0000",
        "25 01:30+0000",
        "25 02:00+0000",
    ]


def test_lord_howe_half_hour_spring_forward() -> None:
    # Sun 4 Oct 2026: 02:00 (+10:30) jumps to 02:30 (+11). 01:00–03:00 is 90 real minutes.
    req = request(
        night_offer("Australia/Lord_Howe", "01:00", "03:00", horizonDays=1), now=at(2026, 10, 3, 14)
    )
    assert free_starts(req, "Australia/Lord_Howe") == ["04 01:00+1030", "04 01:30+1030", "04 02:30+1100"]


def test_lord_howe_half_hour_fall_back() -> None:
    # Sun 5 Apr 2026: 02:00 (+11) falls back to 01:30 (+10:30): 01:30–02:00 happens twice.
    req = request(night_offer("Australia/Lord_Howe", "01:00", "03:00", horizonDays=1), now=at(2026, 4, 4, 13))
    assert free_starts(req, "Australia/Lord_Howe") == [
        "05 01:00+1100",
        "05 01:30+1100",
        "05 01:30+1030",
        "05 02:00+1030",
        "05 02:30+1030",
    ]


def test_kathmandu_grid_follows_local_time() -> None:
    # +05:45: local 09:00 is 03:15 UTC, so slots land on quarter past in UTC.
    o = offer(
        timezone="Asia/Kathmandu",
        windows=[{"days": EVERY_DAY, "start": "09:00", "end": "17:00"}],
        horizonDays=2,
    )
    busy = (iv(at(2026, 3, 29, 3, 15), at(2026, 3, 29, 4, 0)),)
    result = pick(request(o, now=at(2026, 3, 29, 0), host_busy=busy))
    assert result.slot is not None and result.slot.start == at(2026, 3, 29, 4, 0) == at(
        2026, 3, 29, 9, 45, tz="Asia/Kathmandu"
    )


def test_host_in_kathmandu_guest_in_new_york_across_the_guests_dst_change() -> None:
    # The guest prefers 20:00–22:00 New York time. Before 8 Mar 2026 that is 06:45–08:45 in
    # Kathmandu, after it 05:45–07:45; the host is open 06:00–09:00 Kathmandu time.
    o = offer(
        timezone="Asia/Kathmandu",
        windows=[{"days": EVERY_DAY, "start": "06:00", "end": "09:00"}],
        slotStepMinutes=15,
    )
    prefs = Preferences("America/New_York", (Window(("sat", "sun"), "20:00", "22:00"),))
    kathmandu = ZoneInfo("Asia/Kathmandu")
    before = pick(request(o, now=at(2026, 3, 7, 0), preferences=prefs))  # Sat 7 Mar
    assert before.slot is not None
    assert before.slot.start.astimezone(kathmandu).strftime("%a %H:%M") == "Sun 06:45"
    after = pick(request(o, now=at(2026, 3, 8, 12), preferences=prefs))  # Sun 8 Mar, after the change
    assert after.slot is not None
    assert after.slot.start.astimezone(kathmandu).strftime("%a %H:%M") == "Mon 06:00"
    assert after.slot.start.astimezone(ZoneInfo("America/New_York")).strftime("%a %H:%M") == "Sun 20:15"


def test_horizon_is_real_time_across_a_dst_change() -> None:
    # 1 day after Sat 7 Mar 2026 12:00 EST is Sun 8 Mar 13:00 EDT: real hours, not wall-clock days.
    o = night_offer("America/New_York", "12:00", "14:00", horizonDays=1)
    now = at(2026, 3, 7, 12, tz="America/New_York")
    result = pick(request(o, now=now + timedelta(minutes=1)))
    assert result.slot is not None
    local = result.slot.start.astimezone(ZoneInfo("America/New_York"))
    assert local.strftime("%d %H:%M") == "07 12:30"
    busy = (iv(now, now + timedelta(hours=12)),)
    result = pick(request(o, now=now + timedelta(minutes=1), host_busy=busy))
    assert result.slot is not None
    assert result.slot.start.astimezone(ZoneInfo("America/New_York")).strftime("%d %H:%M") == "08 12:00"
    assert result.slot.start < now + timedelta(days=1)
