"""Migrations build the models' schema on SQLite and Postgres; Postgres refuses double booking."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

import models.all_tables  # noqa: F401  (the whole schema)
from models.db import make_engine, session_scope
from models.tables import Booking

T0 = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def _booking(
    n: int, host: str, start: datetime, minutes: int = 30, state: str = "held", **kw: object
) -> Booking:
    return Booking(
        id=f"b{n}",
        workflow_id=f"booking-b{n}",
        host_did=host,
        guest_did=f"did:plc:guest{n}",
        offer_uri=f"at://{host}/com.huddle.slotOffer/3k",
        duration_minutes=minutes,
        state=state,
        start_at=start,
        end_at=start + timedelta(minutes=minutes),
        block_start=start,
        block_end=start + timedelta(minutes=minutes),
        idempotency_key=f"k{n}",
        **kw,  # type: ignore[arg-type]
    )


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diffs == []


def test_datetimes_round_trip_as_aware_utc(engine: Engine) -> None:
    paris = datetime(2026, 12, 1, 16, 0, tzinfo=UTC).astimezone()
    with session_scope(engine) as s:
        s.add(_booking(1, "did:plc:host", paris))
    with Session(engine) as s:
        row = s.exec(select(Booking)).one()
    assert row.start_at == paris and row.start_at is not None and row.start_at.tzinfo is not None
    assert row.start_at.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(engine: Engine) -> None:
    with pytest.raises(Exception, match="naive datetime"), session_scope(engine) as s:
        s.add(_booking(1, "did:plc:host", datetime(2026, 12, 1, 15, 0)))


@pytest.mark.postgres
def test_postgres_refuses_overlapping_held_bookings(postgres_url: str) -> None:
    engine = make_engine(postgres_url, pool_size=1)
    host = "did:plc:host"
    with session_scope(engine) as s:
        s.add(_booking(1, host, T0))
    # Overlapping by 15 minutes, same host: refused by the database itself.
    with pytest.raises(IntegrityError, match="bookings_no_overlap"), session_scope(engine) as s:
        s.add(_booking(2, host, T0 + timedelta(minutes=15)))
    # A confirmed booking overlapping a held one is refused too.
    with pytest.raises(IntegrityError, match="bookings_no_overlap"), session_scope(engine) as s:
        s.add(_booking(3, host, T0 - timedelta(minutes=10), state="confirmed"))
    # Touching (end == start) is fine, another host is fine, a released booking does not occupy time.
    with session_scope(engine) as s:
        s.add(_booking(4, host, T0 + timedelta(minutes=30)))
        s.add(_booking(5, "did:plc:other", T0))
        s.add(_booking(6, host, T0, state="expired"))
    # Moving a held booking onto another one is refused as well (UPDATE, not only INSERT).
    with pytest.raises(IntegrityError, match="bookings_no_overlap"), session_scope(engine) as s:
        row = s.get(Booking, "b4")
        assert row is not None
        row.block_start = T0 + timedelta(minutes=20)
        s.add(row)
    with Session(engine) as s:
        held = s.exec(select(Booking.id).where(Booking.host_did == host, Booking.state == "held")).all()
    assert sorted(held) == ["b1", "b4"]
    engine.dispose()


def test_read_then_write_transactions_wait_for_each_other(engine: Engine) -> None:
    """Two writers, one reading first: neither fails, both writes are kept. (On SQLite a deferred
    transaction that read before another connection committed fails at once with "database is
    locked", whatever the busy timeout: session_scope takes the write lock up front.)"""
    from models.tables import User

    with session_scope(engine) as session:
        session.add(User(did="did:plc:reader", handle="before.test"))
    read = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            with session_scope(engine) as session:
                row = session.get(User, "did:plc:reader")
                assert row is not None
                read.set()
                time.sleep(0.3)  # the other writer commits now, if the database lets it
                row.handle = "after.test"
                session.add(row)
        except BaseException as exc:
            errors.append(exc)
            read.set()

    def writer() -> None:
        read.wait(5)
        try:
            with session_scope(engine) as session:
                session.add(User(did="did:plc:writer", handle="writer.test"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader), threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with Session(engine) as session:
        reader_row, writer_row = session.get(User, "did:plc:reader"), session.get(User, "did:plc:writer")
    assert reader_row is not None and reader_row.handle == "after.test"
    assert writer_row is not None
