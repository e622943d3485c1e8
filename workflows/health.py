"""A trivial workflow that proves the round trip: client → server → every task queue → back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow


@dataclass
class HealthCheckInput:
    task_queues: list[str]


@dataclass
class HealthCheckResult:
    answers: dict[str, str] = field(default_factory=dict)


@workflow.defn(name="HealthCheckWorkflow")
class HealthCheckWorkflow:
    @workflow.run
    async def run(self, params: HealthCheckInput) -> HealthCheckResult:
        result = HealthCheckResult()
        for queue in params.task_queues:
            result.answers[queue] = await workflow.execute_activity(
                "ping",
                queue,
                task_queue=queue,
                start_to_close_timeout=timedelta(seconds=10),
                schedule_to_close_timeout=timedelta(seconds=30),
            )
        return result
