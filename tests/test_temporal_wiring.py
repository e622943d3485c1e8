"""One round trip through the real Temporal dev server reaches every task queue."""

from __future__ import annotations

import uuid

from temporalio.client import Client

from models.settings import Settings
from workers.temporal_client import QUEUE_ROLES, all_task_queues
from workflows.health import HealthCheckInput, HealthCheckWorkflow


async def test_health_workflow_reaches_every_task_queue(worker: Settings, temporal_client: Client) -> None:
    queues = all_task_queues(worker)
    assert [q.rsplit("-", 1)[1] for q in queues] == list(QUEUE_ROLES)
    result = await temporal_client.execute_workflow(
        HealthCheckWorkflow.run,
        HealthCheckInput(task_queues=queues),
        id=f"health-{uuid.uuid4()}",
        task_queue=worker.task_queue("bookings"),
    )
    assert sorted(result.answers) == sorted(queues)
    assert all(" served by " in answer for answer in result.answers.values())
