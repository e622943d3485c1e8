"""Deleting expired rows (see workflows/housekeeping.py), and the schedule that runs it."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine, delete, select
from sqlmodel import col
from temporalio import activity
from temporalio.client import Schedule

from models.db import session_scope
from models.settings import Settings
from models.tables import IdempotencyRecord, OAuthSession
from models.types import utcnow
from models.web_tables import OAuthRefreshLease
from workers.periodic import periodic_schedule
from workflows.housekeeping import HousekeepingInput, HousekeepingReport, HousekeepingWorkflow

if TYPE_CHECKING:
    from workers.worker import WorkerParts

log = logging.getLogger("huddle.housekeeping")


class HousekeepingActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn(name="purge_expired_rows")
    def purge_expired_rows(self, params: HousekeepingInput) -> HousekeepingReport:
        """Delete what is past its time; each table in its own short transaction, safe to repeat."""
        now = utcnow()
        report = HousekeepingReport()
        # The same cut-off as SessionStore.load: such a session can no longer sign anyone in.
        too_old = now - timedelta(seconds=params.session_max_age_seconds)
        with session_scope(self._engine) as session:
            stale = select(col(OAuthSession.id)).where(col(OAuthSession.created_at) < too_old)
            session.execute(delete(OAuthRefreshLease).where(col(OAuthRefreshLease.session_id).in_(stale)))
            report.web_sessions = _count(
                session.execute(delete(OAuthSession).where(col(OAuthSession.created_at) < too_old))
            )
        with session_scope(self._engine) as session:
            # An expired lease binds no one (the next refresh takes it over): left by a crashed replica.
            report.refresh_leases = _count(
                session.execute(delete(OAuthRefreshLease).where(col(OAuthRefreshLease.until) < now))
            )
        with session_scope(self._engine) as session:
            # An expired key is treated as absent by `claim` already.
            report.idempotency_records = _count(
                session.execute(delete(IdempotencyRecord).where(col(IdempotencyRecord.expires_at) < now))
            )
        if report.web_sessions or report.refresh_leases or report.idempotency_records:
            log.info(
                "purged %d web sessions, %d refresh leases, %d idempotency keys",
                report.web_sessions,
                report.refresh_leases,
                report.idempotency_records,
            )
        return report


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def add_housekeeping_parts(parts: WorkerParts, settings: Settings, engine: Engine) -> None:
    """The bookings task queue runs housekeeping (it is the role that registers the schedules)."""
    housekeeping = HousekeepingActivities(engine)
    parts.workflows["bookings"].append(HousekeepingWorkflow)
    parts.activities["bookings"].append(housekeeping.purge_expired_rows)


def housekeeping_schedule(settings: Settings) -> tuple[str, Schedule]:
    """Deletes web sessions, refresh leases and idempotency keys past their time."""
    return periodic_schedule(
        settings,
        "housekeeping",
        HousekeepingWorkflow.run,
        HousekeepingInput(session_max_age_seconds=settings.web_session_max_age_seconds),
        role="bookings",
        every_seconds=settings.housekeeping_interval_seconds,
    )
