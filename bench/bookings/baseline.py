"""The baseline: a trivial workflow running as many no-op activities as a booking runs to confirmed."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench_noop")
def noop(step: int) -> int:
    return step


@workflow.defn(name="BenchTrivialWorkflow")
class TrivialWorkflow:
    @workflow.run
    async def run(self, activities: int) -> int:
        for step in range(activities):
            await workflow.execute_activity(
                "bench_noop", step, result_type=int, start_to_close_timeout=timedelta(seconds=10)
            )
        return activities
