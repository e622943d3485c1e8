"""Fixtures for the notification tests: a real SMTP server, settings pointing at it, seeded bookings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from models.settings import Settings
from tests.conftest import make_settings
from tests.notifications.smtp_peer import SmtpPeer


@pytest.fixture
def smtp_server() -> Iterator[SmtpPeer]:
    peer = SmtpPeer()
    peer.start()
    yield peer
    peer.stop()


@pytest.fixture
def settings(database_url: str, temporal_client: Client, smtp_server: SmtpPeer, tmp_path: Path) -> Settings:
    """The shared `settings`, with mail going to this test's SMTP server (used by `worker` too)."""
    return make_settings(
        database_url,
        temporal_client,
        smtp_url=smtp_server.url,
        smtp_timeout_seconds=5,
        mail_sink_dir=str(tmp_path / "mail"),
        hostname="huddle.test",
        public_url="https://huddle.test",
    )
