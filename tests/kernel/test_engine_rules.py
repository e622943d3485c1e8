"""One test per matching rule, each checked against the naive oracle as well."""

import random
from datetime import date, timedelta, timezone

import pytest

from kernel.lexicon.preferences import Preferences
from kernel.lexicon.slot_offer import Window
from kernel.matching import BookedBlock, MatchRequest, MatchResult, NoSlotReason, pick_slot, pick_slot_naive
from tests.kernel.factories import OFFER_URI, at, iv, offer, request

MON = (2026, 11, 30)  # a Monday
TUE = (2026, 12, 1)


def pick(req: MatchRequest) -> MatchResult:
    result = pick_slot(req)
    assert pick_slot_naive(req) == result
    return result


def start(req: MatchRequest) -> object:
    slot = pick(req).slot
    assert slot is not None
    return slot.start


def block(
    start_hm: tuple[int, int], end_hm: tuple[int, int], day: tuple[int, int, int] = MON, uri: str = OFFER_URI
) -> BookedBlock:
    s, e = at(*day, *start_hm), at(*day, *end_hm)
    return BookedBlock(start=s, end=e, block_start=s, block_end=e, offer_uri=uri)


def test_free_calendar_gives_the_first_window_start() -> None:
    result = pick(request())
    assert result.slot is not None and result.reason is None
    assert (result.slot.start, result.slot.end) == (at(*MON, 9), at(*MON, 9, 30))
    assert result.slot.local_date == date(*MON)
    assert result.explanation == "Earliest free 30-minute slot."


def test_min_notice_counts_from_now_and_rounds_up_to_the_grid() -> None:
    o = offer(minNoticeMinutes=120)
    assert start(request(o, now=at(*MON, 8, 50))) == at(*MON, 11, 0)
    assert start(request(offer(), now=at(*MON, 8, 50) + timedelta(seconds=30))) == at(*MON, 9, 0)
    assert start(request(offer(), now=at(*MON, 9, 0) + timedelta(microseconds=1))) == at(*MON, 9, 15)


def test_slots_start_on_the_window_grid() -> None:
    o = offer(windows=[{"days": ["mon"], "start": "09:10", "end": "12:00"}], slotStepMinutes=20)
    busy = (iv(at(*MON, 9, 0), at(*MON, 9, 35)),)
    assert start(request(o, host_busy=busy)) == at(*MON, 9, 50)


def test_the_horizon_bounds_the_start_not_the_end() -> None:
    o = offer(horizonDays=1)
    now = at(*MON, 9, 10)  # horizon ends Tue 09:10
    monday_busy = (iv(at(*MON, 0), at(*TUE, 0)),)
    assert start(request(o, now=now, host_busy=monday_busy)) == at(
        *TUE, 9, 0
    )  # ends 09:30, after the horizon
    blocked = (*monday_busy, iv(at(*TUE, 9), at(*TUE, 9, 15)))
    result = pick(request(o, now=now, host_busy=blocked))
    assert (result.slot, result.reason) == (None, "no_free_slot")


def test_buffers_keep_host_busy_time_clear_on_both_sides() -> None:
    o = offer(bufferBeforeMinutes=10, bufferAfterMinutes=15)
    # 09:00–09:30 would end its after-buffer at 09:45, inside the 09:40 meeting.
    busy = (iv(at(*MON, 9, 40), at(*MON, 10, 0)),)
    result = pick(request(o, host_busy=busy))
    assert result.slot is not None
    assert result.slot.start == at(*MON, 10, 15)  # 10:00 + 10-minute before-buffer, on the grid
    assert (result.slot.block_start, result.slot.block_end) == (at(*MON, 10, 5), at(*MON, 11, 0))
    # Buffers may reach outside the window: only busy time matters.
    assert start(request(o, host_busy=(iv(at(*MON, 9, 45), at(*MON, 10)),))) == at(*MON, 9, 0)


def test_booking_blocks_and_the_new_buffers_add_up() -> None:
    o = offer(bufferBeforeMinutes=10)
    # The other booking's block already carries its own buffers: 09:00–10:45.
    other = BookedBlock(at(*MON, 9, 15), at(*MON, 10, 15), at(*MON, 9, 0), at(*MON, 10, 45), OFFER_URI)
    assert start(request(o, host_bookings=(other,))) == at(*MON, 11, 0)


def test_guest_busy_time_blocks_the_meeting_but_not_the_host_buffers() -> None:
    o = offer(bufferBeforeMinutes=10, bufferAfterMinutes=10)
    guest = (iv(at(*MON, 9), at(*MON, 9, 30)),)
    assert start(request(o, guest_busy=guest)) == at(*MON, 9, 30)


def test_the_guest_window() -> None:
    assert start(request(earliest=at(*TUE, 13, 5))) == at(*TUE, 13, 15)
    assert start(request(earliest=at(*TUE, 13, 5), latest=at(*TUE, 13, 45))) == at(*TUE, 13, 15)
    squeezed = pick(request(earliest=at(*TUE, 13, 5), latest=at(*TUE, 13, 44)))
    assert (squeezed.slot, squeezed.reason) == (None, "no_open_hours")


def test_max_per_day_counts_this_offers_bookings_per_host_local_day() -> None:
    o = offer(timezone="America/Los_Angeles", maxPerDay=2)  # 09:00 PST is 17:00 UTC
    # Mon 30 Nov 22:00 PST is Tue 06:00 UTC: still Monday for the host.
    bookings = (
        block((17, 0), (17, 30)),
        BookedBlock(at(*TUE, 6), at(*TUE, 6, 30), at(*TUE, 6), at(*TUE, 6, 30), OFFER_URI),
    )
    result = pick(request(o, host_bookings=bookings))
    assert result.slot is not None and result.slot.local_date == date(*TUE)
    assert result.slot.start == at(*TUE, 9, tz="America/Los_Angeles")
    # Bookings of the host's other offers do not count against this one.
    elsewhere = tuple(BookedBlock(b.start, b.end, b.block_start, b.block_end, "at://other") for b in bookings)
    assert start(request(o, host_bookings=elsewhere)) == at(*MON, 9, 30, tz="America/Los_Angeles")


def test_daily_limit_reached() -> None:
    o = offer(maxPerDay=1, horizonDays=1)
    result = pick(request(o, now=at(*MON, 8), host_bookings=(block((9, 0), (9, 30)),)))
    assert (result.slot, result.reason) == (None, "daily_limit_reached")
    assert "as many bookings" in result.explanation


def test_duration_must_be_offered() -> None:
    result = pick(request(duration_minutes=45))
    assert (result.slot, result.reason) == (None, "duration_not_offered")
    assert result.explanation == "This offer has no 45-minute meetings; it offers 30, 60 minutes."


def test_outside_validity() -> None:
    expired = offer(validUntil="2026-11-29T00:00:00Z")
    assert pick(request(expired)).reason == "outside_validity"
    later = offer(validFrom="2027-06-01T00:00:00Z")
    result = pick(request(later))
    assert result.reason == "outside_validity"
    assert "from Tue 1 Jun 2027, 00:00 UTC" in result.explanation
    # Valid part of the way: windows are clipped, the grid is not moved.
    partly = offer(validFrom="2026-11-30T10:05:00Z")
    assert start(request(partly)) == at(*MON, 10, 15)


def test_guest_window_outside_the_bookable_range() -> None:
    assert pick(request(earliest=at(2027, 3, 1))).reason == "outside_booking_range"
    assert pick(request(latest=at(*MON, 7, 10))).reason == "outside_booking_range"
    assert pick(request(earliest=at(*TUE), latest=at(*MON, 12))).reason == "outside_booking_range"


def test_no_open_hours() -> None:
    closed = offer(
        horizonDays=2,
        dateOverrides=[{"date": "2026-11-30", "windows": []}, {"date": "2026-12-01", "windows": []}],
    )
    result = pick(request(closed))
    assert (result.slot, result.reason) == (None, "no_open_hours")
    short = offer(windows=[{"days": ["mon"], "start": "09:00", "end": "09:20"}])
    assert pick(request(short)).reason == "no_open_hours"
    too_much_notice = offer(minNoticeMinutes=3 * 24 * 60, horizonDays=2)
    assert pick(request(too_much_notice)).reason == "no_open_hours"


def test_no_free_slot_says_how_many_were_busy() -> None:
    o = offer(horizonDays=1, windows=[{"days": ["mon"], "start": "09:00", "end": "10:00"}])
    result = pick(request(o, host_busy=(iv(at(*MON, 8), at(*MON, 11)),)))
    assert result.reason == NoSlotReason.NO_FREE_SLOT
    assert result.explanation == (
        "No free 30-minute slot between Mon 30 Nov 2026, 07:00 UTC and Tue 1 Dec 2026, 07:00 UTC: "
        "all 3 possible slots were busy."
    )


def test_excluded_intervals_are_skipped() -> None:
    assert start(request(excluded=(iv(at(*MON, 9), at(*MON, 9, 30)),))) == at(*MON, 9, 30)


def test_empty_intervals_block_nothing() -> None:
    # Found by the property test: the naive oracle once treated an empty interval inside a slot as busy.
    empty = (iv(at(*MON, 9, 10), at(*MON, 9, 10)),)
    assert start(request(excluded=empty, guest_busy=empty, host_busy=empty)) == at(*MON, 9)


def test_override_windows_replace_the_weekly_ones() -> None:
    o = offer(dateOverrides=[{"date": "2026-11-30", "windows": [{"start": "13:00", "end": "14:00"}]}])
    assert start(request(o)) == at(*MON, 13)


def test_preferred_hours_in_the_guests_zone_win() -> None:
    # The guest in Kathmandu prefers 16:00–18:00 there: 10:15–12:15 UTC.
    prefs = Preferences("Asia/Kathmandu", (Window(("mon", "tue"), "16:00", "18:00"),))
    result = pick(request(preferences=prefs))
    assert result.slot is not None and result.slot.start == at(*MON, 10, 15)
    assert (
        result.explanation
        == "Earliest free 30-minute slot inside your preferred hours (Mon–Tue 16:00–18:00 Asia/Kathmandu)."
    )
    busy = (iv(at(*MON, 10), at(*MON, 11)),)
    result = pick(request(preferences=prefs, host_busy=busy))
    assert result.slot is not None and result.slot.start == at(*MON, 11)
    assert result.explanation.endswith("; 3 earlier slots were busy.")


def test_without_a_free_preferred_slot_the_earliest_other_one_is_taken() -> None:
    prefs = Preferences("Europe/Paris", (Window(("sat",), "09:00", "12:00"),))
    result = pick(request(preferences=prefs, host_busy=(iv(at(*MON, 9), at(*MON, 9, 30)),)))
    assert result.slot is not None and result.slot.start == at(*MON, 9, 30)
    assert result.explanation == (
        "Earliest free 30-minute slot outside your preferred hours (Sat 09:00–12:00 Europe/Paris), "
        "where none was free; 2 earlier slots were busy."
    )


def test_the_design_example_explanation() -> None:
    o = offer(timezone="Europe/Paris")
    prefs = Preferences("Europe/Paris", (Window(("mon", "tue", "wed", "thu", "fri"), "09:00", "12:00"),))
    busy = (iv(at(*MON, 9, tz="Europe/Paris"), at(*MON, 9, 45, tz="Europe/Paris")),)
    result = pick(request(o, now=at(*MON, 0), preferences=prefs, host_busy=busy))
    assert result.explanation == (
        "Earliest free 30-minute slot inside your preferred hours (Mon–Fri 09:00–12:00 Europe/Paris); "
        "3 earlier slots were busy."
    )


def test_guest_in_another_zone_than_the_host() -> None:
    # Host in New York 09–17; the guest in Paris prefers 15:00–18:00 Paris = 09:00–12:00 New York.
    o = offer(timezone="America/New_York")
    prefs = Preferences("Europe/Paris", (Window(("tue",), "15:00", "18:00"),))
    result = pick(request(o, preferences=prefs))
    assert result.slot is not None
    assert result.slot.start == at(*TUE, 9, tz="America/New_York") == at(*TUE, 15, tz="Europe/Paris")
    assert result.slot.local_date == date(*TUE)


def test_balanced_keeps_the_hosts_free_time_in_larger_blocks() -> None:
    prefs = Preferences(None, (), "balanced")
    # Host busy 09:00–10:00, guest busy 10:00–10:20: the earliest slot (10:30) would strand 30 minutes.
    host = (iv(at(*MON, 9), at(*MON, 10)),)
    guest = (iv(at(*MON, 10), at(*MON, 10, 20)),)
    result = pick(request(preferences=prefs, host_busy=host, guest_busy=guest))
    assert result.slot is not None and result.slot.start == at(*MON, 16, 30)  # against the window end
    assert result.explanation == (
        "Free 30-minute slot that keeps the host's free time in larger blocks: it leaves no gap beside it; "
        "the earliest free slot (Mon 30 Nov 2026, 10:30 UTC) would have left a 30-minute gap."
    )
    # Right after a commitment is as good as a window edge, and earlier.
    result = pick(request(preferences=prefs, host_busy=host))
    assert result.slot is not None and result.slot.start == at(*MON, 10)
    assert result.explanation.endswith("it leaves no gap beside it; it is also the earliest free slot.")


def test_balanced_prefers_the_smallest_gap_when_no_slot_touches_an_edge() -> None:
    o = offer(
        windows=[{"days": ["mon"], "start": "09:00", "end": "12:00"}], slotStepMinutes=30, horizonDays=1
    )
    prefs = Preferences(None, (), "balanced")
    # Host free 09:10–11:40, edges off the 30-minute grid: 09:30 strands 20 minutes before it,
    # 11:00 only 10 after it.
    host = (iv(at(*MON, 8), at(*MON, 9, 10)), iv(at(*MON, 11, 40), at(*MON, 13)))
    result = pick(request(o, preferences=prefs, host_busy=host))
    assert result.slot is not None and result.slot.start == at(*MON, 11)
    assert "the smaller gap it leaves beside it is 10 minutes" in result.explanation
    assert (
        "the earliest free slot (Mon 30 Nov 2026, 09:30 UTC) would have left a 20-minute gap"
        in result.explanation
    )
    # Equal gaps: the earlier slot.
    host = (iv(at(*MON, 8), at(*MON, 9, 10)), iv(at(*MON, 11, 50), at(*MON, 13)))
    result = pick(request(o, preferences=prefs, host_busy=host))
    assert result.slot is not None and result.slot.start == at(*MON, 9, 30)


def test_same_inputs_same_answer_whatever_the_input_order() -> None:
    rng = random.Random(7)
    busy = [
        iv(at(*MON, 9) + timedelta(minutes=m), at(*MON, 9) + timedelta(minutes=m + 40))
        for m in range(0, 600, 45)
    ]
    first = pick(request(host_busy=tuple(busy)))
    rng.shuffle(busy)
    assert pick(request(host_busy=tuple(busy))) == first
    assert pick_slot(request(host_busy=tuple(busy))) == first


def test_calendar_quirks_empty_seconds_and_other_zones() -> None:
    plus5 = timezone(timedelta(hours=5))
    busy = (
        iv(at(*MON, 9), at(*MON, 9)),  # empty: no busy time at all
        iv(at(*MON, 9).astimezone(plus5), (at(*MON, 9, 14) + timedelta(seconds=1)).astimezone(plus5)),
    )
    assert start(request(offer(bufferBeforeMinutes=5), host_busy=busy)) == at(*MON, 9, 30)


def test_overlapping_windows_keep_their_own_grids() -> None:
    o = offer(
        windows=[
            {"days": ["mon"], "start": "09:00", "end": "10:00"},
            {"days": ["mon"], "start": "09:10", "end": "11:00"},
        ],
        slotStepMinutes=30,
    )
    busy = (iv(at(*MON, 9), at(*MON, 9, 35)),)
    # 09:30 (first window) is busy, 09:40 (second window) is free and earlier than 10:00.
    assert start(request(o, host_busy=busy)) == at(*MON, 9, 40)


def test_local_date_is_the_hosts() -> None:
    o = offer(timezone="Pacific/Kiritimati", windows=[{"days": ["tue"], "start": "09:00", "end": "10:00"}])
    result = pick(request(o))
    assert result.slot is not None
    assert result.slot.start == at(2026, 11, 30, 19)  # Tue 1 Dec 09:00 at UTC+14
    assert result.slot.local_date == date(*TUE)


def test_naive_datetimes_are_refused() -> None:
    from datetime import datetime

    with pytest.raises(ValueError, match="aware"):
        request(now=datetime(2026, 11, 30, 7))
    with pytest.raises(ValueError, match="aware"):
        BookedBlock(datetime(2026, 11, 30), at(*MON, 1), at(*MON), at(*MON, 1), OFFER_URI)
