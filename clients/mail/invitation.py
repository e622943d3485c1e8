"""A booking's iCalendar invitation (RFC 5545/5546), from a notification payload, built by the kernel.

One UID per booking for its whole life; SEQUENCE is the projection version of the step (see
`payload.sequence_for`), so a CANCEL always outranks the REQUEST it withdraws. The host organizes and
has accepted; the guest is asked to answer, which is what makes mail clients show accept/decline.
Without a host address the organizer is Huddle's own sender address, named after the host.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast

from kernel.calendar.ics import IcsAttendee, IcsEvent, IcsOrganizer, booking_uid, build_ics
from kernel.lexicon import parse_datetime

Method = Literal["REQUEST", "CANCEL"]


def invitation_event(
    payload: dict[str, Any], *, domain: str, organizer_fallback: str, dtstamp: datetime, booking_url: str
) -> IcsEvent | None:
    """The event a payload describes; None if the booking never got a time."""
    if not payload.get("start") or not payload.get("end"):
        return None
    host_name, guest_name = payload["hostName"], payload["guestName"]
    attendees = []
    if payload.get("hostEmail"):
        attendees.append(IcsAttendee(host_name, payload["hostEmail"], "ACCEPTED"))
    if payload.get("guestEmail"):
        attendees.append(IcsAttendee(guest_name, payload["guestEmail"], "NEEDS-ACTION"))
    description = f"{payload['title']} with {host_name}, booked by {guest_name} on Huddle.\n"
    if payload.get("note"):
        description += f"\nNote from {guest_name}:\n{payload['note']}\n"
    description += f"\nBooking: {booking_url}"
    return IcsEvent(
        uid=booking_uid(payload["bookingId"], domain),
        sequence=int(payload.get("sequence") or 0),
        start=parse_datetime(payload["start"]),
        end=parse_datetime(payload["end"]),
        timezone=payload.get("timezone") or "UTC",
        summary=f"{payload['title']} ({host_name} and {guest_name})",
        organizer=IcsOrganizer(host_name, payload.get("hostEmail") or organizer_fallback),
        attendees=tuple(attendees),
        dtstamp=dtstamp,
        description=description,
        location=payload.get("location") or None,
    )


def invitation_ics(
    payload: dict[str, Any],
    method: str,
    *,
    domain: str,
    organizer_fallback: str,
    dtstamp: datetime,
    booking_url: str,
) -> bytes | None:
    event = invitation_event(
        payload,
        domain=domain,
        organizer_fallback=organizer_fallback,
        dtstamp=dtstamp,
        booking_url=booking_url,
    )
    if event is None:
        return None
    return build_ics(event, cast(Method, method))
