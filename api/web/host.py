"""The host dashboard: office hours (written to the host's PDS), bookings to answer, a free-slot preview."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session, col, select
from starlette.responses import Response

from api.booking_commands import BookingCommandError, read_booking, send_command
from api.deps import StateDep
from api.sessions import session_token
from api.web import words
from api.web.guest import participant_booking
from api.web.offers import OFFER_NSID, find_offer, host_offers, index_written_offer, tombstone_offer
from api.web.office_hours import (
    NUMBER_FIELDS,
    RANGES_PER_DAY,
    OfferFormError,
    blank_form,
    form_from_offer,
    record_from_form,
)
from api.web.pages import (
    CheckedForm,
    PageError,
    PageRouter,
    SignInRequired,
    UserDep,
    Viewer,
    WebDep,
    redirect,
    render,
    viewer_zone,
)
from api.web.preview import next_free_slots
from api.web.state import WebState
from clients.oauth import OAuthError, PdsRequestError, SessionExpired, StoredSession
from kernel.booking.messages import CommandInput, RescheduleInput, RespondInput
from kernel.lexicon import BOOKING_STATES
from models.tables import Booking, CalendarConnector, OfferIndex, User
from models.types import utcnow

router = PageRouter(prefix="/host")

NOTICES = {
    "saved": "Saved. Your office hours are published on your PDS and bookable now.",
    "deleted": "Those office hours are removed from your PDS.",
    "approved": "Approved: the meeting is confirmed.",
    "declined": "Declined: the guest is told.",
    "cancelled": "The meeting is cancelled.",
    "rescheduled": "Moved: Huddle found another time and sent you both an updated invitation.",
}


@router.get("")
def dashboard(request: Request, web: WebDep, user: UserDep, notice: str = "") -> Response:
    """Office hours, requests waiting for you, what is coming up, and your calendars."""
    now = utcnow()
    with Session(web.engine) as session:
        waiting = [
            b
            for b in session.exec(
                select(Booking)
                .where(Booking.host_did == user.did, Booking.state == "held")
                .order_by(col(Booking.start_at))
            ).all()
            if "host" in (b.awaiting or [])
        ]
        upcoming = session.exec(
            select(Booking)
            .where(Booking.host_did == user.did, Booking.state == "confirmed", col(Booking.end_at) > now)
            .order_by(col(Booking.start_at))
            .limit(10)
        ).all()
        connectors = session.exec(
            select(CalendarConnector).where(CalendarConnector.owner_did == user.did)
        ).all()
        names = _names(session, {b.guest_did for b in [*waiting, *upcoming]})
    offers = host_offers(web.engine, user.did)
    return render(
        request,
        "dashboard.html",
        viewer=user,
        offers=offers,
        waiting=waiting,
        upcoming=upcoming,
        connectors=connectors,
        names=names,
        notice=NOTICES.get(notice),
        zone=offers[0].offer.timezone if offers else viewer_zone(request),
    )


def _names(session: Session, dids: set[str]) -> dict[str, str]:
    if not dids:
        return {}
    users = session.exec(select(User).where(col(User.did).in_(dids))).all()
    known = {u.did: f"@{u.handle}" for u in users if u.handle}
    return {did: known.get(did, did) for did in dids}


# ---------------------------------------------------------------- office hours editor


def _editor(
    request: Request,
    user: Viewer,
    values: dict[str, Any],
    *,
    rkey: str | None,
    error: OfferFormError | str | None = None,
    status: int = 200,
) -> Response:
    field = error.field if isinstance(error, OfferFormError) else None
    message = error.message if isinstance(error, OfferFormError) else error
    return render(
        request,
        "offer_editor.html",
        status=status,
        viewer=user,
        v=values,
        rkey=rkey,
        error=message,
        error_field=field,
        ranges=range(RANGES_PER_DAY),
        numbers=NUMBER_FIELDS,
        zones=words.zone_names(),
    )


@router.get("/offers/new")
def new_offer(request: Request, user: UserDep) -> Response:
    """An empty editor (weekdays 9 to 5 in your zone, to start from)."""
    return _editor(request, user, blank_form(viewer_zone(request)), rkey=None)


@router.get("/offers/{rkey}")
def edit_offer(request: Request, web: WebDep, user: UserDep, rkey: str) -> Response:
    found = find_offer(web.engine, user.did, rkey)
    if found is None:
        raise PageError(
            404, "No such office hours", "They may have been removed.", "Go back to your dashboard."
        )
    return _editor(request, user, form_from_offer(found.offer), rkey=rkey)


@router.post("/offers/new")
async def create_offer(request: Request, web: WebDep, user: UserDep, form: CheckedForm) -> Response:
    """Publish new office hours: a record on your PDS, then in Huddle's index at once."""
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        record = record_from_form(values, created_at=utcnow())
    except OfferFormError as exc:
        return _editor(request, user, values, rkey=None, error=exc, status=400)
    body = {"repo": user.did, "collection": OFFER_NSID, "record": record}
    answer = await _write(request, web, user, "com.atproto.repo.createRecord", body, values, rkey=None)
    if isinstance(answer, Response):
        return answer
    rkey = str(answer["uri"]).rsplit("/", 1)[-1]
    return await _indexed(request, web, user, rkey, answer, record)


async def _indexed(
    request: Request, web: Any, user: Any, rkey: str, answer: dict[str, Any], record: dict[str, Any]
) -> Response:
    """Index what the PDS accepted at once (the firehose echo only confirms it); back to the dashboard."""
    await run_in_threadpool(
        index_written_offer,
        web.engine,
        did=user.did,
        rkey=rkey,
        cid=answer["cid"],
        rev=(answer.get("commit") or {}).get("rev"),
        record=record,
        handle=user.handle,
    )
    return redirect(request, "/host?notice=saved")


@router.post("/offers/{rkey}")
async def update_offer(
    request: Request, web: WebDep, user: UserDep, form: CheckedForm, rkey: str
) -> Response:
    """Change office hours: the record on your PDS is replaced (only if nobody changed it meanwhile)."""
    found = await run_in_threadpool(find_offer, web.engine, user.did, rkey)
    if found is None:
        raise PageError(
            404, "No such office hours", "They may have been removed.", "Go back to your dashboard."
        )
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        record = record_from_form(values, created_at=found.offer.created_at, keep=found.record)
    except OfferFormError as exc:
        return _editor(request, user, values, rkey=rkey, error=exc, status=400)
    body = {
        "repo": user.did,
        "collection": OFFER_NSID,
        "rkey": rkey,
        "record": record,
        "swapRecord": found.cid,
    }
    answer = await _write(request, web, user, "com.atproto.repo.putRecord", body, values, rkey=rkey)
    if isinstance(answer, Response):
        return answer
    return await _indexed(request, web, user, rkey, answer, record)


@router.post("/offers/{rkey}/delete")
async def delete_offer(
    request: Request, web: WebDep, user: UserDep, form: CheckedForm, rkey: str
) -> Response:
    """Remove office hours from your PDS (bookings already made stay)."""
    body = {"repo": user.did, "collection": OFFER_NSID, "rkey": rkey}
    answer = await _write(request, web, user, "com.atproto.repo.deleteRecord", body, None, rkey=rkey)
    if isinstance(answer, Response):
        return answer
    rev = ((answer or {}).get("commit") or {}).get("rev")
    await run_in_threadpool(tombstone_offer, web.engine, did=user.did, rkey=rkey, rev=rev)
    return redirect(request, "/host?notice=deleted")


async def _stored_session(request: Request, web: WebState) -> StoredSession:
    token = session_token(request)
    stored = None
    if token is not None:
        max_age = timedelta(seconds=web.settings.web_session_max_age_seconds)
        stored = await run_in_threadpool(web.sessions.load, token, max_age)
    if stored is None:
        raise SignInRequired(request.url.path)
    return stored


async def _write(
    request: Request,
    web: WebState,
    user: Viewer,
    nsid: str,
    body: dict[str, Any],
    values: dict[str, Any] | None,
    *,
    rkey: str | None,
) -> Any:
    """Call the PDS as the host; a problem becomes the editor again with the PDS's words (or sign-in)."""
    stored = await _stored_session(request, web)
    try:
        _, answer = await web.sessions.pds_call(stored, "POST", nsid, body=body)
    except SessionExpired as exc:
        raise SignInRequired("/host" if rkey is None else f"/host/offers/{rkey}") from exc
    except PdsRequestError as exc:
        message = (
            "Your office hours were changed elsewhere meanwhile. Reload this page to see them, then edit."
            if exc.error == "InvalidSwap"
            else f"Your PDS refused the change: {exc.message}"
        )
        if values is None:
            raise PageError(exc.status if exc.status < 500 else 502, "Not removed", message) from exc
        return _editor(
            request, user, values, rkey=rkey, error=message, status=409 if exc.error == "InvalidSwap" else 502
        )
    except OAuthError as exc:
        detail = f"We could not reach your PDS: {exc.message}"
        if values is None:
            raise PageError(502, "Not removed", detail, "Try again in a moment.") from exc
        return _editor(request, user, values, rkey=rkey, error=detail, status=502)
    return answer


# ---------------------------------------------------------------- bookings


@router.get("/bookings")
def host_bookings(
    request: Request, web: WebDep, user: UserDep, state: str = "", when: str = "upcoming"
) -> Response:
    """Meetings booked with you, filtered by state and by upcoming or past."""
    now = utcnow()
    query = select(Booking).where(Booking.host_did == user.did)
    if state in BOOKING_STATES:
        query = query.where(Booking.state == state)
    if when == "upcoming":
        query = query.where(
            (col(Booking.end_at) > now)
            | (col(Booking.end_at).is_(None) & col(Booking.state).in_(("pending",)))
        )
        query = query.order_by(col(Booking.start_at))
    elif when == "past":
        query = query.where(col(Booking.end_at) <= now).order_by(col(Booking.start_at).desc())
    else:
        query = query.order_by(col(Booking.created_at).desc())
    with Session(web.engine) as session:
        rows = session.exec(query.limit(200)).all()
        names = _names(session, {r.guest_did for r in rows})
        zones = {
            o.uri: o.timezone
            for o in session.exec(select(OfferIndex).where(OfferIndex.did == user.did)).all()
        }
    return render(
        request,
        "host_bookings.html",
        viewer=user,
        rows=rows,
        names=names,
        zones=zones,
        state=state if state in BOOKING_STATES else "",
        when=when if when in ("upcoming", "past", "all") else "upcoming",
        states=BOOKING_STATES,
    )


@router.get("/bookings/{booking_id}")
def host_booking(request: Request, web: WebDep, user: UserDep, booking_id: str) -> Response:
    """One meeting as its host sees it, with approve / decline / cancel."""
    row = participant_booking(web, user, booking_id)
    if row.host_did != user.did:
        return redirect(request, f"/bookings/{booking_id}")
    view = read_booking(web.engine, booking_id)
    assert view is not None
    with Session(web.engine) as session:
        offer = session.get(OfferIndex, row.offer_uri)
        names = _names(session, {row.guest_did})
    zone = offer.timezone if offer else viewer_zone(request)
    return render(
        request,
        "host_booking.html",
        viewer=user,
        b=view,
        row=row,
        offer_title=offer.title if offer else "(office hours removed)",
        guest_name=names[row.guest_did],
        zone=zone,
        says=words.state_words(view.state),
        can_respond=view.state == "held" and "host" in view.awaiting,
        can_cancel=view.state in ("held", "confirmed"),
        can_reschedule=view.state == "confirmed",
        live=view.state in ("pending", "held"),
        notice=NOTICES.get(request.query_params.get("notice", "")),
    )


async def _command(state: Any, booking_id: str, update: str, command: Any) -> None:
    try:
        await send_command(state.temporal, state.engine, booking_id, update, command)
    except BookingCommandError as exc:
        raise PageError(
            exc.status if exc.status < 500 else 502,
            "That did not work",
            exc.message,
            "Reload the meeting's page to see where it stands now.",
        ) from exc


@router.post("/bookings/{booking_id}/respond")
async def respond(
    request: Request, state: StateDep, web: WebDep, user: UserDep, form: CheckedForm, booking_id: str
) -> Response:
    """Approve or decline a request that waits for you."""
    row = await run_in_threadpool(participant_booking, web, user, booking_id)
    if row.host_did != user.did:
        raise PageError(403, "Only the host answers", "Only the host approves or declines a request.")
    decision = str(form.get("decision", ""))
    if decision not in ("approve", "decline"):
        raise PageError(
            400, "Choose approve or decline", "The form did not say which.", "Go back and choose one."
        )
    reason = str(form.get("reason", "")).strip()[:1000] or None
    await _command(state, booking_id, "respond", RespondInput(user.did, decision, reason))
    notice = "approved" if decision == "approve" else "declined"
    return redirect(request, f"/host/bookings/{booking_id}?notice={notice}")


@router.post("/bookings/{booking_id}/cancel")
async def cancel(
    request: Request, state: StateDep, web: WebDep, user: UserDep, form: CheckedForm, booking_id: str
) -> Response:
    await run_in_threadpool(participant_booking, web, user, booking_id)
    reason = str(form.get("reason", "")).strip()[:1000] or None
    await _command(state, booking_id, "cancel", CommandInput(user.did, reason))
    return redirect(request, f"/host/bookings/{booking_id}?notice=cancelled")


@router.post("/bookings/{booking_id}/reschedule")
async def reschedule(
    request: Request, state: StateDep, web: WebDep, user: UserDep, form: CheckedForm, booking_id: str
) -> Response:
    """The host asks for another time; Huddle picks it (or says none is free)."""
    await run_in_threadpool(participant_booking, web, user, booking_id)
    reason = str(form.get("reason", "")).strip()[:300] or None
    await _command(state, booking_id, "reschedule", RescheduleInput(user.did, reason=reason))
    return redirect(request, f"/host/bookings/{booking_id}?notice=rescheduled")


# ---------------------------------------------------------------- preview


@router.get("/preview")
def preview(request: Request, web: WebDep, user: UserDep, offer: str = "", duration: int = 0) -> Response:
    """The next free slots of one of your offers, as the next guests would get them."""
    offers = host_offers(web.engine, user.did)
    if not offers:
        return redirect(request, "/host/offers/new")
    chosen = next((o for o in offers if o.rkey == offer), offers[0])
    length = duration if duration in chosen.offer.durations else chosen.offer.durations[0]
    busy = _busy_source(web)
    result = next_free_slots(
        web.engine,
        busy,
        host_did=user.did,
        offer_uri=chosen.uri,
        offer=chosen.offer,
        duration=length,
        now=utcnow(),
    )
    return render(
        request,
        "preview.html",
        viewer=user,
        offers=offers,
        chosen=chosen,
        length=length,
        result=result,
        zone=chosen.offer.timezone,
    )


def _busy_source(web: WebState) -> Any:
    """The host's connected calendars, read the way matching reads them."""
    from clients.calendar.connected import ConnectedCalendars

    return ConnectedCalendars(web.settings, web.engine)
