"""Booking methods: match, finalize, respond, cancel, reschedule (workflow updates) and reads
from the projection."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session, col, select

from api.auth import Caller, CallerIdentity, Identity, XrpcError
from api.booking_commands import BookingCommandError, request_booking, send_command
from api.deps import SessionDep, StateDep
from api.ratelimit import RateLimited
from api.state import AppState
from api.xrpc.inputs import (
    decode_cursor,
    encode_cursor,
    parse_cursor_time,
    procedure_input,
    query_params,
)
from clients.identity import IdentityResolver
from clients.identity.errors import IdentityError
from kernel.booking.ids import booking_id
from kernel.booking.messages import BookingRequest, CommandInput, RescheduleInput, RespondInput
from kernel.lexicon import LexiconValidationError, MatchInput, SlotOffer, parse_datetime
from models import idempotency_store as idem
from models.booking_store import to_view
from models.tables import Booking, OfferIndex
from models.types import utcnow
from workers.telemetry import times_match

router = APIRouter(tags=["xrpc"])


def _json_body(nsid: str) -> dict[str, Any]:
    """OpenAPI for a procedure body read after auth (so docs and fuzzers know it takes JSON)."""
    schema = {"type": "object", "description": f"The `{nsid}` input, as lexicons/com/huddle describe it."}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _participant_view(session: Session, caller: CallerIdentity, booking: str) -> Booking:
    """The booking if the caller is its host or guest; otherwise 404, with no hint that it exists."""
    row = session.get(Booking, booking)
    if row is None or caller.did not in (row.host_did, row.guest_did):
        raise XrpcError(404, "BookingNotFound", "no booking with that id")
    return row


def _command_error(exc: BookingCommandError) -> XrpcError:
    return XrpcError(exc.status, exc.error, exc.message)


def _idempotency_key(request: Request, body: dict[str, Any]) -> str | None:
    return body.get("idempotencyKey") or request.headers.get("Idempotency-Key")


@router.post(
    "/xrpc/com.huddle.match", dependencies=[RateLimited], openapi_extra=_json_body("com.huddle.match")
)
async def match(
    request: Request,
    state: StateDep,
    identity: Identity,
    caller: Caller,
    body: dict[str, Any] = Depends(procedure_input("com.huddle.match")),
) -> dict[str, Any]:
    """Ask for a meeting: Huddle picks the slot and answers once it is held (or why not)."""
    return await run_match(state, identity, caller, body, request.headers.get("Idempotency-Key"))


@times_match
async def run_match(
    state: AppState,
    identity: IdentityResolver,
    caller: CallerIdentity,
    body: dict[str, Any],
    header_key: str | None = None,
) -> dict[str, Any]:
    """`com.huddle.match` for a caller and a lexicon body; the web request form runs it too."""
    try:
        ask = MatchInput.from_input(body)
    except LexiconValidationError as exc:
        raise XrpcError(
            400, "InvalidTimeRange" if exc.path == "latest" else "InvalidRequest", str(exc)
        ) from exc
    if header_key is not None and len(header_key) > 128:
        raise XrpcError(400, "InvalidRequest", "Idempotency-Key: longer than 128 characters")
    key = ask.idempotency_key or header_key
    try:
        host = await identity.resolve_actor(ask.host)
    except IdentityError as exc:
        raise XrpcError(400, "HostNotFound", f"host: {exc}") from exc
    if host == caller.did:
        raise XrpcError(400, "InvalidRequest", "host: you cannot book your own office hours")
    offer_uri = await run_in_threadpool(_choose_offer, state.engine, host, ask)

    claim_key = None
    if key is not None:
        claim_key = f"{caller.did}|com.huddle.match|{key}"
        # The key may come in the body or a header: the request is the body without it.
        request_body = {k: v for k, v in body.items() if k != "idempotencyKey"}
        claim = await run_in_threadpool(idem.claim, state.engine, claim_key, idem.request_hash(request_body))
        if not claim.matches:
            raise XrpcError(
                409, "IdempotencyConflict", "idempotencyKey: already used with a different request"
            )
    booking = BookingRequest(
        booking_id=booking_id(caller.did, key or uuid.uuid4().hex),
        guest_did=caller.did,
        host_did=host,
        offer_uri=offer_uri,
        duration_minutes=ask.duration_minutes,
        requested_at=utcnow(),
        idempotency_key=key or "",
        earliest=ask.earliest,
        latest=ask.latest,
        preferences=ask.preferences.to_json() if ask.preferences else None,
        note=ask.note,
        guest_email=ask.guest_email,
        queue_prefix=state.settings.task_queue_prefix,
        hold_seconds=state.settings.hold_seconds_override,
        max_match_attempts=state.settings.match_max_attempts,
    )
    if not booking.idempotency_key:
        booking.idempotency_key = booking.booking_id  # unique per call: a new booking each time
    view = await request_booking(state.temporal, state.settings, state.engine, booking)
    out = view.to_json()
    if claim_key is not None:
        await run_in_threadpool(idem.remember, state.engine, claim_key, 200, out)
    return out


def _choose_offer(engine: Any, host: str, ask: MatchInput) -> str:
    with Session(engine) as session:
        query = select(OfferIndex).where(OfferIndex.did == host, col(OfferIndex.deleted).is_(False))
        if ask.offer is not None:
            row = session.get(OfferIndex, ask.offer)
            if row is None or row.deleted or row.did != host:
                raise XrpcError(400, "OfferNotFound", f"offer: {ask.offer} is not an offer of {host}")
            candidates = [row]
        else:
            candidates = list(session.exec(query))
            if not candidates:
                raise XrpcError(400, "OfferNotFound", f"host: {host} has no offers")
    offers = []
    for row in candidates:
        try:
            offers.append((row.uri, SlotOffer.from_record(row.record)))
        except LexiconValidationError:
            continue
    fitting = [uri for uri, offer in offers if ask.duration_minutes in offer.durations]
    if not fitting:
        durations = sorted({d for _, offer in offers for d in offer.durations})
        raise XrpcError(
            400,
            "DurationNotOffered",
            f"durationMinutes: {ask.duration_minutes} is not offered (offered: {durations})",
        )
    if len(fitting) > 1:
        raise XrpcError(
            400, "InvalidRequest", "offer: the host has several offers with that duration; name one"
        )
    return fitting[0]


async def _command(
    state: Any, session: Session, caller: CallerIdentity, booking: str, update: str, command: Any
) -> dict[str, Any]:
    await run_in_threadpool(_participant_view, session, caller, booking)
    try:
        view = await send_command(state.temporal, state.engine, booking, update, command)
    except BookingCommandError as exc:
        raise _command_error(exc) from exc
    return view.to_json()


@router.post(
    "/xrpc/com.huddle.finalize", dependencies=[RateLimited], openapi_extra=_json_body("com.huddle.finalize")
)
async def finalize(
    state: StateDep,
    session: SessionDep,
    caller: Caller,
    body: dict[str, Any] = Depends(procedure_input("com.huddle.finalize")),
) -> dict[str, Any]:
    """The guest takes the held slot (the host may still have to approve)."""
    return await _command(state, session, caller, body["booking"], "finalize", CommandInput(caller.did))


@router.post(
    "/xrpc/com.huddle.respond", dependencies=[RateLimited], openapi_extra=_json_body("com.huddle.respond")
)
async def respond(
    state: StateDep,
    session: SessionDep,
    caller: Caller,
    body: dict[str, Any] = Depends(procedure_input("com.huddle.respond")),
) -> dict[str, Any]:
    """The host approves or declines a held booking of an offer that requires approval."""
    command = RespondInput(caller.did, body["decision"], body.get("reason"))
    return await _command(state, session, caller, body["booking"], "respond", command)


@router.post(
    "/xrpc/com.huddle.cancel", dependencies=[RateLimited], openapi_extra=_json_body("com.huddle.cancel")
)
async def cancel(
    state: StateDep,
    session: SessionDep,
    caller: Caller,
    body: dict[str, Any] = Depends(procedure_input("com.huddle.cancel")),
) -> dict[str, Any]:
    """Host or guest cancels a held or confirmed booking."""
    command = CommandInput(caller.did, body.get("reason"))
    return await _command(state, session, caller, body["booking"], "cancel", command)


@router.post(
    "/xrpc/com.huddle.reschedule",
    dependencies=[RateLimited],
    openapi_extra=_json_body("com.huddle.reschedule"),
)
async def reschedule(
    state: StateDep,
    session: SessionDep,
    caller: Caller,
    body: dict[str, Any] = Depends(procedure_input("com.huddle.reschedule")),
) -> dict[str, Any]:
    """Host or guest moves a confirmed booking; Huddle picks the new time."""
    earliest = parse_datetime(body["earliest"]) if "earliest" in body else None
    latest = parse_datetime(body["latest"]) if "latest" in body else None
    if earliest is not None and latest is not None and latest <= earliest:
        raise XrpcError(400, "InvalidTimeRange", "latest: must be after earliest")
    command = RescheduleInput(
        caller.did, earliest, latest, preferences=body.get("preferences"), reason=body.get("reason")
    )
    return await _command(state, session, caller, body["booking"], "reschedule", command)


# Reads are plain functions: FastAPI runs them on its thread pool, so DB I/O never blocks the event loop.
@router.get("/xrpc/com.huddle.getBooking")
def get_booking(
    session: SessionDep,
    caller: Caller,
    params: dict[str, Any] = Depends(query_params("com.huddle.getBooking")),
) -> dict[str, Any]:
    """One booking, for its host or guest."""
    return to_view(_participant_view(session, caller, params["booking"])).to_json()


@router.get("/xrpc/com.huddle.listBookings")
def list_bookings(
    session: SessionDep,
    caller: Caller,
    params: dict[str, Any] = Depends(query_params("com.huddle.listBookings")),
) -> dict[str, Any]:
    """The caller's bookings as host or guest (default guest), newest first."""
    role = params.get("role", "guest")
    column = Booking.host_did if role == "host" else Booking.guest_did
    query = select(Booking).where(column == caller.did)
    if "state" in params:
        query = query.where(Booking.state == params["state"])
    after = decode_cursor(params.get("cursor"), 2)
    if after is not None:
        created, last_id = parse_cursor_time(after[0]), after[1]
        query = query.where(
            (col(Booking.created_at) < created)
            | ((col(Booking.created_at) == created) & (col(Booking.id) < last_id))
        )
    limit = params["limit"]
    rows = session.exec(
        query.order_by(col(Booking.created_at).desc(), col(Booking.id).desc()).limit(limit + 1)
    ).all()
    out: dict[str, Any] = {"bookings": [to_view(r).to_json() for r in rows[:limit]]}
    if len(rows) > limit:
        last = rows[limit - 1]
        out["cursor"] = encode_cursor(last.created_at.isoformat(), last.id)
    return out
