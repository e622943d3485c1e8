"""The office hours editor and the request form, as records and match bodies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.web import words
from api.web.guest import match_body
from api.web.office_hours import OfferFormError, blank_form, form_from_offer, record_from_form
from kernel.lexicon import MatchInput, SlotOffer

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def test_the_blank_form_is_weekdays_nine_to_five() -> None:
    record = record_from_form(blank_form("Europe/Paris"), created_at=NOW)
    offer = SlotOffer.from_record(record)
    assert [w.to_json() for w in offer.windows] == [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
    ]
    assert offer.timezone == "Europe/Paris" and offer.durations == (30,) and offer.policy == "anyone"


def test_every_field_round_trips_through_the_form() -> None:
    form = blank_form("America/New_York")
    form.update(
        {
            "title": "Mentoring",
            "description": "Bring questions",
            "location": "https://meet.example/x",
            "durations": "60, 15 30",
            "hours_sat_0_start": "10:00",
            "hours_sat_0_end": "12:00",
            "hours_mon_1_start": "18:00",
            "hours_mon_1_end": "00:00",  # a time picker's midnight: until the end of the day
            "overrides": "2026-12-24 closed\n2026-12-31 10:00-12:00, 14:00-16:00",
            "buffer_before": "5",
            "buffer_after": "10",
            "min_notice": "60",
            "horizon": "30",
            "max_per_day": "4",
            "hold_minutes": "20",
            "slot_step": "30",
            "policy": "followers",
            "requires_approval": "on",
        }
    )
    record = record_from_form(form, created_at=NOW)
    offer = SlotOffer.from_record(record)
    assert offer.durations == (15, 30, 60)
    assert {(w.days, w.start, w.end) for w in offer.windows} == {
        (("mon", "tue", "wed", "thu", "fri"), "09:00", "17:00"),
        (("mon",), "18:00", "24:00"),
        (("sat",), "10:00", "12:00"),
    }
    assert [o.to_json() for o in offer.date_overrides] == [
        {"date": "2026-12-24", "windows": []},
        {
            "date": "2026-12-31",
            "windows": [{"start": "10:00", "end": "12:00"}, {"start": "14:00", "end": "16:00"}],
        },
    ]
    assert (offer.buffer_before_minutes, offer.buffer_after_minutes, offer.min_notice_minutes) == (5, 10, 60)
    assert (offer.horizon_days, offer.max_per_day, offer.hold_minutes, offer.slot_step_minutes) == (
        30,
        4,
        20,
        30,
    )
    assert (
        offer.policy == "followers" and offer.requires_approval and offer.location == "https://meet.example/x"
    )
    # Shown again in the editor and saved unchanged, it is the same record.
    again = record_from_form(form_from_offer(offer), created_at=NOW, keep=record)
    assert again == record


def test_fields_the_editor_does_not_show_are_kept() -> None:
    record = record_from_form(blank_form("UTC"), created_at=NOW)
    record["validUntil"] = "2027-01-01T00:00:00.000Z"
    record["futureField"] = {"x": 1}
    again = record_from_form(form_from_offer(SlotOffer.from_record(record)), created_at=NOW, keep=record)
    assert again["validUntil"] == "2027-01-01T00:00:00.000Z" and again["futureField"] == {"x": 1}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"durations": ""}, "durations"),
        ({"durations": "thirty"}, "durations"),
        ({"durations": "1000"}, "durations"),
        ({"hours_mon_0_end": ""}, "hours"),
        ({"hours_mon_0_end": "08:00"}, "hours"),
        ({"overrides": "2026-12-24 morning"}, "overrides"),
        ({"overrides": "24/12/2026 closed"}, "overrides"),
        ({"hold_minutes": "0"}, "hold_minutes"),
        ({"horizon": "lots"}, "horizon"),
        ({"title": ""}, "title"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
    ],
)
def test_bad_values_name_the_field(change: dict[str, str], field: str) -> None:
    form = {**blank_form("UTC"), **change}
    with pytest.raises(OfferFormError) as caught:
        record_from_form(form, created_at=NOW)
    assert caught.value.field == field


def test_no_open_hours_at_all_is_refused() -> None:
    form = {k: ("" if k.startswith("hours_") else v) for k, v in blank_form("UTC").items()}
    with pytest.raises(OfferFormError, match="at least one day"):
        record_from_form(form, created_at=NOW)


def test_the_request_form_becomes_a_valid_match_body_in_the_guests_zone() -> None:
    body = match_body(
        "did:plc:host",
        "at://did:plc:host/com.huddle.slotOffer/3k",
        {
            "duration": "30",
            "timezone": "Asia/Tokyo",
            "earliest": "2026-12-01",
            "latest": "2026-12-03",
            "pref_start": "09:00",
            "pref_end": "12:00",
            "days": ["tue", "wed", "nope"],
            "prefer": "balanced",
            "note": "  hello  ",
            "email": "g@example.test",
            "request_key": "k1",
        },
    )
    ask = MatchInput.from_input(body)
    assert ask.earliest == datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # 1 Dec 00:00 in Tokyo
    assert ask.latest == datetime(2026, 12, 3, 15, 0, tzinfo=UTC)  # the end of 3 Dec in Tokyo
    assert ask.preferences is not None and ask.preferences.timezone == "Asia/Tokyo"
    assert [w.to_json() for w in ask.preferences.windows] == [
        {"days": ["tue", "wed"], "start": "09:00", "end": "12:00"}
    ]
    assert (
        ask.preferences.prefer == "balanced" and ask.note == "hello" and ask.guest_email == "g@example.test"
    )
    assert ask.idempotency_key == "k1" and ask.duration_minutes == 30


def test_a_half_given_preferred_range_is_refused() -> None:
    with pytest.raises(ValueError, match="both a start and an end"):
        match_body(
            "did:plc:h", "at://did:plc:h/com.huddle.slotOffer/3k", {"duration": "30", "pref_start": "09:00"}
        )


def test_times_always_name_their_zone() -> None:
    start = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
    assert words.when(start, "Europe/Paris") == "Tue 1 Dec 2026, 15:30 (Europe/Paris)"
    assert (
        words.meeting_time(start, start.replace(minute=45), "Nowhere/Else")
        == "Tue 1 Dec 2026, 14:30–14:45 (UTC)"
    )
    assert words.days_phrase(("mon", "tue", "wed", "thu", "fri")) == "Mon–Fri"
    assert words.days_phrase(("mon", "wed")) == "Mon, Wed"
    assert "follow @alice" in words.policy_words("followers", "@alice")
    assert "strictest" in words.policy_words("vip-only", "@alice")
