"""Push channels (Google events.watch, Graph subscriptions) and what changed when one fires.

Channels are kept alive by the maintenance schedule: created for every busy calendar, renewed before
they expire (Google channels cannot be renewed, so a new one replaces the old, which is stopped;
Graph subscriptions are extended, which also reauthorizes them), stopped for calendars no longer
watched. The row is written before the provider is asked, so a notification that arrives at once
(Google's `sync`, Graph's first change) already finds its channel.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from clients.calendar.accounts import CalendarAccounts
from clients.calendar.busy_cache import BusyCache
from clients.calendar.errors import ProviderNotFound, SyncTokenExpired
from clients.calendar.providers import ChangeSet
from clients.secrets import digest
from kernel.calendar.intervals import Interval
from models.calendar_tables import CalendarChannel, CalendarSyncState
from models.db import session_scope
from models.settings import Settings
from models.tables import Booking, CalendarConnector
from models.types import utcnow

log = logging.getLogger("huddle.calendars.push")
ACTIVE, STOPPED = "active", "stopped"


@dataclass
class ChannelReport:
    created: int = 0
    renewed: int = 0
    stopped: int = 0


@dataclass
class AffectedHolds:
    owner_did: str
    workflow_ids: list[str] = field(default_factory=list)
    changes: ChangeSet = field(default_factory=ChangeSet)


class PushChannels:
    def __init__(
        self,
        settings: Settings,
        accounts: CalendarAccounts,
        cache: BusyCache,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._settings = settings
        self._accounts = accounts
        self._cache = cache
        self._engine = accounts.store.engine
        self._clock = clock

    def address(self, provider: str) -> str:
        return f"{self._settings.public_url.rstrip('/')}/webhooks/{provider}"

    # ------------------------------------------------------------------ channels

    def ensure(self, connector_id: int, *, force: bool = False) -> ChannelReport:
        """Every busy calendar watched by a channel that outlives the renewal margin; others stopped."""
        report = ChannelReport()
        connector = self._accounts.store.get(connector_id)
        if (
            connector is None
            or connector.provider not in ("google", "microsoft")
            or connector.state == "needs_reauth"
            or not self._settings.calendar_webhooks_enabled
        ):
            return report
        wanted = set(connector.busy_calendar_ids)
        channels = self.active(connector_id)
        for channel in channels:
            if channel.calendar_id not in wanted:
                self._stop(connector, channel)
                report.stopped += 1
        margin = self._clock() + timedelta(seconds=self._settings.calendar_channel_renew_before_seconds)
        for calendar_id in sorted(wanted):
            current = [c for c in channels if c.calendar_id == calendar_id]
            newest = max(current, key=lambda c: c.expires_at, default=None)
            if newest is not None and not force and newest.expires_at > margin:
                continue
            if connector.provider == "microsoft" and newest is not None and newest.external_id:
                if self._renew_subscription(connector, newest):
                    report.renewed += 1
                    continue
            self._open(connector, calendar_id)
            report.created += 1
            for old in current:
                self._stop(connector, old)
                report.stopped += 1
        return report

    def active(self, connector_id: int) -> list[CalendarChannel]:
        with Session(self._engine, expire_on_commit=False) as session:
            query = select(CalendarChannel).where(
                CalendarChannel.connector_id == connector_id, CalendarChannel.state == ACTIVE
            )
            return list(session.exec(query))

    def stop_all(self, connector: CalendarConnector) -> int:
        assert connector.id is not None
        channels = self.active(connector.id)
        for channel in channels:
            self._stop(connector, channel)
        return len(channels)

    def _open(self, connector: CalendarConnector, calendar_id: str) -> None:
        assert connector.id is not None
        token = secrets.token_urlsafe(32)
        channel_id = uuid.uuid4().hex
        expires_at = self._clock() + timedelta(seconds=self._settings.calendar_channel_ttl_seconds)
        with session_scope(self._engine) as session:
            session.add(
                CalendarChannel(
                    id=channel_id,
                    connector_id=connector.id,
                    provider=connector.provider,
                    calendar_id=calendar_id,
                    token_digest=digest(token),
                    expires_at=expires_at,
                )
            )
        try:
            if connector.provider == "google":
                client = self._accounts.google_client(connector.id)
                try:
                    if self._sync_token(connector.id, calendar_id) is None:
                        # Start incremental sync now, so changes after the watch are all seen.
                        self._sync_google(client, connector.id, calendar_id)
                    grant = client.watch(calendar_id, channel_id, token, self.address("google"), expires_at)
                finally:
                    client.close()
            else:
                ms = self._accounts.microsoft_client(connector)
                try:
                    grant = ms.subscribe(calendar_id, token, self.address("microsoft"), expires_at)
                finally:
                    ms.close()
        except Exception:
            self._set(channel_id, state=STOPPED)
            raise
        self._set(channel_id, external_id=grant.external_id, expires_at=grant.expires_at)

    def _renew_subscription(self, connector: CalendarConnector, channel: CalendarChannel) -> bool:
        assert channel.external_id is not None
        ms = self._accounts.microsoft_client(connector)
        try:
            wanted = self._clock() + timedelta(seconds=self._settings.calendar_channel_ttl_seconds)
            expires_at = ms.renew(channel.external_id, wanted)
        except ProviderNotFound:
            self._set(channel.id, state=STOPPED)
            return False
        finally:
            ms.close()
        self._set(channel.id, expires_at=expires_at)
        return True

    def _stop(self, connector: CalendarConnector, channel: CalendarChannel) -> None:
        self._set(channel.id, state=STOPPED)
        if not channel.external_id or connector.id is None:
            return
        if connector.provider == "google":
            client = self._accounts.google_client(connector.id)
            try:
                client.stop(channel.id, channel.external_id)
            finally:
                client.close()
        else:
            ms = self._accounts.microsoft_client(connector)
            try:
                ms.unsubscribe(channel.external_id)
            finally:
                ms.close()

    def mark_stopped(self, channel_id: str) -> None:
        self._set(channel_id, state=STOPPED)

    def _set(self, channel_id: str, **values: object) -> None:
        with session_scope(self._engine) as session:
            session.execute(
                update(CalendarChannel).where(col(CalendarChannel.id) == channel_id).values(**values)
            )

    # ------------------------------------------------------------------ changes

    def changes(self, connector_id: int, calendar_id: str | None, event_ids: list[str]) -> ChangeSet:
        """What changed: Google from its sync token, Graph from the events the notification named."""
        connector = self._accounts.store.get(connector_id)
        if connector is None:
            return ChangeSet()
        if connector.provider == "google" and calendar_id:
            client = self._accounts.google_client(connector_id)
            try:
                return self._sync_google(client, connector_id, calendar_id)
            finally:
                client.close()
        if connector.provider == "microsoft" and event_ids:
            ms = self._accounts.microsoft_client(connector)
            try:
                found = ChangeSet()
                for event_id in event_ids:
                    span = ms.event_span(event_id)
                    if span is None:
                        found.unknown = True  # deleted: where it was is not told
                    else:
                        found.ranges.append(span)
                return found
            finally:
                ms.close()
        return ChangeSet(unknown=True)

    def _sync_google(self, client, connector_id: int, calendar_id: str) -> ChangeSet:  # type: ignore[no-untyped-def]
        token = self._sync_token(connector_id, calendar_id)
        since = self._clock()
        try:
            found, next_token = client.changes(calendar_id, token, since)
        except SyncTokenExpired:
            log.info("sync token of %s expired: full sync", calendar_id)
            found, next_token = client.changes(calendar_id, None, since)
            found.unknown = True
        self._save_sync_token(connector_id, calendar_id, next_token)
        return found

    def _sync_token(self, connector_id: int, calendar_id: str) -> str | None:
        with Session(self._engine) as session:
            row = session.get(CalendarSyncState, (connector_id, calendar_id))
            return row.sync_token if row else None

    def _save_sync_token(self, connector_id: int, calendar_id: str, token: str) -> None:
        with session_scope(self._engine) as session:
            row = session.get(CalendarSyncState, (connector_id, calendar_id)) or CalendarSyncState(
                connector_id=connector_id, calendar_id=calendar_id
            )
            row.sync_token, row.synced_at = token or None, self._clock()
            session.add(row)

    def affected_holds(self, connector_id: int, changes: ChangeSet) -> AffectedHolds:
        """Held bookings of the connector's owner whose time a change may touch."""
        connector = self._accounts.store.get(connector_id)
        if connector is None:
            return AffectedHolds(owner_did="")
        owner = connector.owner_did
        with Session(self._engine) as session:
            query = select(Booking).where(
                Booking.state == "held",
                (Booking.host_did == owner) | (Booking.guest_did == owner),  # type: ignore[arg-type]
            )
            held = list(session.exec(query))
        ids = [b.workflow_id for b in held if changes.unknown or _touches(b, changes.ranges)]
        return AffectedHolds(owner_did=owner, workflow_ids=ids, changes=changes)


def _touches(booking: Booking, ranges: list[Interval]) -> bool:
    start = booking.block_start or booking.start_at
    end = booking.block_end or booking.end_at
    if start is None or end is None:
        return True
    return any(r.start < end and start < r.end for r in ranges)
