"""The calendar role's parts (workflows and activities on huddle-calendar) and its schedule."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine
from temporalio.client import Client, Schedule

from activities.calendar_events import CalendarActivities
from activities.connectors import ConnectorActivities
from clients.calendar.connected import ConnectedCalendars
from models.settings import Settings
from workers.periodic import periodic_schedule
from workflows.connector_maintenance import CalendarSyncWorkflow, ConnectorMaintenanceWorkflow
from workflows.connector_messages import MaintenanceInput

if TYPE_CHECKING:
    from workers.worker import WorkerParts


def connected_calendars(settings: Settings, engine: Engine) -> ConnectedCalendars:
    """The BusySource and EventWriter over the owners' connected calendars."""
    return ConnectedCalendars(settings, engine)


def add_calendar_parts(parts: WorkerParts, settings: Settings, engine: Engine, client: Client) -> None:
    calendars = connected_calendars(settings, engine)
    events = CalendarActivities(engine, calendars)
    connectors = ConnectorActivities(settings, calendars)
    parts.workflows["calendar"] += [ConnectorMaintenanceWorkflow, CalendarSyncWorkflow]
    parts.activities["calendar"] += [
        events.create_calendar_events,
        events.update_calendar_events,
        events.remove_calendar_events,
        connectors.connectors_to_maintain,
        connectors.maintain_connector,
        connectors.sync_calendar_changes,
    ]


def calendar_schedules(settings: Settings) -> list[tuple[str, Schedule]]:
    """Refreshes access tokens and renews watch channels / subscriptions before they lapse."""
    return [
        periodic_schedule(
            settings,
            "connector-maintenance",
            ConnectorMaintenanceWorkflow.run,
            MaintenanceInput(),
            role="calendar",
            every_seconds=settings.calendar_maintenance_interval_seconds,
        )
    ]


async def request_maintenance(
    client: Client, settings: Settings, connector_id: int, *, force_channels: bool = False
) -> None:
    """Maintain one connector now: start its maintenance run, or, when one is going, signal it to run
    once more (signal-with-start) — a run already past the step a change needs would miss it."""
    await client.start_workflow(
        ConnectorMaintenanceWorkflow.run,
        MaintenanceInput(connector_ids=[connector_id], force_channels=force_channels),
        id=maintenance_workflow_id(settings, connector_id),
        task_queue=settings.task_queue("calendar"),
        start_signal="again",
        start_signal_args=[force_channels],
    )


def maintenance_workflow_id(settings: Settings, connector_id: int) -> str:
    return f"{settings.task_queue_prefix}-connector-{connector_id}-maintenance"


def sync_workflow_id(settings: Settings, connector_id: int) -> str:
    return f"{settings.task_queue_prefix}-connector-{connector_id}-sync"
