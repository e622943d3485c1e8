"""`GET /bookings/{id}.ics`: a booking's calendar invitation, for its host and guest only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from api.auth import CallerIdentity, XrpcError, caller_for
from api.deps import SessionDep, SettingsDep
from clients.mail.invitation import invitation_ics
from clients.mail.message import MailIdentity
from clients.mail.payload import booking_payload, load_history, load_people
from clients.mail.render import Links
from models.tables import Booking
from models.types import utcnow

router = APIRouter()

# Reading a booking's invitation is reading the booking: the same service-auth method.
BookingReader = Annotated[CallerIdentity, Depends(caller_for("com.huddle.getBooking"))]


@router.get("/bookings/{booking_id}.ics", response_class=Response)
def booking_ics(
    booking_id: str, caller: BookingReader, session: SessionDep, settings: SettingsDep
) -> Response:
    """The invitation (METHOD:REQUEST), or its cancellation once a confirmed booking is cancelled."""
    booking = session.get(Booking, booking_id)
    if booking is None or caller.did not in (booking.host_did, booking.guest_did):
        raise XrpcError(404, "NotFound", "booking not found")
    history = load_history(session, booking.id)
    if booking.state == "confirmed":
        method = "REQUEST"
    elif booking.state == "cancelled" and history.was_confirmed:
        method = "CANCEL"
    else:
        raise XrpcError(409, "InvalidState", f"a {booking.state} booking has no calendar invitation")
    role = "host" if caller.did == booking.host_did else "guest"
    payload = booking_payload(booking, load_people(session, booking), history, step=booking.state, role=role)
    # The current version: at least the one the mailed invitation carried, so this never goes backwards.
    payload["sequence"] = max(payload["sequence"], booking.version)
    identity = MailIdentity.from_settings(settings)
    body = invitation_ics(
        payload,
        method,
        domain=identity.domain,
        organizer_fallback=identity.address,
        dtstamp=utcnow(),
        booking_url=Links.for_booking(settings.public_url, booking.id).booking,
    )
    if body is None:
        raise XrpcError(409, "InvalidState", "the booking has no time")
    return Response(
        body,
        media_type=f"text/calendar; charset=utf-8; method={method}",
        headers={
            "Content-Disposition": f'attachment; filename="huddle-{booking.id}.ics"',
            "Cache-Control": "private, no-store",
        },
    )
