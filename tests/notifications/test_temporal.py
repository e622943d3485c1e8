"""Notifications on the real Temporal dev server: retries with back-off through a relay outage, the
outbox retry workflow and its schedule."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, update
from sqlmodel import col
from temporalio.client import Client
from temporalio.worker import Worker

from activities.notifications import outbox_retry_schedule
from models.db import session_scope
from models.settings import Settings
from models.tables import OutboxMessage
from tests.notifications.helpers import activities, effect, row_states, rows, seed_booking
from tests.notifications.notify_workflow import NotifyStep, NotifyStepWorkflow
from tests.notifications.smtp_peer import SmtpPeer
from tests.replay.recorder import keep_history
from workflows.outbox_retry import OutboxRetryInput, OutboxRetryResult, OutboxRetryWorkflow


async def test_relay_down_for_a_while_then_each_message_arrives_once(
    worker: Settings, engine: Engine, temporal_client: Client, smtp_server: SmtpPeer
) -> None:
    booking = seed_booking(engine)
    smtp_server.stop()
    queue = f"{worker.task_queue_prefix}-test-notify-step"
    async with Worker(temporal_client, task_queue=queue, workflows=[NotifyStepWorkflow]):
        handle = await temporal_client.start_workflow(
            NotifyStepWorkflow.run,
            NotifyStep(effect(booking, "confirmed"), worker.task_queue("notify")),
            id=f"notify-{uuid.uuid4().hex}",
            task_queue=queue,
        )
        # Attempts at 0 s, 1 s, 3 s, ...: while the relay is down the rows wait, counting attempts.
        deadline = asyncio.get_running_loop().time() + 20
        while not all(r.attempts >= 2 for r in rows(engine, booking)) or not rows(engine, booking):
            assert asyncio.get_running_loop().time() < deadline, "no retries seen"
            await asyncio.sleep(0.2)
        assert set(row_states(engine, booking).values()) == {"pending"}
        assert smtp_server.received == []

        smtp_server.start()
        assert await asyncio.wait_for(handle.result(), timeout=30) == 2
    received = smtp_server.wait_for(3, timeout=1)
    assert sorted(r.rcpt_tos[0] for r in received) == ["guest@example.test", "host@example.test"]
    assert set(row_states(engine, booking).values()) == {"sent"}


@pytest.mark.history
async def test_the_outbox_retry_workflow_sends_rows_that_waited(
    worker: Settings, engine: Engine, temporal_client: Client, smtp_server: SmtpPeer
) -> None:
    booking = seed_booking(engine)
    activities(engine, worker).enqueue_notifications(effect(booking, "confirmed"))
    result = await temporal_client.execute_workflow(
        OutboxRetryWorkflow.run,
        OutboxRetryInput(retry_after_seconds=600),
        id=f"outbox-retry-{uuid.uuid4().hex}",
        task_queue=worker.task_queue("notify"),
        result_type=OutboxRetryResult,
    )
    assert result == OutboxRetryResult()  # too fresh: the booking's own send is in charge
    with session_scope(engine) as session:
        session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.booking_id) == booking)
            .values(created_at=datetime.now(UTC) - timedelta(minutes=11))
        )
    retry_id = f"outbox-retry-{uuid.uuid4().hex}"
    result = await temporal_client.execute_workflow(
        OutboxRetryWorkflow.run,
        OutboxRetryInput(retry_after_seconds=600),
        id=retry_id,
        task_queue=worker.task_queue("notify"),
        result_type=OutboxRetryResult,
    )
    assert (result.sent, result.deferred) == (2, 0)
    assert len(smtp_server.received) == 2
    await keep_history(temporal_client, retry_id, "outbox-retry-sends-what-waited")


async def test_the_retry_schedule_is_registered_from_settings_and_runs(
    worker: Settings, engine: Engine, temporal_client: Client, smtp_server: SmtpPeer
) -> None:
    settings = worker.model_copy(
        update={"outbox_retry_after_seconds": 0, "outbox_retry_interval_seconds": 3600}
    )
    booking = seed_booking(engine, guest_email=None)
    activities(engine, settings).enqueue_notifications(effect(booking, "confirmed"))
    schedule_id, schedule = outbox_retry_schedule(settings)
    assert schedule_id == f"{settings.task_queue_prefix}-outbox-retry"
    handle = await temporal_client.create_schedule(schedule_id, schedule)
    try:
        desc = await handle.describe()
        assert desc.schedule.spec.intervals[0].every == timedelta(hours=1)
        await handle.trigger()
        assert len(await asyncio.to_thread(smtp_server.wait_for, 1, 30)) == 1
    finally:
        await handle.delete()
    assert row_states(engine, booking) == {"confirmed:host": "sent"}
