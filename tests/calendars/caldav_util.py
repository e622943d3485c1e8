"""Putting events into a Radicale calendar the way another CalDAV client would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import caldav
from icalendar import Calendar, Event, vCalAddress


def add_caldav_event(
    url: str,
    username: str,
    password: str,
    calendar_url: str,
    start: datetime,
    end: datetime,
    *,
    transp: str = "OPAQUE",
    status: str | None = None,
    my_partstat: str | None = None,
) -> str:
    calendar = Calendar()
    calendar.add("prodid", "-//Another client//EN")
    calendar.add("version", "2.0")
    event = Event()
    uid = f"{uuid.uuid4()}@other.test"
    event.add("uid", uid)
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", "Busy elsewhere")
    event.add("transp", transp)
    if status:
        event.add("status", status)
    if my_partstat:
        organizer = vCalAddress("mailto:boss@other.test")
        event.add("organizer", organizer)
        me = vCalAddress(f"mailto:{username}@other.test")
        me.params["PARTSTAT"] = my_partstat
        event.add("attendee", me)
    calendar.add_component(event)
    with caldav.DAVClient(  # type: ignore[operator]
        url=url, username=username, password=password, require_tls=False, enable_rfc6764=False
    ) as client:
        client.calendar(url=calendar_url).save_event(calendar.to_ical().decode())
    return uid


def caldav_events(url: str, username: str, password: str, calendar_url: str) -> list[str]:
    """The UIDs of the events in a calendar."""
    with caldav.DAVClient(  # type: ignore[operator]
        url=url, username=username, password=password, require_tls=False, enable_rfc6764=False
    ) as client:
        return [str(e.icalendar_component["uid"]) for e in client.calendar(url=calendar_url).events()]
