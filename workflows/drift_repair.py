"""Drift repair: re-read known hosts' repos so the index holds what their PDSes hold.

Run by a Temporal Schedule on the index queue. The firehose keeps the index current; this catches
what it missed (an outage longer than the relay keeps events, a bug, a relay that dropped frames).
Hosts are read a page at a time, a few at once; a long run continues as new to keep history small.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

MAX_FAILED_LISTED = 20
PAGES_PER_RUN = 20


@dataclass
class DriftRepairInput:
    page_size: int = 100
    concurrency: int = 4
    after: str = ""  # the last DID done by a previous run (continue-as-new)
    checked: int = 0
    repaired: int = 0
    failed: int = 0


@dataclass
class RepoPage:
    after: str
    limit: int


@dataclass
class RepoRepair:
    did: str
    changed: bool = False
    writes: int = 0


@dataclass
class DriftRepairReport:
    checked: int = 0
    repaired: int = 0  # repos whose index had drifted and was corrected
    failed: int = 0
    failed_dids: list[str] = field(default_factory=list)


@workflow.defn(name="DriftRepairWorkflow")
class DriftRepairWorkflow:
    @workflow.run
    async def run(self, params: DriftRepairInput) -> DriftRepairReport:
        report = DriftRepairReport(checked=params.checked, repaired=params.repaired, failed=params.failed)
        after = params.after
        for _ in range(PAGES_PER_RUN):
            dids = await workflow.execute_activity(
                "list_repos_to_repair",
                RepoPage(after=after, limit=params.page_size),
                result_type=list[str],
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            )
            if not dids:
                return report
            for i in range(0, len(dids), params.concurrency):
                chunk = dids[i : i + params.concurrency]
                results = await asyncio.gather(*(self._repair(did) for did in chunk), return_exceptions=True)
                for did, result in zip(chunk, results, strict=True):
                    report.checked += 1
                    if isinstance(result, RepoRepair):
                        report.repaired += int(result.changed)
                    else:
                        report.failed += 1
                        if len(report.failed_dids) < MAX_FAILED_LISTED:
                            report.failed_dids.append(did)
            after = dids[-1]
        workflow.continue_as_new(
            DriftRepairInput(
                page_size=params.page_size,
                concurrency=params.concurrency,
                after=after,
                checked=report.checked,
                repaired=report.repaired,
                failed=report.failed,
            )
        )

    async def _repair(self, did: str) -> RepoRepair:
        # A repo that still fails after a few tries is counted; the next scheduled run tries again.
        return await workflow.execute_activity(
            "repair_repo",
            did,
            result_type=RepoRepair,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=2)),
        )
