"""HousekeepingWorkflow: started by a Temporal Schedule, it deletes rows whose time is over.

Web sessions past their maximum age (their tokens stay encrypted at rest until deleted), refresh
leases whose holder is long gone, and idempotency keys past their lifetime. Nothing else deletes
these: they are only ignored once expired, so without this they would pile up for ever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy


@dataclass
class HousekeepingInput:
    session_max_age_seconds: int = 14 * 24 * 3600


@dataclass
class HousekeepingReport:
    web_sessions: int = 0
    refresh_leases: int = 0
    idempotency_records: int = 0


@workflow.defn(name="HousekeepingWorkflow")
class HousekeepingWorkflow:
    @workflow.run
    async def run(self, params: HousekeepingInput) -> HousekeepingReport:
        report: HousekeepingReport = await workflow.execute_activity(
            "purge_expired_rows",
            params,
            result_type=HousekeepingReport,
            start_to_close_timeout=timedelta(minutes=5),
            # The next scheduled run catches up; no need to insist within one.
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=5), maximum_attempts=3),
        )
        return report
