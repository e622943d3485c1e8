"""Tables behind calendar connectors: the busy cache, events written for bookings, webhook channels.

The connectors themselves are `calendar_connectors` (models/tables.py). Secrets are never stored in
the clear: tokens and passwords are encrypted with the key ring (clients/secrets.py); webhook channel
tokens and OAuth states, which are only ever compared, are stored as digests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _created() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class CalendarBusyCache(SQLModel, table=True):
    """The merged busy intervals of one connector's busy calendars over a range, while fresh.

    A webhook bumps `generation`; a fetch writes its result only if the generation it started from
    is still current, so a read that raced a change never lands in the cache.
    """

    __tablename__ = "calendar_busy_cache"

    connector_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    generation: int = 0
    range_start: datetime | None = _ts()
    range_end: datetime | None = _ts()
    busy: list[list[str]] | None = Field(default=None, sa_type=JSON)
    fetched_at: datetime | None = _ts()


class CalendarEvent(SQLModel, table=True):
    """One booking's event in one connector's event calendar; the key makes writes idempotent."""

    __tablename__ = "calendar_events"
    __table_args__ = (UniqueConstraint("booking_id", "connector_id", name="uq_calendar_events_booking"),)

    id: int | None = Field(default=None, primary_key=True)
    booking_id: str = Field(index=True, max_length=64)
    connector_id: int = Field(index=True)
    provider: str = Field(max_length=16)
    calendar_id: str = Field(max_length=1024)
    # Google: the client-chosen event id; Graph: the transactionId; CalDAV: the UID.
    event_key: str = Field(max_length=255)
    provider_event_id: str | None = Field(default=None, max_length=1024)
    state: str = Field(default="pending", index=True, max_length=16)  # pending | created | removed | failed
    reason: str | None = Field(default=None, max_length=1000)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class CalendarChannel(SQLModel, table=True):
    """A push channel: a Google events.watch channel or a Microsoft Graph subscription."""

    __tablename__ = "calendar_channels"

    id: str = Field(primary_key=True, max_length=64)  # our id (Google's channel id)
    connector_id: int = Field(index=True)
    provider: str = Field(max_length=16)
    calendar_id: str = Field(max_length=1024)
    # Google: the watched resource's id (for channels.stop); Graph: the subscription id.
    external_id: str | None = Field(default=None, index=True, max_length=255)
    token_digest: str = Field(max_length=64)  # channel token / clientState, hashed
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    state: str = Field(default="active", max_length=16)  # active | stopped
    created_at: datetime = _created()


class CalendarSyncState(SQLModel, table=True):
    """Where incremental sync of one calendar stands (Google's nextSyncToken)."""

    __tablename__ = "calendar_sync_state"

    connector_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    calendar_id: str = Field(primary_key=True, max_length=1024)
    sync_token: str | None = Field(default=None, sa_type=Text)
    synced_at: datetime | None = _ts()


class CalendarConnectorDetail(SQLModel, table=True):
    """What a connect flow learned: granted scopes, the kind of account, the calendars it can see."""

    __tablename__ = "calendar_connector_details"

    connector_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    scopes: str = Field(default="", max_length=2000)
    account_kind: str = Field(default="", max_length=16)  # Microsoft: work | personal
    calendars: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    calendars_at: datetime | None = _ts()


class CalendarOAuthState(SQLModel, table=True):
    """A connect flow between its start and the provider's redirect back (single use, short-lived)."""

    __tablename__ = "calendar_oauth_states"

    state_digest: str = Field(primary_key=True, max_length=64)
    owner_did: str = Field(max_length=2048)
    provider: str = Field(max_length=16)
    connector_id: int | None = None  # set when reconnecting (or adding scopes to) an existing connector
    flow_enc: str = Field(sa_type=Text)  # PKCE verifier / MSAL flow, encrypted
    return_to: str | None = Field(default=None, max_length=2048)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    created_at: datetime = _created()
