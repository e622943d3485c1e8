"""SIGKILL the worker mid-way through 50 bookings: a new worker finishes them, each effect once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, func, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from api.booking_commands import send_command
from kernel.booking.ids import workflow_id
from kernel.booking.messages import BookingRequest, CommandInput
from models.settings import REPO_ROOT, Settings
from models.tables import AuditEntry, Booking, OutboxMessage
from tests.bookings.helpers import book, make_request, offer_record, seed_offer
from tests.replay.recorder import keep_history

pytestmark = pytest.mark.slow


def _start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HUDDLE_DEV_MODE": "true",
        "HUDDLE_DATABASE_URL": settings.database_url,
        "HUDDLE_TEMPORAL_ADDRESS": settings.temporal_address,
        "HUDDLE_TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "HUDDLE_TASK_QUEUE_PREFIX": settings.task_queue_prefix,
    }
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "worker"], env=env, cwd=REPO_ROOT, stdout=out, stderr=out
    )


async def _book_and_finalize(client: Client, settings: Settings, engine: Engine, req: BookingRequest) -> str:
    view = await book(client, settings, engine, req)
    if view.state != "held":
        return view.state
    final = await send_command(client, engine, req.booking_id, "finalize", CommandInput(req.guest_did))
    return final.state


@pytest.mark.history
async def test_worker_killed_mid_way(
    settings: Settings, engine: Engine, temporal_client: Client, tmp_path: Path
) -> None:
    uri = seed_offer(engine, offer_record())
    log = tmp_path / "worker.log"
    first = _start_worker(settings, log)
    requests = [make_request(settings, uri, hold_seconds=300) for _ in range(50)]
    tasks = [asyncio.create_task(_book_and_finalize(temporal_client, settings, engine, r)) for r in requests]

    # Kill the worker once some bookings are through and others are in flight.
    for _ in range(600):
        with Session(engine) as session:
            done = session.exec(
                select(func.count()).select_from(Booking).where(Booking.state == "confirmed")
            ).one()
        if done >= 10:
            break
        await asyncio.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert done < 50, "the worker finished everything before it could be killed"

    second = _start_worker(settings, log)
    try:
        states = await asyncio.wait_for(asyncio.gather(*tasks), timeout=180)
        await _check_everything_once(engine, requests, states, log)
        hit = await _most_interrupted(temporal_client, requests)
        await keep_history(temporal_client, workflow_id(hit.booking_id), "booking-worker-killed")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)


async def _most_interrupted(client: Client, requests: list[BookingRequest]) -> BookingRequest:
    """The booking whose history shows the kill most: timed-out workflow tasks, retried activities."""

    async def marks(req: BookingRequest) -> int:
        history = client.get_workflow_handle(workflow_id(req.booking_id)).fetch_history_events()
        return sum(
            [
                (e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT)
                + max(e.activity_task_started_event_attributes.attempt - 1, 0)
                async for e in history
            ]
        )

    counts = await asyncio.gather(*(marks(r) for r in requests))
    return requests[counts.index(max(counts))]


def _tail(log: Path) -> str:
    return log.read_text()[-3000:]


async def _check_everything_once(
    engine: Engine, requests: list[BookingRequest], states: list[str], log: Path
) -> None:
    if Counter(states) != {"confirmed": 50}:
        with Session(engine) as session:
            reasons = Counter(
                r.reason for r in session.exec(select(Booking).where(Booking.state != "confirmed"))
            )
        pytest.fail(f"{Counter(states)}; reasons {reasons}\n{_tail(log)}")
    ids = [r.booking_id for r in requests]
    for _ in range(600):  # the confirmation mails are enqueued beside the booking, not before its answer
        with Session(engine) as session:
            if session.exec(select(func.count()).select_from(OutboxMessage)).one() >= 150:
                break
        await asyncio.sleep(0.1)
    with Session(engine) as session:
        rows = session.exec(select(Booking).where(Booking.id.in_(ids))).all()  # type: ignore[attr-defined]
        outbox = session.exec(
            select(OutboxMessage.booking_id, OutboxMessage.kind, OutboxMessage.payload)
        ).all()
        audit = [
            (b, a)
            for b, a in session.exec(select(AuditEntry.booking_id, AuditEntry.action)).all()
            if not a.startswith(("notification", "mail", "calendar"))  # the transitions only
        ]
    assert {r.state for r in rows} == {"confirmed"}
    starts = sorted(r.start_at for r in rows)
    assert len(set(starts)) == 50
    # Each side effect exactly once: three messages and three audit entries per booking.
    per_booking = Counter(b for b, _, _ in outbox)
    assert set(per_booking.values()) == {3} and len(per_booking) == 50
    assert Counter((b, a) for b, a in audit).most_common(1)[0][1] == 1
    assert Counter(a for _, a in audit) == {"requested": 50, "held": 50, "finalized": 50}
