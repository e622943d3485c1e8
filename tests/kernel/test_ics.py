from datetime import UTC, datetime

import pytest
from icalendar import Calendar

from kernel.calendar.ics import IcsAttendee, IcsEvent, IcsOrganizer, booking_uid, build_ics
from tests.kernel.factories import at


def event(**changes: object) -> IcsEvent:
    fields: dict[str, object] = {
        "uid": booking_uid("bk_01J9Z", "huddle.example"),
        "sequence": 0,
        "start": at(2026, 12, 1, 14, 0),
        "end": at(2026, 12, 1, 14, 30),
        "timezone": "America/New_York",
        "summary": "Office hours: Ann & Bo",
        "organizer": IcsOrganizer("Ann Host", "ann@host.example"),
        "attendees": (
            IcsAttendee("Bo, Guest", "bo@guest.example"),
            IcsAttendee("Ann Host", "ann@host.example", "ACCEPTED"),
        ),
        "dtstamp": at(2026, 11, 25, 12, 0),
        "description": "Agenda:\nthings; more, things",
        "location": "https://meet.example/abc",
    }
    fields.update(changes)
    return IcsEvent(**fields)  # type: ignore[arg-type]


def parse(data: bytes) -> Calendar:
    return Calendar.from_ical(data)


def test_request_parses_back_with_everything_a_client_needs() -> None:
    cal = parse(build_ics(event(), "REQUEST"))
    assert cal["METHOD"] == "REQUEST"
    assert cal["VERSION"] == "2.0"
    assert "Huddle" in str(cal["PRODID"])
    [vevent] = cal.events
    assert vevent["UID"] == "bk_01J9Z@huddle.example"
    assert vevent.decoded("SEQUENCE") == 0
    assert vevent["STATUS"] == "CONFIRMED"
    assert vevent.decoded("DTSTAMP") == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert vevent["DTSTART"].params["TZID"] == "America/New_York"
    assert vevent["DTEND"].params["TZID"] == "America/New_York"
    assert vevent.decoded("DTSTART") == at(2026, 12, 1, 14, 0)  # 09:00 EST
    assert vevent.decoded("DTSTART").hour == 9
    assert vevent.decoded("DESCRIPTION") == "Agenda:\nthings; more, things"
    assert str(vevent["LOCATION"]) == "https://meet.example/abc"
    assert str(vevent["ORGANIZER"]) == "mailto:ann@host.example"
    assert vevent["ORGANIZER"].params["CN"] == "Ann Host"
    bo, ann = vevent["ATTENDEE"]
    assert str(bo) == "mailto:bo@guest.example"
    assert dict(bo.params) == {
        "CN": "Bo, Guest",
        "PARTSTAT": "NEEDS-ACTION",
        "ROLE": "REQ-PARTICIPANT",
        "RSVP": "TRUE",
    }
    assert ann.params["PARTSTAT"] == "ACCEPTED" and ann.params["RSVP"] == "FALSE"


def test_vtimezone_defines_the_tzid_the_event_uses_with_its_dst_rules() -> None:
    cal = parse(build_ics(event(), "REQUEST"))
    [tz] = cal.timezones
    assert tz["TZID"] == "America/New_York"
    assert cal.get_missing_tzids() == set()
    kinds = {sub.name for sub in tz.subcomponents}
    assert kinds == {"STANDARD", "DAYLIGHT"}


def test_vtimezone_of_a_zone_without_dst() -> None:
    cal = parse(build_ics(event(timezone="Asia/Kathmandu"), "REQUEST"))
    [tz] = cal.timezones
    assert tz["TZID"] == "Asia/Kathmandu"
    [std] = tz.subcomponents
    assert std.decoded("TZOFFSETTO").total_seconds() == 5 * 3600 + 45 * 60
    assert cal.events[0].decoded("DTSTART").strftime("%H:%M") == "19:45"


def test_cancel_keeps_uid_and_carries_the_new_sequence() -> None:
    first = parse(build_ics(event(), "REQUEST")).events[0]
    cancel = parse(build_ics(event(sequence=1), "CANCEL"))
    assert cancel["METHOD"] == "CANCEL"
    [vevent] = cancel.events
    assert vevent["UID"] == first["UID"]
    assert vevent.decoded("SEQUENCE") == 1
    assert vevent["STATUS"] == "CANCELLED"


def test_output_is_deterministic() -> None:
    assert build_ics(event(), "REQUEST") == build_ics(event(), "REQUEST")


def test_event_across_new_year_gets_a_vtimezone_covering_it() -> None:
    data = build_ics(
        event(start=at(2026, 12, 31, 23, 30), end=at(2027, 1, 1, 1, 0), timezone="UTC"), "REQUEST"
    )
    assert parse(data).get_missing_tzids() == set()


@pytest.mark.parametrize(
    "changes",
    [
        {"organizer": IcsOrganizer("Ann\r\nATTENDEE:mailto:x@evil", "ann@host.example")},
        {"attendees": (IcsAttendee("Bo", "bo@guest.example\nX-EVIL:1"),)},
        {"uid": "a\nb"},
    ],
)
def test_line_breaks_cannot_inject_properties(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="single line"):
        build_ics(event(**changes), "REQUEST")


def test_free_text_is_escaped_not_injected() -> None:
    data = build_ics(event(summary="Hi\r\nATTENDEE:mailto:evil@x"), "REQUEST")
    [vevent] = parse(data).events
    assert len(vevent["ATTENDEE"]) == 2
    assert b"\r\nATTENDEE:mailto:evil" not in data


def test_rejects_naive_times_and_unknown_methods() -> None:
    with pytest.raises(ValueError, match="aware"):
        build_ics(event(dtstamp=datetime(2026, 11, 25)), "REQUEST")
    with pytest.raises(ValueError, match="method"):
        build_ics(event(), "PUBLISH")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="IANA"):
        build_ics(event(timezone="Nowhere/Land"), "REQUEST")
