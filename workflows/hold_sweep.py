"""The hold sweep: a safety net behind the booking workflows' own hold timers.

Run by a Temporal Schedule. In normal operation it finds nothing; it releases a hold only when the
booking's workflow is gone (terminated by hand, failed) so the host's time is not blocked forever.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy


@dataclass
class SweepInput:
    grace_seconds: int = 30


@dataclass
class SweepReport:
    checked: int = 0
    released: list[str] = field(default_factory=list)


@workflow.defn(name="HoldSweepWorkflow")
class HoldSweepWorkflow:
    @workflow.run
    async def run(self, params: SweepInput) -> SweepReport:
        return await workflow.execute_activity(
            "sweep_expired_holds",
            params,
            result_type=SweepReport,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
