"""`huddle worker`: serve the given task queue roles until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio

from models.db import make_engine
from models.settings import get_settings
from workers.schedules import ensure_schedules
from workers.telemetry import configure_telemetry, serve_worker_metrics
from workers.temporal_client import connect_temporal, ensure_search_attributes
from workers.worker import build_workers, run_workers


async def run_worker_process(roles: list[str]) -> None:
    from workers.cli import install_stop_signals

    settings = get_settings()
    serve_worker_metrics(configure_telemetry(settings, "worker"), settings)
    engine = make_engine(settings.database_url)
    client = await connect_temporal(settings)
    await ensure_search_attributes(client)
    if "bookings" in roles:
        await ensure_schedules(client, settings)
    stop = asyncio.Event()
    install_stop_signals(asyncio.get_running_loop(), stop)
    try:
        await run_workers(build_workers(client, settings, engine, roles), stop)
    finally:
        engine.dispose()
