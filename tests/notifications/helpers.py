"""Seeding bookings (with their audit history) and checking invitations against RFC 5545/5546."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from icalendar import Calendar
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from activities.notifications import NotificationActivities
from clients.mail.outbox import OutboxSender, sender_from_settings
from kernel.booking.messages import SideEffect
from models.db import session_scope
from models.settings import Settings
from models.tables import AuditEntry, Booking, OfferIndex, OutboxMessage, User

HOST_EMAIL = "host@example.test"
GUEST_EMAIL = "guest@example.test"
# Tuesday 1 December 2026, 14:00–14:30 UTC: 09:00 in New York, 15:00 in Paris.
START = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


def seed_booking(
    engine: Engine,
    *,
    states: Sequence[str] = ("held", "confirmed"),
    host_email: str | None = HOST_EMAIL,
    guest_email: str | None = GUEST_EMAIL,
    host_timezone: str | None = None,
    guest_timezone: str | None = None,
    offer_timezone: str = "America/New_York",
    start: datetime = START,
    hold_expires_at: datetime | None = None,
    actor: str = "guest",
    reason: str | None = None,
    note: str | None = "Let's talk about the roadmap.",
    requires_approval: bool = False,
    location: str | None = "https://meet.example/huddle",
    host: str | None = None,
    guest: str | None = None,
) -> str:
    """A booking that went through `states` (versions 2, 3, …), with its offer, users and audit log."""
    booking_id = uuid.uuid4().hex[:24]
    # A host per booking: on Postgres two bookings of one host at one time are refused.
    host = host or f"did:plc:host{booking_id[:16]}"
    guest = guest or f"did:plc:guest{booking_id[:16]}"
    uri = f"at://{host}/com.huddle.slotOffer/{booking_id[:13]}"
    hold = hold_expires_at or datetime.now(UTC) + timedelta(minutes=15)
    with session_scope(engine) as session:
        for user in (
            User(did=host, handle="host.test", email=host_email, timezone=host_timezone),
            User(did=guest, handle=f"guest-{booking_id[:6]}.test", timezone=guest_timezone),
        ):
            if session.get(User, user.did) is None:
                session.add(user)
        record: dict[str, Any] = {
            "title": "Office hours",
            "timezone": offer_timezone,
            "windows": [],
            "durations": [30],
            "createdAt": "2026-11-01T00:00:00.000Z",
        }
        if location:
            record["location"] = location
        session.add(
            OfferIndex(
                uri=uri,
                did=host,
                rkey=booking_id[:13],
                cid="bafyreitest",
                record=record,
                title="Office hours",
                timezone=offer_timezone,
                requires_approval=requires_approval,
            )
        )
        session.add(
            Booking(
                id=booking_id,
                workflow_id=f"booking-{booking_id}",
                host_did=host,
                guest_did=guest,
                offer_uri=uri,
                duration_minutes=30,
                state=states[-1],
                start_at=start,
                end_at=start + timedelta(minutes=30),
                block_start=start,
                block_end=start + timedelta(minutes=30),
                hold_expires_at=hold if states[-1] == "held" else None,
                idempotency_key=booking_id,
                guest_email=guest_email,
                note=note,
                reason=reason,
                version=1 + len(states),
            )
        )
        session.add(
            AuditEntry(booking_id=booking_id, action="requested", detail={"state": "pending", "version": 1})
        )
        for version, state in enumerate(states, start=2):
            who = (
                {"host": host, "guest": guest}[actor]
                if state in ("cancelled", "declined", "confirmed")
                else None
            )
            session.add(
                AuditEntry(
                    booking_id=booking_id,
                    actor_did=who,
                    action=state,
                    detail={"state": state, "version": version},
                    dedupe_key=f"{booking_id}:{version}",
                )
            )
    return booking_id


def activities(
    engine: Engine, settings: Settings, sender: OutboxSender | None = None
) -> NotificationActivities:
    return NotificationActivities(engine, sender or sender_from_settings(engine, settings))


def effect(booking_id: str, step: str, **detail: Any) -> SideEffect:
    return SideEffect(booking_id=booking_id, step=step, key=f"{booking_id}:{step}", detail=detail)


def rows(engine: Engine, booking_id: str) -> list[OutboxMessage]:
    with Session(engine) as session:
        query = select(OutboxMessage).where(OutboxMessage.booking_id == booking_id)
        return list(session.exec(query.order_by(col(OutboxMessage.id))))


def row_states(engine: Engine, booking_id: str) -> dict[str, str]:
    return {r.dedupe_key.split(":", 1)[1]: r.state for r in rows(engine, booking_id)}


def audit(engine: Engine, booking_id: str) -> list[AuditEntry]:
    with Session(engine) as session:
        query = select(AuditEntry).where(AuditEntry.booking_id == booking_id)
        return list(session.exec(query.order_by(col(AuditEntry.id))))


# ---------------------------------------------------------------- RFC 5545 / 5546 / 6047 checks


def body(message: EmailMessage, subtype: str) -> str:
    """The text/plain or text/html body of a message."""
    part = message.get_body((subtype,))
    assert part is not None, f"no text/{subtype} part"
    content = part.get_content()
    assert isinstance(content, str)
    return content


def calendar_part(message: EmailMessage) -> tuple[str, bytes] | None:
    """(method parameter, body) of the text/calendar part inside multipart/alternative."""
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return str(part.get_param("method")), payload
    return None


def check_itip(data: bytes, method: str) -> Calendar:
    """Parse an iTIP object and assert the rules a calendar client relies on; returns it."""
    assert b"\r\n" in data and all(len(line) <= 75 for line in data.split(b"\r\n")), "CRLF, folded lines"
    cal = Calendar.from_ical(data)
    # RFC 5545 §3.6 / RFC 5546 §1.4: PRODID, VERSION 2.0, METHOD on the calendar.
    assert cal.get("PRODID") and str(cal["VERSION"]) == "2.0"
    assert str(cal["METHOD"]) == method
    events = cal.events
    assert len(events) == 1, "one VEVENT per iTIP message (one UID)"
    [event] = events
    # RFC 5546 §3.2.2 (REQUEST) and §3.2.5 (CANCEL): required properties.
    for prop in (
        "UID",
        "DTSTAMP",
        "DTSTART",
        "ORGANIZER",
        "SEQUENCE",
        "SUMMARY" if method == "REQUEST" else "UID",
    ):
        assert event.get(prop) is not None, f"{prop} missing"
    assert event.get("ATTENDEE") is not None, "a REQUEST/CANCEL names its attendees"
    assert event.decoded("DTEND") > event.decoded("DTSTART")
    assert event.decoded("DTSTAMP").tzinfo is not None and event["DTSTAMP"].to_ical()[-1:] in (b"Z", "Z")
    assert str(event["STATUS"]) == ("CONFIRMED" if method == "REQUEST" else "CANCELLED")
    # Every TZID used by DTSTART/DTEND is defined by a VTIMEZONE in the same object.
    defined = {str(tz["TZID"]) for tz in cal.timezones}
    # (A UTC time is written in UTC form, "…Z", which needs no TZID: RFC 5545 §3.3.5 form #2.)
    for prop in ("DTSTART", "DTEND"):
        tzid = event[prop].params.get("TZID")
        if tzid is None:
            assert event[prop].to_ical()[-1:] in (b"Z", "Z"), f"{prop} is floating: neither TZID nor UTC"
        else:
            assert tzid in defined, f"{prop} TZID {tzid!r} not among VTIMEZONEs {defined}"
    assert cal.get_missing_tzids() == set()
    # ORGANIZER and ATTENDEE are mailto: cal-addresses.
    attendees = event["ATTENDEE"] if isinstance(event["ATTENDEE"], list) else [event["ATTENDEE"]]
    for address in [event["ORGANIZER"], *attendees]:
        assert str(address).startswith("mailto:")
    for attendee in attendees:
        assert attendee.params["PARTSTAT"] in ("NEEDS-ACTION", "ACCEPTED", "DECLINED", "TENTATIVE")
    return cal


def vevent(cal: Calendar) -> Any:
    return cal.events[0]
