"""/healthz, /readyz and /version as an operator or a load balancer sees them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from api.main import create_app
from models.settings import Settings
from tests.conftest import make_settings


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://huddle.test") as client:
            yield client


async def test_healthz_and_version(settings: Settings) -> None:
    async with serve(create_app(settings)) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        version = (await client.get("/version")).json()
        assert version["serviceDid"] == "did:web:localhost"
        assert (await client.get("/openapi.json")).status_code == 200


async def test_readyz_ready_when_database_temporal_and_workers_are(worker: Settings) -> None:
    async with serve(create_app(worker)) as client:
        # Pollers show up a moment after the worker starts, as a load balancer would see.
        for _ in range(50):
            resp = await client.get("/readyz")
            if resp.status_code == 200:
                break
            await asyncio.sleep(0.2)
    body = resp.json()
    assert resp.status_code == 200, body
    assert {name for name, c in body["checks"].items() if c["ok"]} == {
        "database",
        "temporal",
        "workers",
        "firehose",
    }
    assert body["checks"]["firehose"]["detail"].startswith("idle")


async def test_readyz_names_missing_workers(settings: Settings) -> None:
    # Nobody polls this test's task queues.
    async with serve(create_app(settings)) as client:
        resp = await client.get("/readyz")
    body = resp.json()
    assert resp.status_code == 503
    assert body["checks"]["workers"]["ok"] is False
    assert settings.task_queue("bookings") in body["checks"]["workers"]["detail"]
    assert body["checks"]["database"]["ok"] and body["checks"]["temporal"]["ok"]


async def test_readyz_names_unreachable_temporal_and_database() -> None:
    settings = make_settings("postgresql+psycopg://nobody@127.0.0.1:1/none", temporal_address="127.0.0.1:1")
    async with serve(create_app(settings)) as client:
        resp = await asyncio.wait_for(client.get("/readyz"), 20)
    body = resp.json()
    assert resp.status_code == 503
    assert not body["checks"]["database"]["ok"] and "unreachable" in body["checks"]["database"]["detail"]
    assert not body["checks"]["temporal"]["ok"]


async def test_readyz_reports_configured_but_unconnected_firehose(worker: Settings) -> None:
    settings = worker.model_copy(update={"relay_url": "ws://127.0.0.1:1"})
    async with serve(create_app(settings)) as client:
        body = (await client.get("/readyz")).json()
    assert body["checks"]["firehose"] == {"ok": False, "detail": "not connected to ws://127.0.0.1:1"}
