"""What crosses the boundaries of the connector workflows (one dataclass each, new fields defaulted).

Kept out of the workflow module so the sandbox passes them through: a dataclass re-imported inside
the sandbox would carry a sandboxed `datetime` the payload converter cannot build.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

CALENDAR_CHANGED_SIGNAL = "calendar_changed"


@dataclass
class MaintenanceInput:
    connector_ids: list[int] | None = None  # None: every connector
    force_channels: bool = False  # renew channels now (a lifecycle notification asked for it)


@dataclass
class ConnectorJob:
    connector_id: int
    force_channels: bool = False


@dataclass
class MaintenanceReport:
    connector_id: int = 0
    token_refreshed: bool = False
    channels_created: int = 0
    channels_renewed: int = 0
    channels_stopped: int = 0
    events_reconciled: int = 0
    skipped: str | None = None


@dataclass
class SyncInput:
    connector_id: int


@dataclass
class ChangeNotice:
    """A webhook said something changed in one of the connector's calendars."""

    connector_id: int
    calendar_id: str | None = None
    event_ids: list[str] = field(default_factory=list)
    unknown: bool = False  # no way to tell what changed (a missed notification, a full resync)


@dataclass
class TimeSpan:
    start: datetime
    end: datetime


@dataclass
class CalendarChanged:
    """The `calendar_changed` signal to a held booking: its host's or guest's calendar changed.

    `ranges` are the times of the changed events; empty with `unknown` when nobody can tell.
    """

    owner_did: str
    ranges: list[TimeSpan] = field(default_factory=list)
    unknown: bool = False


@dataclass
class ChangeOutcome:
    owner_did: str = ""
    booking_workflow_ids: list[str] = field(default_factory=list)
    ranges: list[TimeSpan] = field(default_factory=list)
    unknown: bool = False
