"""Reads and writes of the bookings projection, including the one place a hold is placed.

`place_hold` is where a booking takes the host's time: on Postgres the exclusion constraint decides
(an overlapping UPDATE fails); on SQLite the check and the update run in one BEGIN IMMEDIATE
transaction, so no other writer can slip in between.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from kernel.booking.messages import BookingRequest, Transition
from kernel.booking.states import OCCUPYING
from kernel.lexicon.views import BookingView
from models.db import serialized_write, session_scope
from models.tables import AuditEntry, Booking, OutboxMessage
from models.types import utcnow
from workers import telemetry


def open_booking(engine: Engine, request: BookingRequest) -> None:
    """Create the pending row for a request (a retried call finds it there and does nothing)."""
    now = utcnow()
    values = {
        "id": request.booking_id,
        "workflow_id": f"booking-{request.booking_id}",
        "host_did": request.host_did,
        "guest_did": request.guest_did,
        "offer_uri": request.offer_uri,
        "duration_minutes": request.duration_minutes,
        "state": "pending",
        "idempotency_key": request.idempotency_key,
        "guest_email": request.guest_email,
        "note": request.note,
        "awaiting": [],
        "buffer_before_minutes": 0,
        "buffer_after_minutes": 0,
        "version": 0,
        "created_at": now,
        "updated_at": now,
    }
    with session_scope(engine) as session:
        session.execute(_insert_ignore(engine, Booking, values, ["id"]))


def _insert_ignore(engine: Engine, table: Any, values: dict[str, Any], conflict: list[str]) -> Any:
    insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    return insert(table).values(**values).on_conflict_do_nothing(index_elements=conflict)


def host_bookings(
    session: Session, host_did: str, start: datetime, end: datetime, *, exclude_id: str | None = None
) -> list[Booking]:
    """The host's held and confirmed bookings whose blocks reach into [start, end)."""
    query = select(Booking).where(
        Booking.host_did == host_did,
        col(Booking.state).in_(OCCUPYING),
        col(Booking.block_start) < end,
        col(Booking.block_end) > start,
    )
    if exclude_id is not None:
        query = query.where(Booking.id != exclude_id)
    return list(session.exec(query.order_by(col(Booking.block_start))))


@dataclass(frozen=True)
class Placement:
    """Where a hold goes: the meeting and the block it takes from the host (buffers included)."""

    start: datetime
    end: datetime
    block_start: datetime
    block_end: datetime
    explanation: str


class LostRace(Exception):
    """Another booking took the block first (only possible when a writer bypassed the host lock)."""

    def __init__(self, placement: Placement) -> None:
        super().__init__(f"block {placement.block_start}–{placement.block_end} was taken")
        self.placement = placement


@telemetry.counts_holds(LostRace)
def place_hold(
    engine: Engine,
    *,
    booking_id: str,
    host_did: str,
    search_start: datetime,
    search_end: datetime,
    choose: Callable[[list[Booking]], Placement | None],
    version: int,
    buffers: tuple[int, int],
    hold_expires_at: Callable[[], datetime],
) -> Placement | None:
    """Choose a slot against the host's current bookings and hold it, in one transaction.

    Hold placement is serialized per host (SQLite: BEGIN IMMEDIATE; Postgres: a transaction-scoped
    advisory lock on the host), so concurrent guests see each other's holds instead of all chasing
    the same slot. The guard against double booking stays in the database: the exclusion constraint
    on Postgres, and on SQLite an overlap check inside the same serialized transaction.
    Returns None when `choose` finds no slot; raises LostRace if the database refused the block.
    """
    return _take_block(
        engine,
        booking_id=booking_id,
        host_did=host_did,
        from_state="pending",
        search=(search_start, search_end),
        choose=choose,
        values=lambda _row: {
            "state": "held",
            "buffer_before_minutes": buffers[0],
            "buffer_after_minutes": buffers[1],
            "hold_expires_at": hold_expires_at(),
            "awaiting": ["guest"],
        },
        version=version,
        audit=("held", {"state": "held", "version": version}),
    )


@telemetry.counts_holds(LostRace, action=None)  # the caller counts the move itself
def move_booking(
    engine: Engine,
    *,
    booking_id: str,
    host_did: str,
    state: str,
    search_start: datetime,
    search_end: datetime,
    choose: Callable[[list[Booking]], Placement | None],
    version: int,
    action: str,
    hold_expires_at: Callable[[datetime | None], datetime] | None = None,
    awaiting: list[str] | None = None,
    note: dict[str, Any] | None = None,
) -> Placement | None:
    """Move a held or confirmed booking to a new slot, under the same per-host serialization and
    guard as `place_hold`; the old block is released in the same transaction. For a hold,
    `hold_expires_at` gets the current expiry and returns the new one; `note` (who asked, why)
    goes into the audit entry."""
    moved: dict[str, Any] = {}

    def values(row: Booking) -> dict[str, Any]:
        moved["from"] = _iso(row.start_at)
        changes: dict[str, Any] = {}
        if hold_expires_at is not None:
            changes["hold_expires_at"] = hold_expires_at(row.hold_expires_at)
        if awaiting is not None:
            changes["awaiting"] = awaiting
        return changes

    def audit_detail() -> dict[str, Any]:
        return {"state": state, "version": version, "from": moved.get("from"), **(note or {})}

    return _take_block(
        engine,
        booking_id=booking_id,
        host_did=host_did,
        from_state=state,
        search=(search_start, search_end),
        choose=choose,
        values=values,
        version=version,
        audit=(action, audit_detail),
    )


def _take_block(
    engine: Engine,
    *,
    booking_id: str,
    host_did: str,
    from_state: str,
    search: tuple[datetime, datetime],
    choose: Callable[[list[Booking]], Placement | None],
    values: Callable[[Booking], dict[str, Any]],
    version: int,
    audit: tuple[str, dict[str, Any] | Callable[[], dict[str, Any]]],
) -> Placement | None:
    placement: Placement | None = None
    try:
        with serialized_write(engine) as session:
            if engine.dialect.name == "postgresql":
                session.execute(
                    text("SELECT pg_advisory_xact_lock(hashtextextended(:host, 0))"), {"host": host_did}
                )
            booking = session.get(Booking, booking_id)
            if booking is None or booking.state != from_state:
                raise LookupError(f"booking {booking_id} is not {from_state}")
            # The booking's own block is left out: a moved hold may land on (part of) its old time.
            placement = choose(host_bookings(session, host_did, *search, exclude_id=booking_id))
            if placement is None:
                return None
            if _overlaps(session, host_did, booking_id, placement.block_start, placement.block_end):
                raise LostRace(placement)
            session.execute(
                update(Booking)
                .where(col(Booking.id) == booking_id, col(Booking.state) == from_state)
                .values(
                    start_at=placement.start,
                    end_at=placement.end,
                    block_start=placement.block_start,
                    block_end=placement.block_end,
                    explanation=placement.explanation,
                    version=version,
                    updated_at=utcnow(),
                    **values(booking),
                )
            )
            action, detail = audit
            # The audit entry commits with the block, so a crash can never leave one without the other.
            session.execute(
                _audit_insert(
                    engine,
                    booking_id,
                    action,
                    detail() if callable(detail) else detail,
                    f"{booking_id}:{version}",
                )
            )
    except IntegrityError as exc:
        if placement is not None and "bookings_no_overlap" in str(exc.orig):
            raise LostRace(placement) from exc
        raise
    return placement


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _overlaps(session: Session, host_did: str, booking_id: str, start: datetime, end: datetime) -> bool:
    return bool(host_bookings(session, host_did, start, end, exclude_id=booking_id))


def held_placement(session: Session, booking_id: str) -> Booking | None:
    """The booking if its hold is already placed (a retried match activity returns it as is)."""
    booking = session.get(Booking, booking_id)
    if booking is not None and booking.state in OCCUPYING:
        return booking
    return None


def apply_transition(engine: Engine, t: Transition) -> None:
    """Write one state change and its audit entry; an older or repeated write changes nothing."""
    now = t.at or utcnow()
    with session_scope(engine) as session:
        session.execute(
            update(Booking)
            .where(col(Booking.id) == t.booking_id, col(Booking.version) < t.version)
            .values(
                state=t.state,
                awaiting=list(t.awaiting),
                reason=t.reason,
                hold_expires_at=t.hold_expires_at,
                version=t.version,
                updated_at=now,
            )
        )
        session.execute(
            _insert_ignore(
                engine,
                AuditEntry,
                {
                    "booking_id": t.booking_id,
                    "actor_did": t.actor_did,
                    "action": t.action,
                    "detail": {"state": t.state, "version": t.version, "reason": t.reason},
                    "dedupe_key": f"{t.booking_id}:{t.version}",
                    "created_at": now,
                },
                ["dedupe_key"],
            )
        )
    telemetry.booking_transition(t.state, t.action)


def enqueue(engine: Engine, messages: Iterable[dict[str, Any]]) -> int:
    """Add outbox rows; a row whose dedupe key exists already is skipped. Returns rows added."""
    added = 0
    with session_scope(engine) as session:
        for message in messages:
            # RETURNING, not rowcount: psycopg reports -1 for INSERT … ON CONFLICT DO NOTHING.
            stmt = _insert_ignore(engine, OutboxMessage, message, ["dedupe_key"]).returning(OutboxMessage.id)
            added += len(session.execute(stmt).all())
    return added


def _audit_insert(
    engine: Engine, booking_id: str | None, action: str, detail: dict[str, Any], key: str
) -> Any:
    values = {
        "booking_id": booking_id,
        "action": action,
        "detail": detail,
        "dedupe_key": key,
        "created_at": utcnow(),
    }
    return _insert_ignore(engine, AuditEntry, values, ["dedupe_key"])


def audit(engine: Engine, *, booking_id: str | None, action: str, detail: dict[str, Any], key: str) -> None:
    with session_scope(engine) as session:
        session.execute(_audit_insert(engine, booking_id, action, detail, key))


def to_view(booking: Booking) -> BookingView:
    return BookingView(
        id=booking.id,
        state=booking.state,
        host=booking.host_did,
        guest=booking.guest_did,
        offer=booking.offer_uri,
        duration_minutes=booking.duration_minutes,
        created_at=booking.created_at,
        updated_at=booking.updated_at,
        start=booking.start_at,
        end=booking.end_at,
        hold_expires_at=booking.hold_expires_at if booking.state == "held" else None,
        awaiting=tuple(booking.awaiting or ()),
        reason=booking.reason,
        explanation=booking.explanation,
    )
