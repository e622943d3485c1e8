"""Seen service-auth `jti`s, in the database so every API replica refuses the same replay."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import anyio.to_thread
from sqlalchemy import Engine, delete
from sqlalchemy.dialects import postgresql, sqlite

from models.auth_tables import ServiceAuthJti, ephemeral_write

_table = ServiceAuthJti.__table__  # type: ignore[attr-defined]


class StoredReplayGuard:
    """One upsert per token: insert (iss, jti), or take over a row whose token has expired.

    The upsert is a single statement, so two replicas racing on one token cannot both win:
    Postgres decides on the primary key, SQLite serializes the write (see `ephemeral_write`).
    Expired rows are swept at most every `sweep_interval` seconds per process.
    """

    def __init__(
        self, engine: Engine, *, sweep_interval: float = 60.0, clock: Callable[[], float] = time.time
    ) -> None:
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(f"unsupported database for the replay guard: {engine.dialect.name}")
        self._engine = engine
        self._sweep_interval = sweep_interval
        self._clock = clock
        self._last_sweep = clock()

    async def claim(self, iss: str, jti: str, expires_at: float) -> bool:
        """True the first time (iss, jti) is seen before `expires_at`; False for a replay."""
        return await anyio.to_thread.run_sync(self.claim_sync, iss, jti, expires_at)

    def claim_sync(self, iss: str, jti: str, expires_at: float) -> bool:
        now = self._clock()
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(_table).values(iss=iss, jti=jti, expires_at=_aware(expires_at))
        upsert = insert.on_conflict_do_update(
            index_elements=[_table.c.iss, _table.c.jti],
            set_={"expires_at": insert.excluded.expires_at},
            where=_table.c.expires_at < _aware(now),
        )
        with ephemeral_write(self._engine) as conn:
            # RETURNING rather than rowcount: a row comes back only if inserted or taken over.
            claimed = conn.execute(upsert.returning(_table.c.jti)).first() is not None
        if now - self._last_sweep >= self._sweep_interval:
            self._last_sweep = now
            self.sweep(now)
        return claimed

    def sweep(self, now: float | None = None) -> int:
        """Delete the rows of expired tokens; returns how many."""
        cutoff = _aware(self._clock() if now is None else now)
        with ephemeral_write(self._engine) as conn:
            return conn.execute(delete(_table).where(_table.c.expires_at < cutoff)).rowcount


def _aware(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)
