"""Which workflows and activities each task queue role serves, with their clients injected."""

from __future__ import annotations

from sqlalchemy import Engine
from temporalio.client import Client

from activities.bookings import BookingActivities
from activities.calendar_wiring import connected_calendars
from activities.hold_sweep import HoldSweepActivities
from clients.graph import follow_graph
from models.settings import Settings
from workers.worker import WorkerParts
from workflows.booking import BookingWorkflow
from workflows.hold_sweep import HoldSweepWorkflow


def add_booking_parts(parts: WorkerParts, settings: Settings, engine: Engine, client: Client) -> None:
    calendars = connected_calendars(settings, engine)
    bookings = BookingActivities(engine, busy=calendars, graph=follow_graph(engine, settings))
    sweep = HoldSweepActivities(engine, client)
    parts.workflows["bookings"] += [BookingWorkflow, HoldSweepWorkflow]
    parts.activities["bookings"] += [
        bookings.open_booking,
        bookings.screen_request,
        bookings.match_and_hold,
        bookings.recheck_hold,
        bookings.reschedule_booking,
        bookings.record_transition,
        sweep.sweep_expired_holds,
    ]
