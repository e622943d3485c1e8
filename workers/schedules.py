"""Temporal Schedules for Huddle's periodic jobs, registered idempotently when a worker starts."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from activities.calendar_wiring import calendar_schedules
from activities.notifications import outbox_retry_schedule
from models.settings import Settings
from workers.firehose.index_role import drift_repair_schedule
from workflows.hold_sweep import HoldSweepWorkflow, SweepInput


def hold_sweep_schedule(settings: Settings) -> tuple[str, Schedule]:
    schedule_id = f"{settings.task_queue_prefix}-hold-sweep"
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            HoldSweepWorkflow.run,
            SweepInput(grace_seconds=settings.hold_sweep_grace_seconds),
            id=f"{schedule_id}-run",
            task_queue=settings.task_queue("bookings"),
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(seconds=settings.hold_sweep_interval_seconds))]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    return schedule_id, schedule


async def ensure_schedules(client: Client, settings: Settings) -> list[str]:
    """Create each schedule, or bring an existing one up to date with the current settings."""
    ids = []
    for schedule_id, schedule in (
        hold_sweep_schedule(settings),
        outbox_retry_schedule(settings),
        *calendar_schedules(settings),
        drift_repair_schedule(settings),
    ):
        try:
            await client.create_schedule(schedule_id, schedule)
        except ScheduleAlreadyRunningError:

            async def _replace(_: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=new)

            await client.get_schedule_handle(schedule_id).update(_replace)
        ids.append(schedule_id)
    return ids
