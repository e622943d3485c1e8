"""The Temporal worker process: one Worker per task queue role, in one process or split across many."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.worker import Worker

from activities.health import ping
from models.settings import Settings
from workers.temporal_client import QUEUE_ROLES
from workflows.health import HealthCheckWorkflow

log = logging.getLogger("huddle.worker")


@dataclass
class WorkerParts:
    """What each task queue role serves; later issues add their workflows and activities here."""

    workflows: dict[str, list[type]] = field(default_factory=dict)
    activities: dict[str, list[Callable[..., Any]]] = field(default_factory=dict)


def worker_parts(settings: Settings, engine: Engine, client: Client) -> WorkerParts:
    """Wire workflows and activities (with their clients injected) to the task queue roles."""
    from activities.calendar_wiring import add_calendar_parts
    from activities.housekeeping import add_housekeeping_parts
    from activities.notifications import add_notification_parts
    from workers.firehose.index_role import add_index_parts
    from workers.wiring import add_booking_parts  # wiring imports WorkerParts from here

    parts = WorkerParts(
        workflows={role: [] for role in QUEUE_ROLES},
        activities={role: [ping] for role in QUEUE_ROLES},
    )
    parts.workflows["bookings"].append(HealthCheckWorkflow)
    add_booking_parts(parts, settings, engine, client)
    add_index_parts(parts, settings, engine, client)
    add_calendar_parts(parts, settings, engine, client)
    add_notification_parts(parts, settings, engine, client)
    add_housekeeping_parts(parts, settings, engine)
    return parts


def build_workers(
    client: Client,
    settings: Settings,
    engine: Engine,
    roles: Sequence[str] = QUEUE_ROLES,
    executor: ThreadPoolExecutor | None = None,
) -> list[Worker]:
    """One Worker per role; activities are sync (DB and provider I/O) and run on a shared thread pool."""
    executor = executor or ThreadPoolExecutor(max_workers=64, thread_name_prefix="huddle-activity")
    parts = worker_parts(settings, engine, client)
    workers = []
    for role in roles:
        workers.append(
            Worker(
                client,
                task_queue=settings.task_queue(role),
                workflows=parts.workflows[role],
                activities=parts.activities[role],
                activity_executor=executor,
                max_concurrent_activities=64,
            )
        )
    return workers


async def run_workers(workers: list[Worker], stop: asyncio.Event) -> None:
    """Run until `stop` is set, then shut down gracefully (in-flight activities finish)."""
    async with AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        log.info("worker polling %s", ", ".join(w.task_queue for w in workers))
        await stop.wait()
