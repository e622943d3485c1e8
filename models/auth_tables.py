"""Tables behind service auth and rate limits: shared by every API replica through the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, Engine, text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class ServiceAuthJti(SQLModel, table=True):
    """A service-auth token's `jti`, kept until the token expires so a replay is refused."""

    __tablename__ = "service_auth_jtis"

    iss: str = Field(primary_key=True, max_length=2048)  # the issuer DID
    jti: str = Field(primary_key=True, max_length=256)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)


class RateLimitBucket(SQLModel, table=True):
    """One token bucket, stored as its theoretical arrival time (GCRA): see api/ratelimit.py."""

    __tablename__ = "rate_limit_buckets"

    key: str = Field(primary_key=True, max_length=2100)  # "caller:<did>" or "ip:<address>"
    # Epoch seconds; the bucket is full again once this is in the past.
    tat: float = Field(nullable=False, index=True)


@contextmanager
def ephemeral_write(engine: Engine) -> Iterator[Connection]:
    """A short write transaction on these tables, committed on success.

    SQLite: BEGIN IMMEDIATE, so a read-then-write never fails on a stale WAL snapshot and
    writers queue on the busy timeout. Postgres: `synchronous_commit = off` for this
    transaction only; a crash may forget the last few milliseconds of jtis and bucket updates
    (a replay window that short is an accepted risk), and each request saves a WAL flush.
    """
    if engine.dialect.name == "sqlite":
        engine = engine.execution_options(sqlite_begin="IMMEDIATE")
    with engine.connect() as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL synchronous_commit = off"))
        yield conn
