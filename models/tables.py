"""Huddle's tables. Everything private (tokens, bookings, emails) lives here, never on a PDS."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow

# States in which a booking occupies the host's time (the double-booking guard covers exactly these).
OCCUPYING_STATES = ("held", "confirmed")


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _created() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class User(SQLModel, table=True):
    __tablename__ = "users"

    did: str = Field(primary_key=True, max_length=2048)
    handle: str | None = Field(default=None, max_length=253, index=True)
    email: str | None = Field(default=None, max_length=254)
    timezone: str | None = Field(default=None, max_length=64)
    # Set from the firehose #account events: a deactivated or taken-down account's offers are hidden.
    active: bool = Field(default=True)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class OAuthSession(SQLModel, table=True):
    """An ATProto OAuth session (web login); tokens and DPoP key encrypted at rest."""

    __tablename__ = "oauth_sessions"

    id: str = Field(primary_key=True, max_length=64)
    did: str = Field(index=True, max_length=2048)
    issuer: str = Field(max_length=2048)
    pds_url: str = Field(max_length=2048)
    dpop_key_enc: str
    access_token_enc: str
    refresh_token_enc: str | None = None
    scope: str = Field(default="", max_length=1024)
    expires_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class CalendarConnector(SQLModel, table=True):
    """A host's (or guest's) connected calendar account; secret columns end in `_enc`."""

    __tablename__ = "calendar_connectors"

    id: int | None = Field(default=None, primary_key=True)
    owner_did: str = Field(index=True, max_length=2048)
    provider: str = Field(max_length=16)  # google | microsoft | caldav
    account: str = Field(default="", max_length=320)  # email or CalDAV username, shown to its owner
    state: str = Field(default="ok", max_length=16)  # ok | needs_reauth | error
    state_reason: str | None = Field(default=None, max_length=1000)
    server_url: str | None = Field(default=None, max_length=2048)
    access_token_enc: str | None = None
    refresh_token_enc: str | None = None
    token_cache_enc: str | None = None
    password_enc: str | None = None
    token_expires_at: datetime | None = _ts(nullable=True)
    busy_calendar_ids: list[str] = Field(default_factory=list, sa_type=JSON)
    event_calendar_id: str | None = Field(default=None, max_length=1024)
    last_sync_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class OfferIndex(SQLModel, table=True):
    """A `com.huddle.slotOffer` record as last seen on the network (tombstoned, not removed, on delete)."""

    __tablename__ = "offers_index"
    __table_args__ = (UniqueConstraint("did", "rkey", name="uq_offers_did_rkey"),)

    uri: str = Field(primary_key=True, max_length=2048)
    did: str = Field(index=True, max_length=2048)
    rkey: str = Field(max_length=512)
    cid: str = Field(max_length=256)
    rev: str | None = Field(default=None, max_length=64)
    record: dict[str, Any] = Field(sa_type=JSON)
    title: str = Field(max_length=1000)
    timezone: str = Field(max_length=64)
    policy: str = Field(default="anyone", max_length=64)
    requires_approval: bool = False
    record_created_at: datetime | None = _ts(nullable=True)
    indexed_at: datetime = _created()
    deleted: bool = Field(default=False, index=True)


class Booking(SQLModel, table=True):
    """The projection of one BookingWorkflow, written by its activities; what the API reads."""

    __tablename__ = "bookings"
    __table_args__ = (
        UniqueConstraint("guest_did", "idempotency_key", name="uq_bookings_guest_key"),
        Index("ix_bookings_host_block", "host_did", "block_start", "block_end"),
        Index("ix_bookings_state_hold", "state", "hold_expires_at"),
    )

    id: str = Field(primary_key=True, max_length=64)
    workflow_id: str = Field(unique=True, max_length=256)
    host_did: str = Field(index=True, max_length=2048)
    guest_did: str = Field(index=True, max_length=2048)
    offer_uri: str = Field(max_length=2048)
    duration_minutes: int
    state: str = Field(default="pending", max_length=16)
    start_at: datetime | None = _ts(nullable=True)
    end_at: datetime | None = _ts(nullable=True)
    # The time the booking takes from the host: the meeting plus its buffers.
    block_start: datetime | None = _ts(nullable=True)
    block_end: datetime | None = _ts(nullable=True)
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    hold_expires_at: datetime | None = _ts(nullable=True)
    awaiting: list[str] = Field(default_factory=list, sa_type=JSON)
    reason: str | None = Field(default=None, max_length=1000)
    explanation: str | None = Field(default=None, max_length=2000)
    idempotency_key: str = Field(max_length=128)
    guest_email: str | None = Field(default=None, max_length=254)
    note: str | None = None
    # Monotonic per booking: a late, retried projection write never overwrites a newer one.
    version: int = 0
    created_at: datetime = _created()
    updated_at: datetime = _created()


class IdempotencyRecord(SQLModel, table=True):
    """The answer given to a procedure call with an idempotency key, replayed for the same body."""

    __tablename__ = "idempotency_records"

    key: str = Field(primary_key=True, max_length=512)  # caller DID + method + client key
    request_hash: str = Field(max_length=64)
    status_code: int = 200
    response: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    created_at: datetime = _created()
    expires_at: datetime = _ts(index=True)


class FirehoseCursor(SQLModel, table=True):
    """Where the consumer of one relay/PDS stream is; also its liveness, which /readyz reads."""

    __tablename__ = "firehose_cursor"

    source: str = Field(primary_key=True, max_length=2048)
    cursor: int = Field(sa_column=Column(BigInteger, nullable=False))
    connected: bool = False
    heartbeat_at: datetime | None = _ts(nullable=True)
    updated_at: datetime = _created()


class GraphEdge(SQLModel, table=True):
    """An `app.bsky.graph.follow` record; kept by uri because follows are deleted by rkey."""

    __tablename__ = "graph_edges"
    __table_args__ = (Index("ix_graph_author_subject", "author_did", "subject_did"),)

    uri: str = Field(primary_key=True, max_length=2048)
    author_did: str = Field(max_length=2048)
    subject_did: str = Field(index=True, max_length=2048)
    created_at: datetime = _created()


class OutboxMessage(SQLModel, table=True):
    """A notification to send; the dedupe key makes enqueueing and sending idempotent."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True, max_length=512)
    booking_id: str | None = Field(default=None, index=True, max_length=64)
    kind: str = Field(max_length=32)
    recipient: str = Field(max_length=2048)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    state: str = Field(default="pending", index=True, max_length=16)  # pending|sending|sent|failed|skipped
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    last_error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = _created()
    sent_at: datetime | None = _ts(nullable=True)


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (UniqueConstraint("dedupe_key", name="uq_audit_dedupe"),)

    id: int | None = Field(default=None, primary_key=True)
    booking_id: str | None = Field(default=None, index=True, max_length=64)
    actor_did: str | None = Field(default=None, max_length=2048)
    action: str = Field(max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # Retried activities write the same key, so one transition is logged once.
    dedupe_key: str | None = Field(default=None, max_length=512)
    created_at: datetime = _created()
