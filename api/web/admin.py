"""The colony: operators' pages (HUDDLE_ADMIN_DIDS only). Everything here is read-only."""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.responses import Response
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from api.deps import StateDep
from api.web.pages import PageError, PageRouter, Viewer, WebDep, render, signed_in
from models.settings import Settings
from models.tables import (
    AuditEntry,
    Booking,
    CalendarConnector,
    FirehoseCursor,
    OAuthSession,
    OfferIndex,
    OutboxMessage,
    User,
)
from models.types import utcnow

router = PageRouter(prefix="/colony")
ROLES = ("bookings", "calendar", "notify", "index")
DAYS = 14
# Audit actions that end matching: the booking is held, or it was refused / found no slot.
MATCH_DONE = ("held", "no_slot", "screened", "match_failed")


def operator(request: Request) -> Viewer:
    who = signed_in(request)
    if not who.is_admin:
        raise PageError(403, "Operators only", "These pages are for the people who run this Huddle.", "")
    return who


OperatorDep = Annotated[Viewer, Depends(operator)]


@dataclass
class QueueInfo:
    name: str
    workflow_pollers: int | None = None
    activity_pollers: int | None = None
    workflow_backlog: int | None = None
    activity_backlog: int | None = None
    problem: str | None = None


@dataclass
class DayBar:
    day: date
    count: int
    median_seconds: float | None


def temporal_ui(settings: Settings) -> str:
    return (settings.temporal_ui_url or f"http://127.0.0.1:{settings.temporal_ui_port}").rstrip("/")


def workflow_link(settings: Settings, workflow_id: str) -> str:
    ns = quote(settings.temporal_namespace, safe="")
    return f"{temporal_ui(settings)}/namespaces/{ns}/workflows/{quote(workflow_id, safe='')}"


async def describe_queues(client: Client, settings: Settings) -> list[QueueInfo]:
    async def one(role: str) -> QueueInfo:
        info = QueueInfo(settings.task_queue(role))
        try:
            for kind, poll_attr, backlog_attr in (
                (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, "workflow_pollers", "workflow_backlog"),
                (TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, "activity_pollers", "activity_backlog"),
            ):
                answer = await client.workflow_service.describe_task_queue(
                    DescribeTaskQueueRequest(
                        namespace=client.namespace,
                        task_queue=TaskQueue(name=info.name),
                        task_queue_type=kind,
                        report_stats=True,
                    ),
                    timeout=timedelta(seconds=3),
                )
                setattr(info, poll_attr, len(answer.pollers))
                if answer.HasField("stats"):
                    setattr(info, backlog_attr, int(answer.stats.approximate_backlog_count))
        except Exception as exc:  # an operator page shows what it could not learn, and why
            info.problem = f"{type(exc).__name__}: {str(exc)[:200]}"
        return info

    return list(await asyncio.gather(*(one(role) for role in ROLES)))


def booking_days(session: Session, now: datetime) -> list[DayBar]:
    """Bookings asked for per day, and the median time Huddle took to answer them (held or not)."""
    since = now - timedelta(days=DAYS)
    rows = session.exec(
        select(Booking.id, Booking.created_at).where(col(Booking.created_at) >= since).limit(20_000)
    ).all()
    done = dict(
        session.exec(
            select(AuditEntry.booking_id, func.min(AuditEntry.created_at))
            .where(col(AuditEntry.action).in_(MATCH_DONE), col(AuditEntry.created_at) >= since)
            .group_by(col(AuditEntry.booking_id))
        ).all()
    )
    counts: Counter[date] = Counter()
    latencies: dict[date, list[float]] = defaultdict(list)
    for booking_id, created in rows:
        day = created.date()
        counts[day] += 1
        finished = done.get(booking_id)
        if finished is not None:
            if finished.tzinfo is None:
                finished = finished.replace(tzinfo=created.tzinfo)
            latencies[day].append(max(0.0, (finished - created).total_seconds()))
    first = (now - timedelta(days=DAYS - 1)).date()
    bars = []
    for i in range(DAYS):
        day = first + timedelta(days=i)
        lat = latencies.get(day)
        bars.append(DayBar(day, counts.get(day, 0), statistics.median(lat) if lat else None))
    return bars


def colony_facts(engine: Any, now: datetime) -> dict[str, Any]:
    """Everything the page shows from the database (one read-only session, off the event loop)."""
    with Session(engine) as session:
        connectors = session.exec(
            select(CalendarConnector).order_by(col(CalendarConnector.updated_at).desc())
        ).all()
        cursors = session.exec(select(FirehoseCursor)).all()
        recent = session.exec(select(Booking).order_by(col(Booking.created_at).desc()).limit(20)).all()
        users = session.exec(select(User).order_by(col(User.updated_at).desc()).limit(25)).all()
        people = {b.host_did for b in recent} | {b.guest_did for b in recent}
        named = session.exec(select(User).where(col(User.did).in_(people))).all()
        handles = {u.did: f"@{u.handle}" for u in named if u.handle}
        days = booking_days(session, now)
        return {
            "users": users,
            "user_count": session.exec(select(func.count()).select_from(User)).one(),
            "sessions": dict(
                session.exec(select(OAuthSession.did, func.count()).group_by(col(OAuthSession.did))).all()
            ),
            "offer_count": session.exec(
                select(func.count()).select_from(OfferIndex).where(col(OfferIndex.deleted).is_(False))
            ).one(),
            "by_state": dict(
                session.exec(select(Booking.state, func.count()).group_by(col(Booking.state))).all()
            ),
            "connectors": connectors,
            "connector_states": sorted(Counter((c.provider, c.state) for c in connectors).items()),
            "cursors": [
                (c, (now - c.heartbeat_at).total_seconds() if c.heartbeat_at else None) for c in cursors
            ],
            "recent": recent,
            "handles": handles,
            "failed_mail": session.exec(
                select(OutboxMessage)
                .where(col(OutboxMessage.last_error).is_not(None))
                .order_by(col(OutboxMessage.created_at).desc())
                .limit(20)
            ).all(),
            "mail": session.exec(
                select(OutboxMessage).order_by(col(OutboxMessage.created_at).desc()).limit(20)
            ).all(),
            "rejections": _offer_rejections(session),
            "days": days,
            "chart": _bars(days),
        }


@router.get("")
async def colony(request: Request, state: StateDep, web: WebDep, who: OperatorDep) -> Response:
    """Users, connectors, bookings by state, the firehose, task queues, errors, mail, and two charts."""
    now = utcnow()
    settings = web.settings
    facts, queues = await asyncio.gather(
        run_in_threadpool(colony_facts, web.engine, now), describe_queues(state.temporal, settings)
    )
    return await run_in_threadpool(
        render,
        request,
        "colony.html",
        viewer=who,
        now=now,
        queues=queues,
        link=lambda wid: workflow_link(settings, wid),
        temporal_ui=temporal_ui(settings),
        **facts,
    )


def _offer_rejections(session: Session) -> list[Any]:
    try:
        from models.index_tables import OfferRejection
    except ImportError:  # the index's own tables are optional to this page
        return []
    return list(
        session.exec(select(OfferRejection).order_by(col(OfferRejection.seen_at).desc()).limit(10)).all()
    )


@dataclass
class Chart:
    width: int
    height: int
    bars: list[dict[str, Any]]
    max_count: int
    max_latency: float


def _bars(days: list[DayBar]) -> Chart:
    """Geometry of the two bar charts (server-drawn SVG: no JavaScript needed to read them)."""
    width, height, pad = 560, 140, 24
    step = (width - 2 * pad) / max(1, len(days))
    max_count = max([d.count for d in days] + [1])
    max_latency = max([d.median_seconds or 0.0 for d in days] + [0.001])
    bars = []
    for i, d in enumerate(days):
        count_h = (height - 2 * pad) * d.count / max_count
        lat_h = (height - 2 * pad) * (d.median_seconds or 0.0) / max_latency
        bars.append(
            {
                "x": pad + i * step + 2,
                "w": max(2.0, step - 4),
                "count": d.count,
                "count_y": height - pad - count_h,
                "count_h": count_h,
                "lat": d.median_seconds,
                "lat_y": height - pad - lat_h,
                "lat_h": lat_h,
                "label": d.day.strftime("%d"),
                "day": d.day.isoformat(),
            }
        )
    return Chart(width, height, bars, max_count, max_latency)
