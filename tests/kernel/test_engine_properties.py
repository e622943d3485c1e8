"""Property tests: the fast engine obeys every hard rule and agrees with the naive oracle."""

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from kernel.calendar.intervals import Interval
from kernel.calendar.windows import expand_windows
from kernel.lexicon.preferences import Preferences
from kernel.lexicon.slot_offer import SlotOffer, Window
from kernel.matching import BookedBlock, MatchRequest, pick_slot, pick_slot_naive
from tests.kernel.factories import OFFER_URI, at, offer_record

ZONES = ["UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kathmandu"]
# Days around which clocks change in those zones, 2026–2027.
TRANSITIONS = [
    date(2026, 3, 8),
    date(2026, 3, 29),
    date(2026, 4, 5),
    date(2026, 10, 4),
    date(2026, 10, 25),
    date(2026, 11, 1),
    date(2027, 3, 14),
    date(2027, 4, 4),
    date(2027, 10, 31),
    date(2026, 12, 15),
]
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

quarter_hours = st.integers(0, 95)


@st.composite
def windows(draw: st.DrawFn, min_days: int = 1) -> dict[str, Any]:
    start = draw(quarter_hours)
    end = draw(st.integers(start + 1, 96))
    return {
        "days": draw(st.lists(st.sampled_from(DAYS), min_size=min_days, max_size=7, unique=True)),
        "start": f"{start // 4:02d}:{start % 4 * 15:02d}",
        "end": f"{end // 4:02d}:{end % 4 * 15:02d}",
    }


@st.composite
def offers(draw: st.DrawFn, base: datetime) -> SlotOffer:
    fields: dict[str, Any] = {
        "timezone": draw(st.sampled_from(ZONES)),
        "windows": draw(st.lists(windows(min_days=3), min_size=1, max_size=3)),
        "durations": draw(
            st.lists(st.sampled_from([15, 30, 45, 60, 90]), min_size=1, max_size=3, unique=True)
        ),
        "slotStepMinutes": draw(st.sampled_from([5, 10, 15, 20, 30, 45, 60])),
        "bufferBeforeMinutes": draw(st.sampled_from([0, 0, 5, 10, 30])),
        "bufferAfterMinutes": draw(st.sampled_from([0, 0, 5, 15])),
        "minNoticeMinutes": draw(st.sampled_from([0, 0, 30, 120, 600])),
        "horizonDays": draw(st.integers(1, 4)),
        "maxPerDay": draw(st.none() | st.integers(1, 2)),
    }
    if draw(st.booleans()):
        day = base.date() + timedelta(days=draw(st.integers(0, 3)))
        closed = draw(st.booleans())
        fields["dateOverrides"] = [
            {"date": day.isoformat(), "windows": [] if closed else [{"start": "10:00", "end": "13:30"}]}
        ]
    if draw(st.integers(0, 4)) == 0:
        fields["validFrom"] = (base + timedelta(hours=draw(st.integers(-24, 48)))).isoformat()
    if draw(st.integers(0, 4)) == 0:
        fields["validUntil"] = (base + timedelta(hours=draw(st.integers(49, 120)))).isoformat()
    return SlotOffer.from_record(offer_record(**fields))


@st.composite
def intervals(draw: st.DrawFn, base: datetime, max_size: int) -> tuple[Interval, ...]:
    found = []
    for _ in range(draw(st.integers(0, max_size))):
        start = base + timedelta(
            minutes=5 * draw(st.integers(-24, 4 * 288)), seconds=draw(st.sampled_from([0, 0, 0, 30]))
        )
        length = timedelta(minutes=draw(st.sampled_from([0, 5, 15, 30, 45, 60, 120, 300, 720])))
        found.append(Interval(start, start + length))
    return tuple(found)


@st.composite
def requests(draw: st.DrawFn) -> MatchRequest:
    day = draw(st.sampled_from(TRANSITIONS)) - timedelta(days=draw(st.integers(0, 2)))
    base = at(day.year, day.month, day.day)
    now = base + timedelta(minutes=draw(st.integers(0, 24 * 60 - 1)), seconds=draw(st.sampled_from([0, 17])))
    o = draw(offers(base))
    bookings = []
    for busy in draw(intervals(now, 4)):
        pad = timedelta(minutes=draw(st.sampled_from([0, 10])))
        uri = draw(st.sampled_from([OFFER_URI, "at://did:plc:host/com.huddle.slotOffer/other"]))
        bookings.append(BookedBlock(busy.start, busy.end, busy.start - pad, busy.end + pad, uri))
    earliest = latest = None
    if draw(st.integers(0, 3)) == 0:
        earliest = now + timedelta(minutes=15 * draw(st.integers(0, 300)))
    if draw(st.integers(0, 3)) == 0:
        latest = (earliest or now) + timedelta(minutes=15 * draw(st.integers(1, 400)))
    preferences = None
    if draw(st.booleans()):
        preferences = Preferences(
            timezone=draw(st.none() | st.sampled_from(ZONES)),
            windows=tuple(
                Window(tuple(w["days"]), w["start"], w["end"]) for w in draw(st.lists(windows(), max_size=2))
            ),
            prefer=draw(st.sampled_from(["earliest", "balanced"])),
        )
    return MatchRequest(
        offer=o,
        offer_uri=OFFER_URI,
        # Now and then a duration the offer does not have.
        duration_minutes=25 if draw(st.integers(0, 19)) == 7 else draw(st.sampled_from(o.durations)),
        now=now,
        host_busy=draw(intervals(now, 25)),
        host_bookings=tuple(bookings),
        guest_busy=draw(st.none() | intervals(now, 12)),
        earliest=earliest,
        latest=latest,
        preferences=preferences,
        excluded=draw(intervals(now, 2)),
    )


@given(requests())
def test_fast_engine_equals_the_naive_oracle(req: MatchRequest) -> None:
    # Same slot, same reason, same words: for "earliest" and for "balanced".
    assert pick_slot(req) == pick_slot_naive(req)


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    # An empty interval holds no instant, so it overlaps nothing.
    return max(a_start, b_start) < min(a_end, b_end)


@given(requests())
def test_a_returned_slot_obeys_every_hard_rule(req: MatchRequest) -> None:
    result = pick_slot(req)
    if result.slot is None:
        assert result.reason
        return
    slot, o = result.slot, req.offer
    duration = timedelta(minutes=req.duration_minutes)
    assert result.reason is None
    assert req.duration_minutes in o.durations
    assert slot.end - slot.start == duration
    assert slot.block_start == slot.start - timedelta(minutes=o.buffer_before_minutes)
    assert slot.block_end == slot.end + timedelta(minutes=o.buffer_after_minutes)
    # Inside one window of the offer, on that window's grid, on the window's local date.
    step = timedelta(minutes=o.slot_step_minutes)
    homes = [
        w
        for w in expand_windows(o, slot.start - timedelta(days=2), slot.end + timedelta(days=2))
        if w.interval.start <= slot.start
        and slot.end <= w.interval.end
        and (slot.start - w.grid_origin) % step == timedelta(0)
    ]
    assert homes and slot.local_date in {w.local_date for w in homes}
    # Notice, horizon and the guest's window.
    assert slot.start >= req.now + timedelta(minutes=o.min_notice_minutes)
    assert slot.start < req.now + timedelta(days=o.horizon_days)
    assert req.earliest is None or slot.start >= req.earliest
    assert req.latest is None or slot.end <= req.latest
    # Nothing busy: host time and other bookings against the block, the guest's against the meeting.
    for busy in req.host_busy:
        assert not overlaps(slot.block_start, slot.block_end, busy.start, busy.end)
    for booking in req.host_bookings:
        assert not overlaps(slot.block_start, slot.block_end, booking.block_start, booking.block_end)
    for busy in (*(req.guest_busy or ()), *req.excluded):
        assert not overlaps(slot.start, slot.end, busy.start, busy.end)
    # Under the daily cap, counted per host-local date.
    if o.max_per_day is not None:
        zone = ZoneInfo(o.timezone)
        per_day = Counter(
            b.start.astimezone(zone).date() for b in req.host_bookings if b.offer_uri == req.offer_uri
        )
        assert per_day[slot.local_date] < o.max_per_day
