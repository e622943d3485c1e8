"""One shape for every periodic job: a Temporal Schedule that starts one workflow every N seconds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from models.settings import Settings


def periodic_schedule(
    settings: Settings,
    name: str,
    run: Callable[[Any, Any], Awaitable[Any]],
    arg: Any,
    *,
    role: str,
    every_seconds: float,
) -> tuple[str, Schedule]:
    """`<prefix>-<name>`, starting `run(arg)` on the `role` task queue every `every_seconds`.

    SKIP: a run still going when the next is due makes that one skip, never two at once (each job
    is a sweep that the next run repeats anyway).
    """
    schedule_id = f"{settings.task_queue_prefix}-{name}"
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            run, arg, id=f"{schedule_id}-run", task_queue=settings.task_queue(role)
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=every_seconds))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    return schedule_id, schedule
