"""Engine and session factory for SQLite (embedded default) and Postgres (psycopg 3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for `url`; on SQLite, WAL and real BEGIN statements so writes can be serialized."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=pool_size,
        max_overflow=pool_size * 2,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so BEGIN IMMEDIATE can be issued (see begin hook).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A write session, committed on success and rolled back on error.

    On SQLite it begins with BEGIN IMMEDIATE: a deferred transaction that reads and then writes
    fails at once ("database is locked", SQLITE_BUSY_SNAPSHOT) when another connection committed
    in between — the busy timeout does not help there. Taking the write lock up front makes it
    wait its turn instead. Nothing slow (network, Temporal) may run inside one; reads that write
    nothing use a plain Session.
    """
    if engine.dialect.name == "sqlite":
        engine = engine.execution_options(sqlite_begin="IMMEDIATE")
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def serialized_write(engine: Engine) -> Iterator[Session]:
    """A write transaction no other writer can interleave with on SQLite (BEGIN IMMEDIATE): the
    same as `session_scope`, named so for callers whose correctness relies on it (check, then insert).

    On Postgres this is an ordinary transaction: constraints there (the bookings exclusion
    constraint) are the guard, so no table lock is taken.
    """
    with session_scope(engine) as session:
        yield session
