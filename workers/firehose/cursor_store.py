"""The consumer's place in a stream and its liveness, one `firehose_cursor` row per source.

The cursor is written inside the same transaction as the index writes up to it (see
`index_store.apply_events(also=...)`), so after a crash the consumer resumes at a point whose
effects are all committed; the writes are idempotent, so replaying a little more is harmless.
`/readyz` reads `connected` and `heartbeat_at`.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session

from models.db import session_scope
from models.tables import FirehoseCursor
from models.types import utcnow

NO_CURSOR = -1  # the row exists (liveness) but no event has been committed yet


def load(engine: Engine, source: str) -> int | None:
    """The stored cursor of `source`, or None when there is none."""
    with Session(engine) as session:
        row = session.get(FirehoseCursor, source)
    if row is None or row.cursor < 0:
        return None
    return row.cursor


def save(session: Session, source: str, seq: int | None, *, connected: bool = True) -> None:
    """Store `seq` (None: forget the cursor) and refresh the heartbeat, in the caller's transaction."""
    now = utcnow()
    row = session.get(FirehoseCursor, source)
    if row is None:
        row = FirehoseCursor(source=source, cursor=NO_CURSOR)
        session.add(row)
    row.cursor = NO_CURSOR if seq is None else seq
    row.connected = connected
    row.heartbeat_at = now
    row.updated_at = now


def heartbeat(engine: Engine, source: str, *, connected: bool) -> None:
    """Say the consumer is alive (and whether it is connected) without moving the cursor."""
    with session_scope(engine) as session:
        now = utcnow()
        row = session.get(FirehoseCursor, source)
        if row is None:
            row = FirehoseCursor(source=source, cursor=NO_CURSOR)
            session.add(row)
        row.connected = connected
        row.heartbeat_at = now
        row.updated_at = now
