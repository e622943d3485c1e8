"""Every booking workflow history recorded by this test session replays cleanly (determinism)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Engine
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from api.booking_commands import send_command
from kernel.booking.messages import CommandInput
from models.settings import Settings
from tests.bookings.helpers import book, make_request, offer_record, seed_offer
from workflows.booking import BookingWorkflow
from workflows.health import HealthCheckWorkflow
from workflows.hold_sweep import HoldSweepWorkflow


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_recorded_histories_replay(
    database_url: str, worker: Settings, engine: Engine, temporal_client: Client
) -> None:
    # Make sure there is at least one full history even when this test runs alone.
    uri = seed_offer(engine, offer_record())
    req = make_request(worker, uri)
    await book(temporal_client, worker, engine, req)
    await send_command(temporal_client, engine, req.booking_id, "cancel", CommandInput(req.guest_did))

    executions = [
        wf async for wf in temporal_client.list_workflows('WorkflowType = "BookingWorkflow"', limit=400)
    ]
    assert executions
    fetching = asyncio.Semaphore(16)

    async def fetch(wf_id: str, run_id: str | None) -> WorkflowHistory:
        async with fetching:
            return await temporal_client.get_workflow_handle(wf_id, run_id=run_id).fetch_history()

    histories = await asyncio.gather(*(fetch(wf.id, wf.run_id) for wf in executions))
    replayer = Replayer(workflows=[BookingWorkflow, HoldSweepWorkflow, HealthCheckWorkflow])
    failures = []
    async with replayer.workflow_replay_iterator(_iterate(histories)) as results:
        async for result in results:
            if result.replay_failure is not None:
                failures.append(repr(result.replay_failure))
    assert failures == []


async def _iterate(histories: list[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history
