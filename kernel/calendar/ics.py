"""iCalendar invitations (RFC 5545/5546) for a booking, built with ``icalendar``.

A booking keeps one UID for its whole life; each change to it goes out with a higher
SEQUENCE (the caller counts), so calendar clients update or remove the event they
already have instead of adding another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, NamedTuple

from icalendar import Calendar, Event, Timezone, vCalAddress, vText

from kernel.calendar.zones import get_zone

PRODID = "-//Huddle//Huddle booking//EN"
Method = Literal["REQUEST", "CANCEL"]


class IcsOrganizer(NamedTuple):
    name: str
    email: str


class IcsAttendee(NamedTuple):
    name: str
    email: str
    partstat: str = "NEEDS-ACTION"  # ACCEPTED, DECLINED, TENTATIVE, NEEDS-ACTION


@dataclass(frozen=True, slots=True)
class IcsEvent:
    """One meeting as it goes into an invitation; ``timezone`` is the host's IANA zone."""

    uid: str
    sequence: int
    start: datetime
    end: datetime
    timezone: str
    summary: str
    organizer: IcsOrganizer
    attendees: tuple[IcsAttendee, ...]
    dtstamp: datetime
    description: str | None = None
    location: str | None = None


def booking_uid(booking_id: str, domain: str) -> str:
    """The UID every invitation of one booking carries."""
    return f"{booking_id}@{domain}"


def build_ics(event: IcsEvent, method: Method) -> bytes:
    """A complete VCALENDAR with METHOD, the host zone's VTIMEZONE and the VEVENT."""
    if method not in ("REQUEST", "CANCEL"):
        raise ValueError(f"unsupported iTIP method: {method!r}")
    for moment in (event.start, event.end, event.dtstamp):
        if moment.tzinfo is None:
            raise ValueError("IcsEvent needs timezone-aware datetimes")
    zone = get_zone(event.timezone)
    start, end = event.start.astimezone(zone), event.end.astimezone(zone)

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    # Whole years around the event: some clients keep one VTIMEZONE per TZID and apply
    # it to other events, so it should carry the zone's full rules, not just one offset.
    calendar.add_component(
        Timezone.from_tzinfo(
            zone,
            tzid=event.timezone,
            first_date=date(start.year, 1, 1),
            last_date=date(end.year + 1, 1, 1),
        )
    )

    vevent = Event()
    vevent.add("uid", _one_line(event.uid, "uid"))
    vevent.add("sequence", event.sequence)
    vevent.add("dtstamp", event.dtstamp)
    vevent.add("dtstart", start)
    vevent.add("dtend", end)
    vevent.add("summary", event.summary)
    if event.description:
        vevent.add("description", event.description)
    if event.location:
        vevent.add("location", event.location)
    vevent.add("organizer", _address(event.organizer.name, event.organizer.email), encode=False)
    for attendee in event.attendees:
        address = _address(attendee.name, attendee.email)
        address.params["ROLE"] = "REQ-PARTICIPANT"
        address.params["PARTSTAT"] = attendee.partstat
        # Ask for an answer only from people who have not given one.
        address.params["RSVP"] = "TRUE" if attendee.partstat == "NEEDS-ACTION" else "FALSE"
        vevent.add("attendee", address, encode=False)
    vevent.add("status", "CONFIRMED" if method == "REQUEST" else "CANCELLED")
    vevent.add("transp", "OPAQUE")
    calendar.add_component(vevent)
    return calendar.to_ical()


def _address(name: str, email: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{_one_line(email, 'email')}")
    address.params["CN"] = vText(_one_line(name, "name"))
    return address


def _one_line(text: str, what: str) -> str:
    # Parameters and addresses cannot be escaped in iCalendar; a line break would let a
    # user-supplied name inject properties.
    if any(ch in text for ch in "\r\n\x00"):
        raise ValueError(f"{what} must be a single line")
    return text
