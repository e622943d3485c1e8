"""Run the health workflow once and return what each task queue answered."""

from __future__ import annotations

import uuid

from models.settings import get_settings
from workers.temporal_client import all_task_queues, connect_temporal
from workflows.health import HealthCheckInput, HealthCheckResult, HealthCheckWorkflow


async def run_health_check() -> dict[str, str]:
    settings = get_settings()
    client = await connect_temporal(settings)
    result: HealthCheckResult = await client.execute_workflow(
        HealthCheckWorkflow.run,
        HealthCheckInput(task_queues=all_task_queues(settings)),
        id=f"health-{uuid.uuid4()}",
        task_queue=settings.task_queue("bookings"),
    )
    return result.answers
