"""The API in-process beside workers whose Temporal client carries the tracing interceptor."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import Engine

from api.main import create_app
from models.settings import Settings
from tests.api.conftest import Api
from tests.peers.pds_peer import PdsPeer
from workers.telemetry import configure_telemetry
from workers.temporal_client import connect_temporal
from workers.worker import build_workers, run_workers


@dataclass
class TracedApi(Api):
    app: FastAPI


@pytest_asyncio.fixture
async def traced_api(settings: Settings, engine: Engine, pds_peer: PdsPeer) -> AsyncIterator[TracedApi]:
    """As `make dev` runs it: the API and the workers each on a client from `connect_temporal`."""
    settings = settings.model_copy(
        update={
            "plc_url": pds_peer.plc_url,
            "handle_resolver_urls": pds_peer.pds_url,
            "hold_seconds_override": 60,
            "worker_metrics_port": 0,  # no peer on 127.0.0.1:9464: the workers share this process
            "firehose_metrics_port": 0,  # nor a firehose consumer on 9465
        }
    )
    configure_telemetry(settings, "test")
    client = await connect_temporal(settings)
    executor = ThreadPoolExecutor(max_workers=64)
    stop = asyncio.Event()
    workers = asyncio.create_task(
        run_workers(build_workers(client, settings, engine, executor=executor), stop)
    )
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://huddle.test") as http:
                yield TracedApi(http, settings, engine, pds_peer, app)
    finally:
        stop.set()
        await workers
        executor.shutdown(wait=True)
