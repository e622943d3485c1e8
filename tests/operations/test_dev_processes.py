"""As `make dev` runs it: the API and `huddle worker` in separate processes, one booking one trace."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine

from api.main import create_app
from models.settings import REPO_ROOT, Settings
from tests.api.conftest import Api
from tests.peers.pds_peer import PdsPeer
from workers.telemetry import current_telemetry


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def worker_process(settings: Settings, pds_peer: PdsPeer, tmp_path: Path) -> Iterator[str]:
    """`huddle worker` for this test's task queues, in its own process; yields its metrics URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUDDLE_")}
    env |= {
        "PYTHONPATH": str(REPO_ROOT),
        "HUDDLE_DEV_MODE": "1",
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
    with open(tmp_path / "worker.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "worker"],
            cwd=tmp_path,  # no .env but this test's
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


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
