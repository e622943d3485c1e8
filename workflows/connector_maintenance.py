"""Keeping calendar connectors alive, and reacting when a connected calendar changes.

- `ConnectorMaintenanceWorkflow` (a Temporal Schedule, and after a connect or a lifecycle
  notification): refresh access tokens before they expire, renew push channels before they lapse,
  and write or remove events a broken connector could not.
- `CalendarSyncWorkflow` (one per connector, signal-with-start from the webhooks): find out what
  changed and tell the held bookings whose time it touches, with the `calendar_changed` signal.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from workflows.connector_messages import (
        CALENDAR_CHANGED_SIGNAL,
        CalendarChanged,
        ChangeNotice,
        ChangeOutcome,
        ConnectorJob,
        MaintenanceInput,
        MaintenanceReport,
        SyncInput,
    )

# Provider work: back off, and give up on one connector after a while (the next run tries again).
PROVIDER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1), maximum_attempts=6
)


@workflow.defn(name="ConnectorMaintenanceWorkflow")
class ConnectorMaintenanceWorkflow:
    def __init__(self) -> None:
        self._rerun = False
        self._rerun_force = False

    @workflow.signal
    def again(self, force_channels: bool) -> None:
        """Something changed while this run was going (a lifecycle notification, new calendars
        chosen): run once more when this pass ends, so the change is never left to the schedule."""
        self._rerun = True
        self._rerun_force = self._rerun_force or force_channels

    @workflow.run
    async def run(self, params: MaintenanceInput) -> list[MaintenanceReport]:
        ids = params.connector_ids
        if ids is None:
            ids = await workflow.execute_activity(
                "connectors_to_maintain",
                params,
                result_type=list[int],
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=5),
            )
        force = params.force_channels
        while True:
            # A signal-with-start's own signal arrives with the start: this pass serves it.
            self._rerun, self._rerun_force = False, False
            reports = list(await asyncio.gather(*(self._maintain(i, force) for i in ids)))
            await workflow.wait_condition(workflow.all_handlers_finished)
            if not self._rerun:
                return reports
            force = self._rerun_force

    async def _maintain(self, connector_id: int, force: bool) -> MaintenanceReport:
        try:
            report: MaintenanceReport = await workflow.execute_activity(
                "maintain_connector",
                ConnectorJob(connector_id=connector_id, force_channels=force),
                result_type=MaintenanceReport,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=PROVIDER_RETRY,
            )
        except ActivityError as exc:
            # One broken connector must not stop the others; the connector's state says what failed.
            cause = exc.cause if isinstance(exc.cause, ApplicationError) else exc
            return MaintenanceReport(connector_id=connector_id, skipped=str(cause))
        return report


@workflow.defn(name="CalendarSyncWorkflow")
class CalendarSyncWorkflow:
    def __init__(self) -> None:
        self._queue: list[ChangeNotice] = []

    @workflow.signal
    def changed(self, notice: ChangeNotice) -> None:
        self._queue.append(notice)

    @workflow.run
    async def run(self, params: SyncInput) -> int:
        told = 0
        while True:
            while self._queue:
                batch, self._queue = self._queue, []
                for notice in _merge(batch):
                    told += await self._sync(notice)
            await workflow.wait_condition(workflow.all_handlers_finished)
            if not self._queue:  # nothing arrived while the last batch ran
                return told

    async def _sync(self, notice: ChangeNotice) -> int:
        try:
            outcome: ChangeOutcome = await workflow.execute_activity(
                "sync_calendar_changes",
                notice,
                result_type=ChangeOutcome,
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=PROVIDER_RETRY,
            )
        except ActivityError:
            # The busy cache was invalidated by the webhook already; only the re-check is lost.
            workflow.logger.warning("could not sync calendar changes of connector %s", notice.connector_id)
            return 0
        told = 0
        signal = CalendarChanged(outcome.owner_did, outcome.ranges, outcome.unknown)
        for workflow_id in outcome.booking_workflow_ids:
            try:
                await workflow.get_external_workflow_handle(workflow_id).signal(
                    CALENDAR_CHANGED_SIGNAL, signal
                )
                told += 1
            except FailureError:
                pass  # the booking finished meanwhile
        return told


def _merge(notices: list[ChangeNotice]) -> list[ChangeNotice]:
    """Notices that piled up, as one per calendar: the union of the events they name."""
    merged: dict[str | None, ChangeNotice] = {}
    for notice in notices:
        into = merged.setdefault(
            notice.calendar_id, ChangeNotice(connector_id=notice.connector_id, calendar_id=notice.calendar_id)
        )
        into.event_ids += [e for e in notice.event_ids if e not in into.event_ids]
        into.unknown = into.unknown or notice.unknown
    return list(merged.values())
