"""A stand-in for the booking workflow's notification step: enqueue, then send, with its retry policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from kernel.booking.messages import SideEffect

# What the booking workflow uses for send_notifications.
SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2, maximum_interval=timedelta(minutes=5)
)


@dataclass
class NotifyStep:
    effect: SideEffect
    notify_queue: str


@workflow.defn(name="TestNotifyStepWorkflow")
class NotifyStepWorkflow:
    @workflow.run
    async def run(self, step: NotifyStep) -> int:
        for activity in ("enqueue_notifications", "send_notifications"):
            sent: int = await workflow.execute_activity(
                activity,
                step.effect,
                task_queue=step.notify_queue,
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=timedelta(days=1),
                retry_policy=SEND_RETRY,
                result_type=int,
            )
        return sent
