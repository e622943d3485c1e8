"""OutboxRetryWorkflow: started by a Temporal Schedule, it sends the outbox rows that are still waiting.

The booking workflow sends each step's mail itself; this is the safety net behind it, for rows whose
send gave up (a relay down for longer than the activity's retries) or never ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy


@dataclass
class OutboxRetryInput:
    retry_after_seconds: int = 600  # rows pending this long are sent by the sweep
    give_up_after_seconds: int = 3 * 24 * 3600  # rows pending this long are marked failed
    batch_size: int = 200


@dataclass
class OutboxRetryResult:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    unconfirmed: int = 0


@workflow.defn(name="OutboxRetryWorkflow")
class OutboxRetryWorkflow:
    @workflow.run
    async def run(self, request: OutboxRetryInput) -> OutboxRetryResult:
        result: OutboxRetryResult = await workflow.execute_activity(
            "retry_outbox",
            request,
            result_type=OutboxRetryResult,
            start_to_close_timeout=timedelta(minutes=10),
            # The next scheduled run tries again; no need to insist within one.
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=5), maximum_attempts=3),
        )
        return result
