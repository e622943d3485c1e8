"""Release holds past their expiry whose booking workflow no longer runs."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from kernel.booking.messages import Transition
from kernel.booking.states import EXPIRED, HELD
from models import booking_store as store
from models.tables import Booking
from models.types import utcnow
from workflows.hold_sweep import SweepInput, SweepReport

log = logging.getLogger("huddle.sweep")


class HoldSweepActivities:
    def __init__(self, engine: Engine, client: Client) -> None:
        self._engine = engine
        self._client = client

    def _overdue(self, grace: timedelta) -> list[Booking]:
        with Session(self._engine) as session:
            query = select(Booking).where(
                Booking.state == HELD, col(Booking.hold_expires_at) < utcnow() - grace
            )
            return list(session.exec(query))

    async def _workflow_running(self, workflow_id: str) -> bool:
        try:
            desc = await self._client.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return desc.status == WorkflowExecutionStatus.RUNNING

    @activity.defn(name="sweep_expired_holds")
    async def sweep_expired_holds(self, params: SweepInput) -> SweepReport:
        overdue = await asyncio.to_thread(self._overdue, timedelta(seconds=params.grace_seconds))
        report = SweepReport(checked=len(overdue))
        for booking in overdue:
            if await self._workflow_running(booking.workflow_id):
                continue  # its own timer will release it once a worker runs it
            transition = Transition(
                booking_id=booking.id,
                version=booking.version + 1,
                state=EXPIRED,
                action="hold_swept",
                reason="the hold expired and its workflow was no longer running",
            )
            await asyncio.to_thread(store.apply_transition, self._engine, transition)
            log.warning("released the orphaned hold of booking %s", booking.id)
            report.released.append(booking.id)
        return report
