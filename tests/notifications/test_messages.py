"""What each message says and how it is built: MIME layout, headers, times per recipient, invitations."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from clients.mail.message import MailIdentity, compose, message_id
from clients.mail.render import KINDS
from models.settings import Settings
from tests.notifications.helpers import (
    GUEST_EMAIL,
    HOST_EMAIL,
    activities,
    body,
    calendar_part,
    check_itip,
    effect,
    rows,
    seed_booking,
    vevent,
)
from tests.notifications.smtp_peer import Received


def _messages(engine: Engine, settings: Settings, booking: str) -> dict[str, Received]:
    identity = MailIdentity.from_settings(settings)
    out = {}
    for row in rows(engine, booking):
        envelope = compose(row, identity)
        out[row.dedupe_key.split(":", 1)[1]] = Received(envelope.sender, [envelope.recipient], envelope.data)
    return out


def test_confirmed_carries_an_imip_request_both_ways(engine: Engine, settings: Settings) -> None:
    booking = seed_booking(engine, host_timezone="America/New_York", guest_timezone="Europe/Paris")
    acts = activities(engine, settings)
    assert acts.enqueue_notifications(effect(booking, "confirmed")) == 2
    assert acts.enqueue_notifications(effect(booking, "confirmed")) == 0  # a retry adds nothing
    mails = _messages(engine, settings, booking)
    assert set(mails) == {"confirmed:guest", "confirmed:host"}

    guest = mails["confirmed:guest"].message
    assert guest["To"] == GUEST_EMAIL and mails["confirmed:host"].message["To"] == HOST_EMAIL
    assert guest["From"] == "Huddle <no-reply@huddle.test>"
    assert guest["Message-ID"] == message_id(f"{booking}:confirmed:guest", "huddle.test")
    assert guest["Message-ID"] == f"<{booking}.confirmed.guest@huddle.test>"
    assert guest["References"] == f"<booking.{booking}@huddle.test>"
    assert guest["Auto-Submitted"] == "auto-generated"
    assert guest["Subject"] == "Confirmed: Office hours with host.test, Tue 1 Dec 2026 15:00 CET"

    # multipart/mixed: [alternative: plain, html, calendar], application/ics attachment
    assert guest.get_content_type() == "multipart/mixed"
    alternative, attachment = guest.iter_parts()
    assert [p.get_content_type() for p in alternative.iter_parts()] == [
        "text/plain",
        "text/html",
        "text/calendar",
    ]
    assert attachment.get_content_type() == "application/ics"
    assert attachment.get_filename() == "invite.ics"
    method, ics = calendar_part(guest) or ("", b"")
    assert method == "REQUEST" and attachment.get_payload(decode=True) == ics

    cal = check_itip(ics, "REQUEST")
    event = vevent(cal)
    assert str(event["UID"]) == f"{booking}@huddle.test"
    assert event.decoded("SEQUENCE") == 3  # the version the booking was confirmed at
    assert event["DTSTART"].params["TZID"] == "America/New_York"  # the host's offer zone
    assert event.decoded("DTSTART").strftime("%H:%M") == "09:00"
    assert str(event["ORGANIZER"]) == f"mailto:{HOST_EMAIL}"
    partstats = {str(a): a.params["PARTSTAT"] for a in event["ATTENDEE"]}
    assert partstats == {f"mailto:{HOST_EMAIL}": "ACCEPTED", f"mailto:{GUEST_EMAIL}": "NEEDS-ACTION"}
    assert str(event["LOCATION"]) == "https://meet.example/huddle"

    # Times in each recipient's own zone, the zone named; the guest also sees the host's time.
    guest_text = body(guest, "plain")
    assert "Tuesday 1 December 2026, 15:00–15:30 (Europe/Paris, CET)" in guest_text
    assert "(Tuesday 1 December 2026, 09:00–09:30 (America/New_York, EST) for host.test)" in guest_text
    host_text = body(mails["confirmed:host"].message, "plain")
    assert "Tuesday 1 December 2026, 09:00–09:30 (America/New_York, EST)" in host_text
    assert "Europe/Paris" not in host_text
    # Where to go for another time: each person's own booking page.
    assert f"https://huddle.test/bookings/{booking}\r\nNeed another time" in guest_text
    assert f"https://huddle.test/host/bookings/{booking}\r\nNeed another time" in host_text
    html = body(guest, "html")
    assert "15:00–15:30 (Europe/Paris, CET)" in html and "https://huddle.test/bookings/" in html
    assert "Let&#39;s talk about the roadmap." in html  # the guest's note, escaped


def test_cancel_after_confirm_has_the_same_uid_and_a_higher_sequence(
    engine: Engine, settings: Settings
) -> None:
    booking = seed_booking(engine, states=("held", "confirmed", "cancelled"), actor="host", reason="sick")
    acts = activities(engine, settings)
    acts.enqueue_notifications(effect(booking, "confirmed"))
    acts.enqueue_notifications(effect(booking, "cancelled"))
    mails = _messages(engine, settings, booking)
    request = check_itip(calendar_part(mails["confirmed:guest"].message)[1], "REQUEST")  # type: ignore[index]
    method, data = calendar_part(mails["cancelled:guest"].message) or ("", b"")
    assert method == "CANCEL"
    cancel = check_itip(data, "CANCEL")
    assert vevent(cancel)["UID"] == vevent(request)["UID"]
    assert vevent(cancel).decoded("SEQUENCE") > vevent(request).decoded("SEQUENCE")
    assert mails["cancelled:guest"].message.get_content_type() == "multipart/mixed"
    text = body(mails["cancelled:guest"].message, "plain")
    assert text.startswith("host.test cancelled Office hours with host.test.")
    assert "Reason: sick" in text
    host_text = body(mails["cancelled:host"].message, "plain")
    assert host_text.startswith("You cancelled Office hours with guest-")


def test_cancel_of_a_booking_never_confirmed_has_no_invitation(engine: Engine, settings: Settings) -> None:
    booking = seed_booking(engine, states=("held", "cancelled"))
    activities(engine, settings).enqueue_notifications(effect(booking, "cancelled"))
    mails = _messages(engine, settings, booking)
    assert set(mails) == {"cancelled:guest", "cancelled:host"}
    for mail in mails.values():
        assert mail.message.get_content_type() == "multipart/alternative"
        assert calendar_part(mail.message) is None


def test_held_tells_the_guest_the_finalize_link_and_the_expiry(engine: Engine, settings: Settings) -> None:
    booking = seed_booking(engine, states=("held",), offer_timezone="UTC")
    activities(engine, settings).enqueue_notifications(
        effect(booking, "held", guestTimezone="Asia/Kathmandu")
    )
    [mail] = _messages(engine, settings, booking).values()
    text = body(mail.message, "plain")
    assert f"https://huddle.test/bookings/{booking}" in text
    assert "The slot is held for you until" in text and "(Asia/Kathmandu, +0545)" in text
    assert "Tuesday 1 December 2026, 19:45–20:15 (Asia/Kathmandu, +0545)" in text
    assert mail.message["Subject"].startswith(
        "Held for you: Office hours with host.test, Tue 1 Dec 2026 19:45"
    )


def test_request_received_gives_the_host_approve_and_decline_links(
    engine: Engine, settings: Settings
) -> None:
    booking = seed_booking(engine, states=("held",), requires_approval=True)
    activities(engine, settings).enqueue_notifications(effect(booking, "request_received"))
    [mail] = _messages(engine, settings, booking).values()
    assert mail.rcpt_tos == [HOST_EMAIL]
    text = body(mail.message, "plain")
    assert f"https://huddle.test/host/bookings/{booking}?decision=approve" in text
    assert f"https://huddle.test/host/bookings/{booking}?decision=decline" in text
    html = body(mail.message, "html")
    assert f"/host/bookings/{booking}?decision=approve" in html


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_text_and_html_for_its_recipients(
    engine: Engine, settings: Settings, kind: str
) -> None:
    states = {
        "held": ("held",),
        "hold_moved": ("held",),
        "hold_lost": ("held", "unavailable"),
        "request_received": ("held",),
        "confirmed": ("held", "confirmed"),
        "reminder": ("held", "confirmed"),
        "declined": ("held", "declined"),
        "expired": ("held", "expired"),
        "cancelled": ("held", "confirmed", "cancelled"),
        "rescheduled": ("held", "confirmed"),
    }[kind]
    booking = seed_booking(engine, states=states, reason="no longer needed")
    activities(engine, settings).enqueue_notifications(effect(booking, kind))
    mails = _messages(engine, settings, booking)
    assert mails
    for mail in mails.values():
        message = mail.message
        text, html = body(message, "plain"), body(message, "html")
        assert "None" not in text and "None" not in html
        assert "(America/New_York, EST)" in text
        assert message["X-Huddle-Kind"] == kind and message["X-Huddle-Booking"] == booking
        assert (calendar_part(message) is not None) == (kind in ("confirmed", "cancelled", "rescheduled"))


def test_unknown_or_undeliverable_addresses_are_skipped_and_audited(
    engine: Engine, settings: Settings
) -> None:
    booking = seed_booking(engine, host_email=None, guest_email="not an address")
    assert activities(engine, settings).enqueue_notifications(effect(booking, "confirmed")) == 0
    from tests.notifications.helpers import audit

    skipped = [e.detail for e in audit(engine, booking) if e.action == "notification_skipped"]
    assert {d["role"]: d["why"] for d in skipped} == {
        "guest": "the email address cannot be delivered to",
        "host": "no email address known",
    }


def test_without_a_host_address_the_invitation_is_organized_by_huddle(
    engine: Engine, settings: Settings
) -> None:
    booking = seed_booking(engine, host_email=None)
    activities(engine, settings).enqueue_notifications(effect(booking, "confirmed"))
    [mail] = _messages(engine, settings, booking).values()
    event = vevent(check_itip(calendar_part(mail.message)[1], "REQUEST"))  # type: ignore[index]
    assert str(event["ORGANIZER"]) == "mailto:no-reply@huddle.test"
    assert event["ORGANIZER"].params["CN"] == "host.test"
