"""The housekeeping schedule deletes web sessions, refresh leases and idempotency keys past their time,
and nothing that is still in use."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.client import Client

from models.settings import Settings
from models.tables import IdempotencyRecord, OAuthSession
from models.types import utcnow
from models.web_tables import OAuthRefreshLease
from tests.replay.recorder import keep_history
from workers.schedules import ensure_schedules
from workflows.housekeeping import HousekeepingInput, HousekeepingReport, HousekeepingWorkflow

MAX_AGE = timedelta(days=14)


def _session(engine: Engine, age: timedelta) -> str:
    sid = uuid.uuid4().hex
    with Session(engine) as session:
        session.add(
            OAuthSession(
                id=sid,
                did=f"did:plc:{sid[:24]}",
                issuer="http://localhost:2583",
                pds_url="http://localhost:2583",
                dpop_key_enc="x",
                access_token_enc="x",
                created_at=utcnow() - age,
                updated_at=utcnow() - age,
            )
        )
        session.commit()
    return sid


def _lease(engine: Engine, session_id: str, until: timedelta) -> None:
    with Session(engine) as session:
        session.add(OAuthRefreshLease(session_id=session_id, holder="replica-a", until=utcnow() + until))
        session.commit()


def _idempotency(engine: Engine, expires_in: timedelta) -> str:
    key = f"did:plc:guest|com.huddle.match|{uuid.uuid4().hex}"
    with Session(engine) as session:
        session.add(IdempotencyRecord(key=key, request_hash="h", expires_at=utcnow() + expires_in))
        session.commit()
    return key


def _left(engine: Engine) -> tuple[set[str], set[str], set[str]]:
    with Session(engine) as session:
        sessions = set(session.exec(select(col(OAuthSession.id))).all())
        leases = set(session.exec(select(col(OAuthRefreshLease.session_id))).all())
        keys = set(session.exec(select(col(IdempotencyRecord.key))).all())
    return sessions, leases, keys


@pytest.mark.history
async def test_housekeeping_deletes_only_what_is_past_its_time(
    worker: Settings, engine: Engine, temporal_client: Client
) -> None:
    old = _session(engine, MAX_AGE + timedelta(hours=1))
    _lease(engine, old, timedelta(minutes=5))  # a live lease on a dead session goes with it
    current = _session(engine, timedelta(days=1))
    crashed = _session(engine, timedelta(days=2))
    _lease(engine, crashed, -timedelta(minutes=1))  # its holder died: nobody is refreshing
    refreshing = _session(engine, timedelta(days=3))
    _lease(engine, refreshing, timedelta(seconds=30))
    expired_key = _idempotency(engine, -timedelta(seconds=1))
    live_key = _idempotency(engine, timedelta(hours=1))

    run = HousekeepingInput(session_max_age_seconds=int(MAX_AGE.total_seconds()))
    first_id = f"housekeeping-{uuid.uuid4()}"
    report = await temporal_client.execute_workflow(
        HousekeepingWorkflow.run, run, id=first_id, task_queue=worker.task_queue("bookings")
    )
    await keep_history(temporal_client, first_id, "housekeeping-deletes-what-is-past-its-time")
    assert report == HousekeepingReport(web_sessions=1, refresh_leases=1, idempotency_records=1)
    sessions, leases, keys = _left(engine)
    assert old not in sessions and {current, crashed, refreshing} <= sessions
    assert leases == {refreshing}
    assert expired_key not in keys and live_key in keys

    # Safe to repeat: a second run finds nothing.
    again = await temporal_client.execute_workflow(
        HousekeepingWorkflow.run,
        run,
        id=f"housekeeping-{uuid.uuid4()}",
        task_queue=worker.task_queue("bookings"),
    )
    assert again == HousekeepingReport()


async def test_housekeeping_is_scheduled_at_worker_start(worker: Settings, temporal_client: Client) -> None:
    registered = await ensure_schedules(temporal_client, worker)
    schedule_id = f"{worker.task_queue_prefix}-housekeeping"
    try:
        assert schedule_id in registered
        desc = await temporal_client.get_schedule_handle(schedule_id).describe()
        every = desc.schedule.spec.intervals[0].every
        assert every.total_seconds() == worker.housekeeping_interval_seconds
    finally:
        for registered_id in registered:
            await temporal_client.get_schedule_handle(registered_id).delete()
