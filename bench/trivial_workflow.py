"""The bookings baseline: a trivial workflow running as many no-op activities as a booking does.

Kept outside bench.bookings because the workflow sandbox re-imports this module and its package.
"""

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
