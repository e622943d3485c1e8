"""Guest pages: find a host, the host's page, the request form, the live status page, my meetings."""

from __future__ import annotations

import secrets
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session, col, select
from starlette.datastructures import FormData
from starlette.responses import Response

from api.auth import CallerIdentity, XrpcError
from api.booking_commands import BookingCommandError, read_booking, send_command
from api.deps import StateDep
from api.ratelimit import get_rate_limiter
from api.web import words
from api.web.offers import find_offer, host_offers
from api.web.pages import (
    CheckedForm,
    PageError,
    PageRouter,
    UserDep,
    Viewer,
    ViewerDep,
    WebDep,
    redirect,
    render,
    viewer_zone,
)
from api.xrpc.bookings import run_match
from clients.identity import IdentityError
from kernel.booking.messages import CommandInput, RescheduleInput
from kernel.lexicon import BookingView
from models.tables import Booking, OfferIndex, User

router = PageRouter()

NOTICES = {
    "signed-out": "You are signed out.",
    "finalized": "Done: you confirmed the time.",
    "cancelled": "The meeting is cancelled.",
    "rescheduled": "Moved: Huddle found another time and sent you both an updated invitation.",
}


@router.get("/")
async def home(request: Request, viewer: ViewerDep, notice: str = "") -> Response:
    """Start here: find a host by handle."""
    return render(request, "home.html", viewer=viewer, notice=NOTICES.get(notice), error=None, host="")


@router.get("/find")
async def find_host(request: Request, web: WebDep, host: str = "") -> Response:
    """The find form (GET, works without JavaScript): on to the host's page."""
    value = host.strip().removeprefix("@").removeprefix("at://")
    if not value:
        return render(request, "home.html", status=400, notice=None, error="Enter a handle.", host=host)
    return redirect(request, f"/hosts/{quote(value, safe='@:')}")


async def _resolve_host(web: Any, actor: str) -> tuple[str, str | None]:
    try:
        did = await web.identity.resolve_actor(actor)
    except IdentityError as exc:
        raise PageError(
            404,
            "We could not find that person",
            f"No account answers to {actor!r} ({exc}).",
            "Check the spelling of the handle, for example alice.bsky.social.",
        ) from exc
    user = await run_in_threadpool(_user, web.engine, did)
    handle = user.handle if user and user.handle else (None if actor.startswith("did:") else actor.lower())
    return did, handle


def _user(engine: Any, did: str) -> User | None:
    with Session(engine) as session:
        return session.get(User, did)


@router.get("/hosts/{actor}")
async def host_page(request: Request, web: WebDep, viewer: ViewerDep, actor: str) -> Response:
    """A host's office hours, with who may book and how, in plain words."""
    did, handle = await _resolve_host(web, actor)
    offers = await run_in_threadpool(host_offers, web.engine, did)
    name = f"@{handle}" if handle else did
    return render(
        request,
        "host_page.html",
        viewer=viewer,
        host_did=did,
        host_name=name,
        actor=handle or did,
        offers=[(o, words.summarize(o.offer), words.policy_words(o.offer.policy, name)) for o in offers],
        is_self=viewer is not None and viewer.did == did,
    )


@router.get("/hosts/{actor}/request")
async def request_form(request: Request, web: WebDep, user: UserDep, actor: str, offer: str = "") -> Response:
    """The request form for one offer: length, dates, preferred hours (in the guest's zone), note, email."""
    did, handle = await _resolve_host(web, actor)
    chosen = await run_in_threadpool(_chosen_offer, web, did, offer)
    values = {
        "duration": str(chosen.offer.durations[0]),
        "timezone": viewer_zone(request, chosen.offer.timezone),
        "prefer": "earliest",
        "days": [],
    }
    return _form_page(request, user, did, handle, chosen, values, error=None)


@router.post("/hosts/{actor}/request")
async def request_submit(
    request: Request, state: StateDep, web: WebDep, user: UserDep, form: CheckedForm, actor: str
) -> Response:
    """Ask for a meeting: the same `com.huddle.match` the XRPC API runs, then on to the status page."""
    did, handle = await _resolve_host(web, actor)
    chosen = await run_in_threadpool(_chosen_offer, web, did, str(form.get("offer", "")))
    values = _form_values(form)
    try:
        body = match_body(did, chosen.uri, values)
    except ValueError as exc:
        return _form_page(request, user, did, handle, chosen, values, error=str(exc), status=400)
    decision = await get_rate_limiter(request).check(
        user.did, request.client.host if request.client else None
    )
    if not decision.allowed:
        raise PageError(
            429,
            "Too many requests",
            "You asked for many meetings in a short time.",
            "Wait a minute, then try again.",
        )
    try:
        view = await run_match(state, web.identity, CallerIdentity(user.did, "session"), body)
    except XrpcError as exc:
        return _form_page(request, user, did, handle, chosen, values, error=exc.message, status=exc.status)
    return redirect(request, f"/bookings/{view['id']}")


def _chosen_offer(web: Any, did: str, rkey_or_uri: str) -> Any:
    offers = host_offers(web.engine, did)
    if not offers:
        raise PageError(
            404,
            "No office hours to book",
            "This person has not published office hours that Huddle can book.",
            "Ask them to set up their office hours on Huddle.",
        )
    rkey = rkey_or_uri.rsplit("/", 1)[-1]
    if not rkey:
        return offers[0]
    found = find_offer(web.engine, did, rkey)
    if found is None:
        raise PageError(
            404,
            "These office hours are gone",
            "The host removed or changed them.",
            "Go back to the host's page.",
        )
    return found


def _form_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    values["days"] = [str(d) for d in form.getlist("days")]
    return values


def _local(day: str, at: time, tz: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), at, tzinfo=words.zone(tz))


def match_body(host_did: str, offer_uri: str, values: dict[str, Any]) -> dict[str, Any]:
    """The request form as a `com.huddle.match` body; ValueError naming the field if it cannot be."""
    tz = words.zone(values.get("timezone"), "UTC").key
    try:
        duration = int(values.get("duration", ""))
    except ValueError as exc:
        raise ValueError("Choose how long the meeting should be.") from exc
    body: dict[str, Any] = {"host": host_did, "offer": offer_uri, "durationMinutes": duration}
    try:
        if values.get("earliest"):
            body["earliest"] = _local(values["earliest"], time(0, 0), tz).isoformat()
        if values.get("latest"):
            # The whole last day counts: the meeting ends by midnight after it.
            body["latest"] = (_local(values["latest"], time(0, 0), tz) + timedelta(days=1)).isoformat()
    except ValueError as exc:
        raise ValueError("Dates must look like 2026-12-01.") from exc
    start, end = values.get("pref_start", ""), values.get("pref_end", "")
    preferences: dict[str, Any] = {"timezone": tz, "prefer": values.get("prefer") or "earliest"}
    if start or end:
        if not (start and end):
            raise ValueError("Preferred hours need both a start and an end time.")
        days = [d for d in values.get("days", []) if d in words.DAY_KEYS] or list(words.DAY_KEYS)
        preferences["windows"] = [{"days": days, "start": start[:5], "end": end[:5]}]
    body["preferences"] = preferences
    if values.get("note", "").strip():
        body["note"] = values["note"].strip()
    if values.get("email", "").strip():
        body["guestEmail"] = values["email"].strip()
    body["idempotencyKey"] = values.get("request_key") or secrets.token_urlsafe(16)
    return body


def _form_page(
    request: Request,
    user: Viewer,
    did: str,
    handle: str | None,
    chosen: Any,
    values: dict[str, Any],
    error: str | None,
    status: int = 200,
) -> Response:
    name = f"@{handle}" if handle else did
    return render(
        request,
        "request_form.html",
        status=status,
        viewer=user,
        host_name=name,
        actor=handle or did,
        chosen=chosen,
        summary=words.summarize(chosen.offer),
        policy=words.policy_words(chosen.offer.policy, name),
        values=values,
        error=error,
        # One key per form shown: sending it twice (a double click, a retry) is the same booking.
        request_key=values.get("request_key") or secrets.token_urlsafe(16),
        zones=words.zone_names(),
    )


# ---------------------------------------------------------------- a booking, as its guest sees it


def participant_booking(web: Any, viewer: Viewer, booking_id: str) -> Booking:
    """The booking if the viewer is its host or guest; otherwise the same 404 as for no booking at all."""
    with Session(web.engine) as session:
        row = session.get(Booking, booking_id)
    if row is None or viewer.did not in (row.host_did, row.guest_did):
        raise PageError(
            404,
            "No such meeting",
            "There is no meeting at this address that you are part of.",
            "Check that you are signed in with the right account.",
        )
    return row


def _names(web: Any, *dids: str) -> dict[str, str]:
    with Session(web.engine) as session:
        users = session.exec(select(User).where(col(User.did).in_(dids))).all()
    known = {u.did: f"@{u.handle}" for u in users if u.handle}
    return {did: known.get(did, did) for did in dids}


@router.get("/bookings")
def my_bookings(request: Request, web: WebDep, user: UserDep) -> Response:
    """The meetings I asked for, newest first."""
    with Session(web.engine) as session:
        rows = session.exec(
            select(Booking)
            .where(Booking.guest_did == user.did)
            .order_by(col(Booking.created_at).desc())
            .limit(100)
        ).all()
    names = _names(web, *{r.host_did for r in rows}) if rows else {}
    return render(request, "my_bookings.html", viewer=user, rows=rows, names=names)


@router.get("/bookings/{booking_id}")
def booking_status(
    request: Request, web: WebDep, user: UserDep, booking_id: str, notice: str = ""
) -> Response:
    """Where a request stands, live: pending → held (with a countdown and Finalize) → confirmed."""
    row = participant_booking(web, user, booking_id)
    view = read_booking(web.engine, booking_id)
    assert view is not None
    offer_zone = _offer_zone(web, row)
    names = _names(web, row.host_did, row.guest_did)
    return render(
        request,
        "booking_status.html",
        viewer=user,
        b=view,
        row=row,
        role="guest" if user.did == row.guest_did else "host",
        host_name=names[row.host_did],
        guest_name=names[row.guest_did],
        offer_zone=offer_zone,
        guest_zone=viewer_zone(request, offer_zone),
        says=words.state_words(view.state),
        can_finalize=view.state == "held" and "guest" in view.awaiting and user.did == row.guest_did,
        can_cancel=view.state in ("held", "confirmed"),
        can_reschedule=view.state == "confirmed",
        live=view.state in ("pending", "held"),
        notice=NOTICES.get(notice),
    )


def _offer_zone(web: Any, row: Booking) -> str:
    with Session(web.engine) as session:
        offer = session.get(OfferIndex, row.offer_uri)
    return offer.timezone if offer is not None else "UTC"


async def _command(web: Any, state: Any, booking_id: str, update: str, command: Any) -> BookingView:
    try:
        return await send_command(state.temporal, state.engine, booking_id, update, command)
    except BookingCommandError as exc:
        raise PageError(
            exc.status if exc.status < 500 else 502,
            "That did not work",
            exc.message[:1].upper() + exc.message[1:] + ".",
            "Reload the meeting's page to see where it stands now.",
        ) from exc


@router.post("/bookings/{booking_id}/finalize")
async def finalize(
    request: Request, state: StateDep, web: WebDep, user: UserDep, form: CheckedForm, booking_id: str
) -> Response:
    """The guest takes the held time."""
    row = await run_in_threadpool(participant_booking, web, user, booking_id)
    if user.did != row.guest_did:
        raise PageError(403, "Only the guest confirms", "The guest confirms the held time, not the host.")
    await _command(web, state, booking_id, "finalize", CommandInput(user.did))
    return redirect(request, f"/bookings/{booking_id}?notice=finalized")


@router.post("/bookings/{booking_id}/cancel")
async def cancel(
    request: Request, state: StateDep, web: WebDep, user: UserDep, form: CheckedForm, booking_id: str
) -> Response:
    """Guest or host cancels a held or confirmed meeting."""
    await run_in_threadpool(participant_booking, web, user, booking_id)
    reason = str(form.get("reason", "")).strip()[:1000] or None
    await _command(web, state, booking_id, "cancel", CommandInput(user.did, reason))
    return redirect(request, f"/bookings/{booking_id}?notice=cancelled")


@router.post("/bookings/{booking_id}/reschedule")
async def reschedule(
    request: Request, state: StateDep, web: WebDep, user: UserDep, form: CheckedForm, booking_id: str
) -> Response:
    """Guest or host asks for another time; Huddle picks it (or says none is free)."""
    await run_in_threadpool(participant_booking, web, user, booking_id)
    reason = str(form.get("reason", "")).strip()[:300] or None
    await _command(web, state, booking_id, "reschedule", RescheduleInput(user.did, reason=reason))
    return redirect(request, f"/bookings/{booking_id}?notice=rescheduled")
