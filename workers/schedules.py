"""Temporal Schedules for Huddle's periodic jobs, registered idempotently when a worker starts."""

from __future__ import annotations

from temporalio.client import (
    Client,
    Schedule,
    ScheduleAlreadyRunningError,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from activities.calendar_wiring import calendar_schedules
from activities.housekeeping import housekeeping_schedule
from activities.notifications import outbox_retry_schedule
from models.settings import Settings
from workers.firehose.index_role import drift_repair_schedule
from workers.periodic import periodic_schedule
from workflows.hold_sweep import HoldSweepWorkflow, SweepInput


def hold_sweep_schedule(settings: Settings) -> tuple[str, Schedule]:
    """Releases holds whose workflow is gone: a safety net behind each booking's own timer."""
    return periodic_schedule(
        settings,
        "hold-sweep",
        HoldSweepWorkflow.run,
        SweepInput(grace_seconds=settings.hold_sweep_grace_seconds),
        role="bookings",
        every_seconds=settings.hold_sweep_interval_seconds,
    )


async def ensure_schedules(client: Client, settings: Settings) -> list[str]:
    """Create each schedule, or bring an existing one up to date with the current settings."""
    ids = []
    for schedule_id, schedule in (
        hold_sweep_schedule(settings),
        outbox_retry_schedule(settings),
        *calendar_schedules(settings),
        drift_repair_schedule(settings),
        housekeeping_schedule(settings),
    ):
        try:
            await client.create_schedule(schedule_id, schedule)
        except ScheduleAlreadyRunningError:

            async def _replace(_: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=new)

            await client.get_schedule_handle(schedule_id).update(_replace)
        ids.append(schedule_id)
    return ids
