"""Tables of the network index beyond offers_index and graph_edges: which repos Huddle follows, and
which published records it refused."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow

# IndexedRepo.status
REPO_OK = "ok"
REPO_GONE = "gone"  # no such DID, no PDS, or the repo was deleted: nothing to index
REPO_ERROR = "error"  # the last fetch failed for a reason that may pass (PDS down): try again


def _ts() -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=True)


def _created() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class IndexedRepo(SQLModel, table=True):
    """A repo whose offers and follows Huddle keeps in sync: the newest commit applied from it.

    Commits at or below `rev` are stale (a replay, or already in a fetched snapshot) and are
    ignored; a commit whose `since` is not `rev` means commits were missed, so the repo is fetched
    again. `fetched_at` is the last full read of the repo (backfill, #sync, drift repair).
    """

    __tablename__ = "index_repos"

    did: str = Field(primary_key=True, max_length=2048)
    rev: str | None = Field(default=None, max_length=64)
    status: str = Field(default=REPO_OK, max_length=16)
    fetched_at: datetime | None = _ts()
    fetch_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class OfferRejection(SQLModel, table=True):
    """A published `com.huddle.slotOffer` version that failed validation (one row, one log line)."""

    __tablename__ = "offer_rejections"

    uri: str = Field(primary_key=True, max_length=2048)
    cid: str = Field(primary_key=True, max_length=256)
    did: str = Field(index=True, max_length=2048)
    reason: str = Field(max_length=64)  # the top-level field at fault, or `undecodable`
    path: str = Field(default="", max_length=512)
    message: str = Field(default="", max_length=1000)
    rev: str | None = Field(default=None, max_length=64)
    seen_at: datetime = _created()
