"""As `make dev` runs it: the API and `huddle worker` in separate processes, one booking one trace."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine

from api.main import create_app
from models.settings import Settings
from tests.api.conftest import Api
from tests.operations.processes import huddle_process
from tests.operations.scrape import free_port
from tests.peers.pds_peer import PdsPeer
from workers.telemetry import current_telemetry


@pytest.fixture
def worker_process(settings: Settings, pds_peer: PdsPeer, tmp_path: Path) -> Iterator[str]:
    """`huddle worker` for this test's task queues, in its own process; yields its metrics URL."""
    port = free_port()
    env = {
        "HUDDLE_DATABASE_URL": settings.database_url,
        "HUDDLE_TEMPORAL_ADDRESS": settings.temporal_address,
        "HUDDLE_TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "HUDDLE_TASK_QUEUE_PREFIX": settings.task_queue_prefix,
        "HUDDLE_PLC_URL": pds_peer.plc_url,
        "HUDDLE_HANDLE_RESOLVER_URLS": pds_peer.pds_url,
        "HUDDLE_HOLD_SECONDS_OVERRIDE": "60",
        "HUDDLE_MAIL_SINK_DIR": str(tmp_path / "mail"),
        "HUDDLE_WORKER_METRICS_PORT": str(port),
    }
    with huddle_process("worker", env, tmp_path):
        yield f"http://127.0.0.1:{port}"


@pytest_asyncio.fixture
async def dev_api(
    settings: Settings, engine: Engine, pds_peer: PdsPeer, worker_process: str
) -> AsyncIterator[Api]:
    async with httpx.AsyncClient() as probe:
        for _ in range(300):
            try:
                if (await probe.get(f"{worker_process}/metrics")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        else:
            pytest.fail("huddle worker did not serve /metrics within 30 s")
    settings = settings.model_copy(
        update={
            "plc_url": pds_peer.plc_url,
            "handle_resolver_urls": pds_peer.pds_url,
            "worker_metrics_port": 0,
            "debug_peer_urls": worker_process,
        }
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://huddle.test") as http:
            yield Api(http, settings, engine, pds_peer)


async def test_tracez_shows_one_trace_across_the_api_and_worker_processes(
    dev_api: Api, worker_process: str
) -> None:
    api = dev_api
    host, _ = api.host()
    guest = api.pds.create_account("guest")
    held = (await api.call(guest, "com.huddle.match", {"host": host.did, "durationMinutes": 30})).json()
    assert held["state"] == "held", held

    ops = {op["operation"]: op for op in (await api.http.get("/debug/tracez")).json()["operations"]}
    trace_id = ops["POST /xrpc/com.huddle.match"]["recent"][0]["traceId"]
    # The API process itself never ran the workflow: its own spans of this trace stop at the Temporal
    # call. (Only this trace: earlier tests in this process may have run in-process workers.)
    telemetry = current_telemetry()
    assert telemetry is not None
    local = [s["name"] for s in telemetry.spans.trace(trace_id)]
    assert "POST /xrpc/com.huddle.match" in local
    assert not any(name.startswith("RunWorkflow:") for name in local), local

    merged = (await api.http.get("/debug/tracez", params={"trace": trace_id})).json()
    assert merged["peers"] == {worker_process: "ok"}
    names = [s["name"] for s in merged["spans"]]
    assert "POST /xrpc/com.huddle.match" in names
    assert "StartUpdateWithStartWorkflow:BookingWorkflow" in names
    assert "RunWorkflow:BookingWorkflow" in names and "RunActivity:match_and_hold" in names, names
    ids = {s["spanId"] for s in merged["spans"]}
    assert [s["name"] for s in merged["spans"] if s["parentSpanId"] not in ids] == [
        "POST /xrpc/com.huddle.match"
    ]

    # The worker counts the transitions it wrote, on its own /metrics.
    async with httpx.AsyncClient() as probe:
        worker_metrics = (await probe.get(f"{worker_process}/metrics")).text
    assert 'huddle_booking_transitions_total{action="held",state="held"} 1.0' in worker_metrics
