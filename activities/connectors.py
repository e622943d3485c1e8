"""Connector upkeep as activities: token refresh, push channel renewal, event reconcile, change sync."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, col, select
from temporalio import activity

from activities.calendar_events import as_activity_errors
from clients.calendar.connected import CREATED, FAILED, PENDING, ConnectedCalendars
from clients.calendar.errors import ProviderAuthError
from clients.calendar.providers import ChangeSet
from clients.calendar.push import PushChannels
from models.calendar_tables import CalendarEvent
from models.settings import Settings
from models.tables import Booking
from workflows.connector_messages import (
    ChangeNotice,
    ChangeOutcome,
    ConnectorJob,
    MaintenanceInput,
    MaintenanceReport,
    TimeSpan,
)


class ConnectorActivities:
    def __init__(self, settings: Settings, calendars: ConnectedCalendars) -> None:
        self._settings = settings
        self._calendars = calendars
        self._accounts = calendars.accounts
        self._store = calendars.accounts.store
        self._engine = self._store.engine
        self.push = PushChannels(settings, calendars.accounts, calendars.cache)

    @activity.defn(name="connectors_to_maintain")
    def connectors_to_maintain(self, params: MaintenanceInput) -> list[int]:
        return self._store.all_ids()

    @activity.defn(name="maintain_connector")
    def maintain_connector(self, job: ConnectorJob) -> MaintenanceReport:
        return as_activity_errors(lambda: self._maintain(job))

    def _maintain(self, job: ConnectorJob) -> MaintenanceReport:
        report = MaintenanceReport(connector_id=job.connector_id)
        connector = self._store.get(job.connector_id)
        if connector is None:
            report.skipped = "gone"
            return report
        if connector.state == "needs_reauth":
            report.skipped = "needs_reauth"
            return report
        try:
            if connector.provider in ("google", "microsoft"):
                within = timedelta(seconds=self._settings.calendar_token_refresh_before_seconds)
                report.token_refreshed = self._accounts.tokens(job.connector_id).refresh_if_expiring(within)
            channels = self.push.ensure(job.connector_id, force=job.force_channels)
            report.channels_created = channels.created
            report.channels_renewed = channels.renewed
            report.channels_stopped = channels.stopped
            report.events_reconciled = self._reconcile(job.connector_id)
        except ProviderAuthError as exc:
            # Marked needs_reauth (and the owner told) where the refusal was seen; nothing to retry.
            self._store.mark_needs_reauth(job.connector_id, str(exc))
            report.skipped = "needs_reauth"
        return report

    def _reconcile(self, connector_id: int) -> int:
        """Events a broken connector could not write or remove, now that it works again."""
        with Session(self._engine) as session:
            query = (
                select(CalendarEvent, Booking)
                .join(Booking, col(Booking.id) == CalendarEvent.booking_id)
                .where(
                    CalendarEvent.connector_id == connector_id,
                    col(CalendarEvent.state).in_((PENDING, FAILED, CREATED)),
                )
            )
            pairs = list(session.exec(query))
        done = 0
        for row, booking in pairs:
            if row.state in (PENDING, FAILED) and booking.state == "confirmed":
                done += self._calendars.create_events(booking)
            elif row.state == CREATED and booking.state != "confirmed":
                done += self._calendars.remove_events(booking)
        return done

    @activity.defn(name="sync_calendar_changes")
    def sync_calendar_changes(self, notice: ChangeNotice) -> ChangeOutcome:
        return as_activity_errors(lambda: self._sync(notice))

    def _sync(self, notice: ChangeNotice) -> ChangeOutcome:
        changes = ChangeSet(unknown=True)
        if not notice.unknown:
            try:
                changes = self.push.changes(notice.connector_id, notice.calendar_id, notice.event_ids)
            except ProviderAuthError:
                pass  # cannot tell what changed: every hold of the owner re-checks
        affected = self.push.affected_holds(notice.connector_id, changes)
        return ChangeOutcome(
            owner_did=affected.owner_did,
            booking_workflow_ids=affected.workflow_ids,
            ranges=[TimeSpan(r.start, r.end) for r in changes.ranges],
            unknown=changes.unknown,
        )
