"""Busy intervals per connector, kept for a TTL in the database so every worker shares them.

Webhooks invalidate by bumping the connector's generation. A fetch remembers the generation it
started from and stores its answer only if that is still current: a read that raced a change is
used once but never cached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Table, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from kernel.calendar.intervals import Interval
from models.calendar_tables import CalendarBusyCache
from models.db import session_scope
from models.types import utcnow

TABLE: Table = CalendarBusyCache.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class CachedBusy:
    generation: int
    intervals: list[Interval] | None  # None: nothing fresh covering the range


class BusyCache:
    def __init__(self, engine: Engine, ttl: timedelta, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self._ttl = ttl
        self._clock = clock

    def read(self, connector_id: int, start: datetime, end: datetime) -> CachedBusy:
        with Session(self._engine) as session:
            row = session.get(CalendarBusyCache, connector_id)
        if row is None:
            return CachedBusy(0, None)
        fresh = (
            row.busy is not None
            and row.fetched_at is not None
            and row.range_start is not None
            and row.range_end is not None
            and row.fetched_at + self._ttl > self._clock()
            and row.range_start <= start
            and end <= row.range_end
        )
        if not fresh:
            return CachedBusy(row.generation, None)
        intervals = [_interval(pair) for pair in row.busy or []]
        return CachedBusy(row.generation, [iv for iv in intervals if iv.end > start and iv.start < end])

    def write(
        self, connector_id: int, generation: int, start: datetime, end: datetime, busy: list[Interval]
    ) -> bool:
        """Store a fetch made at `generation`; False (nothing stored) if the calendar changed meanwhile."""
        values: dict[str, Any] = {
            "range_start": start,
            "range_end": end,
            "busy": [[iv.start.isoformat(), iv.end.isoformat()] for iv in busy],
            "fetched_at": self._clock(),
        }
        # Whether the insert happened comes from RETURNING: psycopg reports no rowcount for it.
        with self._engine.begin() as conn:
            result = conn.execute(
                update(TABLE)
                .where(TABLE.c.connector_id == connector_id, TABLE.c.generation == generation)
                .values(**values)
            )
            if result.rowcount:
                return True
            if generation != 0:
                return False
            inserted = conn.execute(
                _insert(self._engine)
                .values(connector_id=connector_id, generation=0, **values)
                .on_conflict_do_nothing(index_elements=["connector_id"])
                .returning(TABLE.c.connector_id)
            )
            return inserted.first() is not None

    def invalidate(self, connector_id: int) -> None:
        """Forget what is cached and make in-flight fetches unable to store theirs."""
        statement = (
            _insert(self._engine)
            .values(connector_id=connector_id, generation=1, busy=None)
            .on_conflict_do_update(
                index_elements=["connector_id"],
                set_={"generation": TABLE.c.generation + 1, "busy": None, "fetched_at": None},
            )
        )
        with self._engine.begin() as conn:
            conn.execute(statement)

    def forget(self, connector_id: int) -> None:
        with session_scope(self._engine) as session:
            row = session.get(CalendarBusyCache, connector_id)
            if row is not None:
                session.delete(row)


def _insert(engine: Engine) -> Any:
    return (
        pg_insert(CalendarBusyCache)
        if engine.dialect.name == "postgresql"
        else sqlite_insert(CalendarBusyCache)
    )


def _interval(pair: list[str]) -> Interval:
    return Interval(datetime.fromisoformat(pair[0]), datetime.fromisoformat(pair[1]))
