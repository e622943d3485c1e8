"""Bookings from request to confirmed through the real Temporal dev server and workers.

Each client asks for a meeting (`match` returns once the slot is held: the latency measured), then
finalizes it; bookings/s counts confirmed bookings. The baseline, in the same run on the same
server: a trivial workflow with as many activities as a booking runs before it is confirmed.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.booking_commands import request_booking, send_command
from bench.table import Row, percentile, row
from bench.trivial_workflow import TrivialWorkflow, noop
from kernel.booking.ids import booking_id, workflow_id
from kernel.booking.messages import BookingRequest, CommandInput
from models.db import make_engine, session_scope
from models.migrate import migrate
from models.settings import Settings
from models.tables import OfferIndex, User
from models.types import utcnow
from workers.devserver import SEARCH_ATTRIBUTES, temporal_binary
from workers.worker import build_workers

# At least: open_booking, screen_request, match_and_hold, record_transition (confirmed),
# enqueue_notifications ×2 (held, confirmed), create_calendar_events. The baseline uses the count
# read off a warm-up booking's history in the same run (mail sends and the like come and go).
ACTIVITIES_TO_CONFIRMED = 7
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _seed_hosts(engine: Engine, hosts: int) -> list[tuple[str, str]]:
    offers = []
    record = {
        "$type": "com.huddle.slotOffer",
        "title": "Bench hours",
        "timezone": "Europe/Paris",
        "windows": [{"days": ALL_DAYS, "start": "08:00", "end": "20:00"}],
        "durations": [30],
        "slotStepMinutes": 15,
        "minNoticeMinutes": 60,
        "horizonDays": 60,
        "bufferAfterMinutes": 5,
        "createdAt": "2026-11-01T00:00:00.000Z",
    }
    with session_scope(engine) as session:
        for n in range(hosts):
            did = f"did:plc:benchhost{n:015d}"
            uri = f"at://{did}/com.huddle.slotOffer/3kbench{n:05d}"
            session.add(User(did=did, handle=f"host{n}.bench.test", email=f"host{n}@example.test"))
            session.add(
                OfferIndex(
                    uri=uri,
                    did=did,
                    rkey=uri.rsplit("/", 1)[1],
                    cid="bafybench",
                    record=record,
                    title="Bench hours",
                    timezone="Europe/Paris",
                )
            )
            offers.append((did, uri))
    return offers


async def _bookings(
    client: Client,
    settings: Settings,
    engine: Engine,
    offers: list[tuple[str, str]],
    count: int,
    clients: int,
    ids: list[str] | None = None,
) -> tuple[float, list[float], int]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)
    match_ms: list[float] = []
    confirmed = 0

    async def guest_client() -> None:
        nonlocal confirmed
        while not queue.empty():
            n = queue.get_nowait()
            host, uri = offers[n % len(offers)]
            guest, key = f"did:plc:benchguest{n:014d}", uuid.uuid4().hex
            req = BookingRequest(
                booking_id=booking_id(guest, key),
                guest_did=guest,
                host_did=host,
                offer_uri=uri,
                duration_minutes=30,
                requested_at=utcnow(),
                idempotency_key=key,
                guest_email="guest@example.test",
                queue_prefix=settings.task_queue_prefix,
            )
            started = time.perf_counter()
            view = await request_booking(client, settings, engine, req)
            match_ms.append((time.perf_counter() - started) * 1000)
            if view.state == "held":
                done = await send_command(client, engine, req.booking_id, "finalize", CommandInput(guest))
                confirmed += done.state == "confirmed"
                if ids is not None and done.state == "confirmed":
                    ids.append(req.booking_id)

    started = time.perf_counter()
    await asyncio.gather(*(guest_client() for _ in range(clients)))
    return time.perf_counter() - started, match_ms, confirmed


async def _activities_per_booking(client: Client, booking: str) -> int:
    """Activities a confirmed booking ran, once its side effects (mail, events) are done."""
    handle = client.get_workflow_handle(workflow_id(booking))
    seen, stable_since = -1, time.monotonic()
    while time.monotonic() - stable_since < 1.0:
        count = 0
        async for event in handle.fetch_history_events():
            count += event.HasField("activity_task_scheduled_event_attributes")
        if count != seen:
            seen, stable_since = count, time.monotonic()
        await asyncio.sleep(0.2)
    return max(seen, ACTIVITIES_TO_CONFIRMED)


async def _baseline(
    client: Client, queue: str, count: int, clients: int, activities: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    pending = list(range(count))

    async def one_client() -> None:
        while pending:
            pending.pop()
            started = time.perf_counter()
            await client.execute_workflow(
                TrivialWorkflow.run, activities, id=f"bench-{uuid.uuid4()}", task_queue=queue
            )
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    return time.perf_counter() - started, latencies


async def _run(count: int, clients: int, hosts: int, database_url: str | None) -> list[Row]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_binary()),
        search_attributes=[SearchAttributeKey.for_keyword(n) for n in SEARCH_ATTRIBUTES],
        dev_server_log_level="error",
    )
    tmp = Path(tempfile.mkdtemp(prefix="huddle-bench-"))
    url = database_url or f"sqlite:///{tmp / 'bench.db'}"
    migrate(url)
    engine = make_engine(url, pool_size=20)
    settings = Settings(_env_file=None, dev_mode=True, database_url=url, task_queue_prefix="bench")  # type: ignore[call-arg]
    executor = ThreadPoolExecutor(max_workers=64)
    workers = build_workers(env.client, settings, engine, executor=executor)
    baseline_worker = Worker(
        env.client,
        task_queue="bench-baseline",
        workflows=[TrivialWorkflow],
        activities=[noop],
        activity_executor=executor,
    )
    try:
        for w in [*workers, baseline_worker]:
            await w.__aenter__()
        offers = _seed_hosts(engine, hosts)
        # Warm up both paths (imports, connections, sticky caches), then measure.
        warm: list[str] = []
        await _bookings(env.client, settings, engine, offers, clients, clients, warm)
        activities = await _activities_per_booking(env.client, warm[0])
        await _baseline(env.client, "bench-baseline", clients, clients, activities)
        base_seconds, base_ms = await _baseline(env.client, "bench-baseline", count, clients, activities)
        book_seconds, match_ms, confirmed = await _bookings(
            env.client, settings, engine, offers, count, clients
        )
    finally:
        for w in [*workers, baseline_worker]:
            await w.__aexit__(None, None, None)
        executor.shutdown()
        engine.dispose()
        await env.shutdown()
    db = "postgres" if url.startswith("postgresql") else "sqlite"
    case = f"{count} bookings, {clients} clients, {hosts} hosts, {db}; baseline {activities} activities"
    return [
        row(
            "bookings",
            case,
            "confirmed bookings/s (vs trivial wf/s)",
            confirmed / book_seconds,
            count / base_seconds,
        ),
        row(
            "bookings",
            case,
            "match → held p50 ms (vs trivial wf p50)",
            percentile(match_ms, 50),
            percentile(base_ms, 50),
        ),
        row(
            "bookings",
            case,
            "match → held p99 ms (vs trivial wf p99)",
            percentile(match_ms, 99),
            percentile(base_ms, 99),
        ),
    ]


def run(count: int = 200, clients: int = 20, hosts: int = 10, database_url: str | None = None) -> list[Row]:
    return asyncio.run(_run(count, clients, hosts, database_url))
