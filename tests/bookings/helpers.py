"""Seeding offers and building booking requests for the booking workflow tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.client import Client

from api.booking_commands import request_booking
from kernel.booking.ids import booking_id
from kernel.booking.messages import BookingRequest
from kernel.lexicon.views import BookingView
from models.db import serialized_write
from models.settings import Settings
from models.tables import AuditEntry, Booking, GraphEdge, OfferIndex, OutboxMessage, User
from models.types import utcnow

HOST = "did:plc:hosthosthosthosthosthost"
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def offer_record(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "$type": "com.huddle.slotOffer",
        "title": "Office hours",
        "timezone": "UTC",
        "windows": [{"days": ALL_DAYS, "start": "00:00", "end": "24:00"}],
        "durations": [30],
        "slotStepMinutes": 30,
        "minNoticeMinutes": 0,
        "horizonDays": 14,
        "holdMinutes": 15,
        "createdAt": "2026-11-01T00:00:00.000Z",
    }
    record.update(overrides)
    return record


def five_slot_record(**overrides: Any) -> dict[str, Any]:
    """Exactly five 30-minute slots: tomorrow 10:00–12:30 UTC (valid at any time of day)."""
    day = (utcnow() + timedelta(days=1)).date()
    start = datetime(day.year, day.month, day.day, 10, 0, tzinfo=UTC)
    return offer_record(
        validFrom=start.isoformat().replace("+00:00", "Z"),
        validUntil=(start + timedelta(minutes=150)).isoformat().replace("+00:00", "Z"),
        **overrides,
    )


def seed_offer(
    engine: Engine, record: dict[str, Any], *, host: str = HOST, host_email: str | None = "host@example.test"
) -> str:
    rkey = "3k" + uuid.uuid4().hex[:11]
    uri = f"at://{host}/com.huddle.slotOffer/{rkey}"
    with serialized_write(engine) as session:  # read-then-write: BEGIN IMMEDIATE on SQLite
        if session.get(User, host) is None:
            session.add(User(did=host, handle="host.test", email=host_email))
        session.add(
            OfferIndex(
                uri=uri,
                did=host,
                rkey=rkey,
                cid="bafyreitest",
                record=record,
                title=record["title"],
                timezone=record["timezone"],
                policy=record.get("policy", "anyone"),
                requires_approval=record.get("requiresApproval", False),
            )
        )
    return uri


def follow(engine: Engine, author: str, subject: str) -> None:
    with serialized_write(engine) as session:  # read-then-write: BEGIN IMMEDIATE on SQLite
        session.add(
            GraphEdge(
                uri=f"at://{author}/app.bsky.graph.follow/{uuid.uuid4().hex[:13]}",
                author_did=author,
                subject_did=subject,
            )
        )


def make_request(
    settings: Settings,
    offer_uri: str,
    *,
    guest: str | None = None,
    key: str | None = None,
    host: str = HOST,
    duration: int = 30,
    hold_seconds: int | None = 60,
    email: str | None = "guest@example.test",
    **extra: Any,
) -> BookingRequest:
    guest = guest or f"did:plc:guest{uuid.uuid4().hex[:16]}"
    key = key or uuid.uuid4().hex
    return BookingRequest(
        booking_id=booking_id(guest, key),
        guest_did=guest,
        host_did=host,
        offer_uri=offer_uri,
        duration_minutes=duration,
        requested_at=utcnow(),
        idempotency_key=key,
        guest_email=email,
        queue_prefix=settings.task_queue_prefix,
        hold_seconds=hold_seconds,
        **extra,
    )


async def book(client: Client, settings: Settings, engine: Engine, request: BookingRequest) -> BookingView:
    return await request_booking(client, settings, engine, request)


def projection(engine: Engine, booking: str) -> Booking:
    with Session(engine) as session:
        row = session.get(Booking, booking)
        assert row is not None
        return row


def outbox(engine: Engine, booking: str) -> list[tuple[str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage).where(OutboxMessage.booking_id == booking)).all()
        return sorted((r.kind, r.payload["role"]) for r in rows)


def audit_actions(engine: Engine, booking: str) -> list[str]:
    with Session(engine) as session:
        rows = session.exec(
            select(AuditEntry).where(AuditEntry.booking_id == booking).order_by(AuditEntry.id)  # type: ignore[arg-type]
        ).all()
        # The booking's own transitions; mail and calendar steps audit themselves under other names.
        return [r.action for r in rows if not r.action.startswith(("notification", "mail", "calendar"))]


async def final_view(client: Client, booking: str) -> BookingView:
    """Wait for the booking's workflow to finish and return its last view."""
    from kernel.booking.ids import workflow_id

    view: BookingView = await client.get_workflow_handle(
        workflow_id(booking), result_type=BookingView
    ).result()
    return view


async def eventually_outbox(
    engine: Engine, booking: str, expected: list[tuple[str, str]], wait_seconds: float = 15
) -> None:
    """Side effects run beside the booking: wait (bounded) until its outbox holds `expected`."""
    import asyncio

    deadline = asyncio.get_running_loop().time() + wait_seconds
    while (found := outbox(engine, booking)) != sorted(expected):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"outbox of {booking}: {found}, expected {sorted(expected)}")
        await asyncio.sleep(0.1)
