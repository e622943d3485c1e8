"""Fixtures for the firehose indexer: a consumer running against the real local PDS, and Settings
pointed at that PDS (so the `worker` fixture's index queue reads repos from it)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import Engine
from temporalio.client import Client

from models.db import make_engine
from models.settings import Settings
from tests.conftest import make_settings
from tests.firehose.helpers import RunningConsumer, TcpProxy
from tests.peers.pds_peer import PdsPeer


@pytest.fixture
def settings(database_url: str, temporal_client: Client, pds_peer: PdsPeer) -> Settings:
    """Like the shared fixture, with the relay, PLC and handle resolver of the test PDS."""
    return peer_settings(database_url, pds_peer, client=temporal_client)


def peer_settings(
    database_url: str, peer: PdsPeer, client: Client | None = None, **overrides: Any
) -> Settings:
    """Settings for a consumer of `peer`: its relay, PLC and handles; intervals in tens of ms."""
    values: dict[str, Any] = {
        "relay_url": f"ws://127.0.0.1:{peer.pds_port}",
        "plc_url": f"http://127.0.0.1:{peer.plc_port}",
        "handle_resolver_urls": peer.base_url,
        "firehose_flush_seconds": 0.02,
        "firehose_cursor_every_seconds": 0.5,
        "firehose_known_refresh_seconds": 0.3,
        "firehose_backoff_initial_seconds": 0.05,
        "firehose_backoff_max_seconds": 0.5,
        "firehose_heartbeat_seconds": 1.0,
        "firehose_stats_log_seconds": 3600.0,
    }
    values.update(overrides)
    return make_settings(database_url, client, **values)


@pytest.fixture
def sqlite_engine(sqlite_template: Path, tmp_path: Path) -> Iterator[Engine]:
    """One migrated SQLite database, for tests where the database kind does not matter."""
    path = tmp_path / "huddle.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}", pool_size=5)
    yield engine
    engine.dispose()


@pytest_asyncio.fixture
async def consumers() -> AsyncIterator[Callable[..., RunningConsumer]]:
    """`start(engine, settings, source=None) -> RunningConsumer` (started with `await c.start()`);
    every consumer still running is stopped after the test."""
    started: list[RunningConsumer] = []

    def make(engine: Engine, settings: Settings, source: str | None = None) -> RunningConsumer:
        consumer = RunningConsumer(engine, settings, source)
        started.append(consumer)
        return consumer

    yield make
    for consumer in started:
        await consumer.stop()


@pytest_asyncio.fixture
async def proxy(pds_peer: PdsPeer) -> AsyncIterator[TcpProxy]:
    """A TCP proxy in front of the PDS that can cut every connection through it at once."""
    proxy = TcpProxy("127.0.0.1", pds_peer.pds_port)
    await proxy.start()
    yield proxy
    await proxy.close()
