"""Idempotency keys for procedures: the same key and body get the same answer, another body a 409."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from models.db import session_scope
from models.tables import IdempotencyRecord
from models.types import utcnow

KEY_LIFETIME = timedelta(days=1)


@dataclass
class Claim:
    first: bool  # this call is the first with the key
    matches: bool  # the stored body equals this one
    response: dict[str, Any] | None  # the answer given before, if any


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def claim(engine: Engine, key: str, body_hash: str) -> Claim:
    """Record the key with this body's hash unless it exists; say how this call relates to it."""
    now = utcnow()
    insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(IdempotencyRecord)
        .values(key=key, request_hash=body_hash, status_code=0, created_at=now, expires_at=now + KEY_LIFETIME)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    with session_scope(engine) as session:
        inserted = session.execute(stmt).rowcount  # type: ignore[attr-defined]
        row = session.get(IdempotencyRecord, key)
        assert row is not None
        if not inserted and row.expires_at < now:
            # An expired key starts afresh.
            row.request_hash, row.response, row.status_code = body_hash, None, 0
            row.created_at, row.expires_at = now, now + KEY_LIFETIME
            session.add(row)
            return Claim(first=True, matches=True, response=None)
        return Claim(first=bool(inserted), matches=row.request_hash == body_hash, response=row.response)


def remember(engine: Engine, key: str, status: int, response: dict[str, Any]) -> None:
    with session_scope(engine) as session:
        session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == key)  # type: ignore[arg-type]
            .values(status_code=status, response=response)
        )


def forget(engine: Engine, key: str) -> None:
    """Drop a claim whose call failed before answering, so a retry may run it again."""
    with session_scope(engine) as session:
        row = session.get(IdempotencyRecord, key)
        if row is not None and row.response is None:
            session.delete(row)
