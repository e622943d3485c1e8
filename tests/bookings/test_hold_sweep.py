"""The hold sweep finds nothing in normal operation and frees a hold whose workflow was terminated."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import Engine
from temporalio.client import Client

from kernel.booking.ids import workflow_id
from models.settings import Settings
from tests.bookings.helpers import book, final_view, five_slot_record, make_request, projection, seed_offer
from tests.replay.recorder import keep_history
from workers.schedules import ensure_schedules
from workflows.hold_sweep import HoldSweepWorkflow, SweepInput, SweepReport


async def _sweep(client: Client, settings: Settings) -> tuple[SweepReport, str]:
    sweep_id = f"sweep-{uuid.uuid4()}"
    report = await client.execute_workflow(
        HoldSweepWorkflow.run,
        SweepInput(grace_seconds=0),
        id=sweep_id,
        task_queue=settings.task_queue("bookings"),
    )
    return report, sweep_id


@pytest.mark.history
async def test_sweep_releases_only_orphaned_holds(
    worker: Settings, engine: Engine, temporal_client: Client
) -> None:
    uri = seed_offer(engine, five_slot_record())
    orphan = make_request(worker, uri, hold_seconds=1)
    alive = make_request(worker, uri, hold_seconds=120)
    orphan_view = await book(temporal_client, worker, engine, orphan)
    await book(temporal_client, worker, engine, alive)
    await temporal_client.get_workflow_handle(workflow_id(orphan.booking_id)).terminate("operator test")
    await asyncio.sleep(1.5)  # past the orphan's hold expiry

    report, sweep_id = await _sweep(temporal_client, worker)
    assert report.released == [orphan.booking_id]
    await keep_history(temporal_client, sweep_id, "hold-sweep-releases-an-orphan")
    assert projection(engine, orphan.booking_id).state == "expired"
    assert projection(engine, alive.booking_id).state == "held"
    # The freed time is offered again.
    again = await book(temporal_client, worker, engine, make_request(worker, uri))
    assert again.start == orphan_view.start

    # In normal operation (holds expiring by their own timers) the sweep finds nothing to do.
    timed = make_request(worker, uri, hold_seconds=1)
    await book(temporal_client, worker, engine, timed)
    assert (await final_view(temporal_client, timed.booking_id)).state == "expired"
    assert (await _sweep(temporal_client, worker))[0].released == []


async def test_schedule_registration_is_idempotent(worker: Settings, temporal_client: Client) -> None:
    first = await ensure_schedules(temporal_client, worker)
    second = await ensure_schedules(temporal_client, worker)
    assert first == second and len(set(first)) == len(first)
    sweep_id = f"{worker.task_queue_prefix}-hold-sweep"
    assert sweep_id in first
    desc = await temporal_client.get_schedule_handle(sweep_id).describe()
    assert desc.schedule.spec.intervals[0].every.total_seconds() == worker.hold_sweep_interval_seconds
    for schedule_id in first:
        await temporal_client.get_schedule_handle(schedule_id).delete()
