"""`huddle firehose`: the firehose consumer process.

Without HUDDLE_RELAY_URL it stays idle (and /readyz says so). With one, it indexes slotOffers,
follows touching known people, and handle and account changes (workers/firehose/consumer.py).
Its metrics and spans (one per written batch) are on HUDDLE_FIREHOSE_METRICS_PORT (9465 in dev).
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Engine

from clients.repo_reader import RepoRefresher, reader_from_settings
from models.db import make_engine
from models.settings import Settings, get_settings
from workers.firehose.consumer import ConsumerOptions, FirehoseConsumer
from workers.telemetry import configure_telemetry, firehose_metrics_port, serve_worker_metrics

log = logging.getLogger("huddle.firehose")


def build_consumer(settings: Settings, engine: Engine) -> FirehoseConsumer:
    """The consumer of `settings.relay_url`, with a repo refresher for #sync, gaps and new hosts."""
    return FirehoseConsumer(
        engine,
        settings.relay_url,
        ConsumerOptions.from_settings(settings),
        refresher=RepoRefresher(engine, reader_from_settings(settings)),
    )


async def run_firehose_process() -> None:
    from workers.cli import install_stop_signals

    settings = get_settings()
    # Served even when idle, so a scraper (and the API's merged /debug/tracez) finds it either way.
    metrics_server = serve_worker_metrics(
        configure_telemetry(settings, "firehose"), settings, firehose_metrics_port(settings)
    )
    stop = asyncio.Event()
    install_stop_signals(asyncio.get_running_loop(), stop)
    try:
        if not settings.relay_url:
            log.info("no HUDDLE_RELAY_URL configured: firehose consumer idle")
            await stop.wait()
            return
        engine = make_engine(settings.database_url, pool_size=8)
        consumer = build_consumer(settings, engine)
        try:
            await consumer.run(stop)
        finally:
            if consumer.refresher is not None:
                consumer.refresher.reader.close()
            engine.dispose()
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()
