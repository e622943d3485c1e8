"""Readiness checks: each part the process serves, probed with a timeout and named in the answer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, text
from sqlmodel import Session, select
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from models.settings import Settings
from models.tables import FirehoseCursor
from models.types import utcnow
from workers.temporal_client import all_task_queues

CHECK_TIMEOUT = 3.0
FIREHOSE_HEARTBEAT_MAX_AGE = timedelta(seconds=30)


@dataclass
class Check:
    ok: bool
    detail: str


def _database(engine: Engine) -> Check:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return Check(True, engine.dialect.name)


async def check_database(engine: Engine) -> Check:
    try:
        return await asyncio.wait_for(asyncio.to_thread(_database, engine), CHECK_TIMEOUT)
    except Exception as exc:  # a readiness probe reports failures, it does not raise them
        return Check(False, f"unreachable: {type(exc).__name__}")


async def check_temporal(client: Client) -> Check:
    try:
        await asyncio.wait_for(client.service_client.check_health(), CHECK_TIMEOUT)
        return Check(True, f"{client.service_client.config.target_host} ({client.namespace})")
    except Exception as exc:
        return Check(False, f"unreachable: {type(exc).__name__}")


async def check_pollers(client: Client, settings: Settings) -> Check:
    """Every task queue has a workflow or activity poller (Temporal reports recent pollers)."""
    missing = []
    try:
        for queue in all_task_queues(settings):
            polled = False
            for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
                resp = await asyncio.wait_for(
                    client.workflow_service.describe_task_queue(
                        DescribeTaskQueueRequest(
                            namespace=client.namespace, task_queue=TaskQueue(name=queue), task_queue_type=kind
                        )
                    ),
                    CHECK_TIMEOUT,
                )
                polled = polled or bool(resp.pollers)
            if not polled:
                missing.append(queue)
    except Exception as exc:
        return Check(False, f"cannot describe task queues: {type(exc).__name__}")
    if missing:
        return Check(False, "no worker polling " + ", ".join(missing))
    return Check(True, "all task queues polled")


def _firehose(engine: Engine, settings: Settings) -> Check:
    if not settings.relay_url:
        return Check(True, "idle (no relay configured)")
    with Session(engine) as session:
        row = session.exec(select(FirehoseCursor).where(FirehoseCursor.source == settings.relay_url)).first()
    if row is None or not row.connected or row.heartbeat_at is None:
        return Check(False, f"not connected to {settings.relay_url}")
    if utcnow() - row.heartbeat_at > FIREHOSE_HEARTBEAT_MAX_AGE:
        return Check(False, f"no heartbeat since {row.heartbeat_at.isoformat()}")
    return Check(True, f"connected to {settings.relay_url}, cursor {row.cursor}")


async def check_firehose(engine: Engine, settings: Settings) -> Check:
    try:
        return await asyncio.wait_for(asyncio.to_thread(_firehose, engine, settings), CHECK_TIMEOUT)
    except Exception as exc:
        return Check(False, f"unknown: {type(exc).__name__}")
