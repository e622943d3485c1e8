from datetime import UTC, date, datetime

import pytest

from kernel.lexicon import (
    BookingView,
    DateOverride,
    LexiconValidationError,
    MatchInput,
    OfferView,
    Preferences,
    SlotOffer,
    TimeRange,
    Window,
    validate_output,
)
from tests.kernel.factories import offer_record


def error_path(record: dict) -> str:
    with pytest.raises(LexiconValidationError) as caught:
        SlotOffer.from_record(record)
    return caught.value.path


def test_from_record_converts_and_applies_defaults() -> None:
    offer = SlotOffer.from_record(
        offer_record(
            timezone="Europe/Paris",
            dateOverrides=[
                {"date": "2026-12-24", "windows": []},
                {"date": "2026-12-27", "windows": [{"start": "10:00", "end": "24:00"}]},
            ],
            validFrom="2026-12-01T09:00:00+01:00",
            minNoticeMinutes=None,
        )
    )
    assert offer.windows == (Window(("mon", "tue", "wed", "thu", "fri"), "09:00", "17:00"),)
    assert offer.date_overrides == (
        DateOverride(date(2026, 12, 24), ()),
        DateOverride(date(2026, 12, 27), (TimeRange("10:00", "24:00"),)),
    )
    assert offer.valid_from == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert offer.valid_until is None
    assert offer.created_at == datetime(2026, 11, 1, tzinfo=UTC)
    assert (offer.slot_step_minutes, offer.min_notice_minutes, offer.horizon_days, offer.hold_minutes) == (
        15,
        120,
        60,
        15,
    )
    assert (offer.policy, offer.requires_approval, offer.max_per_day) == ("anyone", False, None)
    assert (offer.buffer_before_minutes, offer.buffer_after_minutes) == (0, 0)


def test_to_record_round_trips_and_validates() -> None:
    offer = SlotOffer.from_record(
        offer_record(maxPerDay=4, location="https://meet.example", validUntil="2027-01-01T00:00:00.5Z")
    )
    record = offer.to_record()
    assert record["$type"] == "com.huddle.slotOffer"
    assert record["validUntil"] == "2027-01-01T00:00:00.500Z"
    assert SlotOffer.from_record(record) == offer


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "europe/paris"}, "timezone"),
        ({"windows": [{"days": ["mon"], "start": "09:00", "end": "09:00"}]}, "windows[0].end"),
        ({"windows": [{"days": ["mon"], "start": "10:00", "end": "09:00"}]}, "windows[0].end"),
        ({"windows": [{"days": ["mon"], "start": "24:00", "end": "24:00"}]}, "windows[0].start"),
        ({"windows": [{"days": ["mon"], "start": "9:00", "end": "10:00"}]}, "windows[0].start"),
        (
            {
                "windows": [{"days": ["mon"], "start": "09:00", "end": "10:00"}] * 2
                + [{"days": ["mon"], "start": "09:00", "end": "24:01"}]
            },
            "windows[2].end",
        ),
        (
            {"dateOverrides": [{"date": "2026-12-24", "windows": []}, {"date": "2026-12-24", "windows": []}]},
            "dateOverrides[1].date",
        ),
        ({"dateOverrides": [{"date": "20261224xx", "windows": []}]}, "dateOverrides[0].date"),
        ({"dateOverrides": [{"date": "2027-02-29", "windows": []}]}, "dateOverrides[0].date"),
        (
            {"dateOverrides": [{"date": "2026-12-24", "windows": [{"start": "12:00", "end": "11:00"}]}]},
            "dateOverrides[0].windows[0].end",
        ),
        ({"validFrom": "2027-01-01T00:00:00Z", "validUntil": "2026-12-01T00:00:00Z"}, "validUntil"),
    ],
)
def test_domain_rules_name_the_field(changes: dict, path: str) -> None:
    assert error_path(offer_record(**changes)) == path


def test_preferences_from_json() -> None:
    prefs = Preferences.from_json(
        {"timezone": "Asia/Kathmandu", "windows": [{"days": ["mon"], "start": "09:00", "end": "12:00"}]}
    )
    assert prefs == Preferences("Asia/Kathmandu", (Window(("mon",), "09:00", "12:00"),), "earliest")
    assert Preferences.from_json(prefs.to_json()) == prefs
    with pytest.raises(LexiconValidationError) as caught:
        Preferences.from_json({"timezone": "Nowhere"})
    assert caught.value.path == "preferences.timezone"


def test_match_input() -> None:
    got = MatchInput.from_input(
        {
            "host": "alice.example.com",
            "offer": "at://did:plc:host/com.huddle.slotOffer/3l4k5j6h7g2aa",
            "durationMinutes": 30,
            "earliest": "2026-12-01T09:00:00+01:00",
            "latest": "2026-12-05T00:00:00Z",
            "preferences": {
                "windows": [{"days": ["tue"], "start": "10:00", "end": "11:00"}],
                "prefer": "balanced",
            },
            "note": "Hi",
            "guestEmail": "bo@example.com",
            "idempotencyKey": "k1",
        }
    )
    assert got.earliest == datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert got.preferences == Preferences(None, (Window(("tue",), "10:00", "11:00"),), "balanced")
    assert (got.guest_email, got.idempotency_key, got.duration_minutes) == ("bo@example.com", "k1", 30)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"earliest": "2026-12-02T00:00:00Z", "latest": "2026-12-01T00:00:00Z"}, "latest"),
        ({"earliest": "2026-12-01T00:00:00Z", "latest": "2026-12-01T00:00:00Z"}, "latest"),
        ({"preferences": {"timezone": "Nowhere/Land"}}, "preferences.timezone"),
        (
            {"preferences": {"windows": [{"days": ["mon"], "start": "11:00", "end": "10:00"}]}},
            "preferences.windows[0].end",
        ),
    ],
)
def test_match_input_rules(body: dict, path: str) -> None:
    with pytest.raises(LexiconValidationError) as caught:
        MatchInput.from_input({"host": "did:plc:abc", "durationMinutes": 30, **body})
    assert caught.value.path == path


def test_views_render_valid_lexicon_json() -> None:
    t = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    held = BookingView(
        id="bk1",
        state="held",
        host="did:plc:host",
        guest="did:plc:guest",
        offer="at://did:plc:host/com.huddle.slotOffer/3l4k5j6h7g2aa",
        duration_minutes=30,
        awaiting=("guest",),
        created_at=t,
        updated_at=t,
        start=datetime(2026, 12, 1, 9, tzinfo=UTC),
        end=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        hold_expires_at=datetime(2026, 11, 25, 10, 15, tzinfo=UTC),
        explanation="Earliest free 30-minute slot.",
    )
    assert validate_output("com.huddle.getBooking", held.to_json())["start"] == "2026-12-01T09:00:00.000Z"
    denied = BookingView(
        "bk2", "denied", "did:plc:host", "did:plc:guest", held.offer, 30, (), t, t, reason="not_follower"
    )
    assert "start" not in denied.to_json()
    validate_output("com.huddle.finalize", denied.to_json())
    offer_view = OfferView(
        held.offer,
        "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
        "did:plc:host",
        t,
        offer_record(),
        "alice.example.com",
    )
    validate_output("com.huddle.listOffers", {"offers": [offer_view.to_json()]})
