"""Calendar tests: settings pointing Huddle at the emulators, Huddle's API served for real, an owner."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from temporalio.client import Client

from api.main import create_app
from models.settings import Settings
from tests.calendars.helpers import Owner
from tests.conftest import make_settings
from tests.emulators.fixtures import (  # noqa: F401  (fixtures)
    google,
    google_server,
    graph,
    graph_server,
    radicale_server,
    tls_files,
)
from tests.emulators.google import GoogleEmulator
from tests.emulators.graph import GraphEmulator
from tests.emulators.server import ServerThread, TlsFiles, free_port
from tests.identity.helpers import SERVICE_DID, DidWebHost


@pytest.fixture
def api_port() -> int:
    return free_port()


def calendar_settings(
    database_url: str,
    client: Client | None,
    google_emulator: GoogleEmulator,
    graph_emulator: GraphEmulator,
    tls: TlsFiles,
    port: int,
    **overrides: object,
) -> Settings:
    public_url = f"http://127.0.0.1:{port}"
    google_emulator.redirect_uris.add(f"{public_url}/oauth/calendar/google/callback")
    values: dict[str, object] = {
        "public_url": public_url,
        "service_did": SERVICE_DID,
        "google_client_id": google_emulator.client_id,
        "google_client_secret": google_emulator.client_secret,
        "google_auth_uri": f"{google_emulator.url}/o/oauth2/v2/auth",
        "google_token_uri": f"{google_emulator.url}/token",
        "google_api_endpoint": google_emulator.api_endpoint,
        "microsoft_client_id": graph_emulator.client_id,
        "microsoft_client_secret": graph_emulator.client_secret,
        "microsoft_authority": graph_emulator.authority,
        "microsoft_graph_url": graph_emulator.graph_url,
        "microsoft_instance_discovery": False,
        "calendar_ca_bundle": str(tls.ca),
        "calendar_http_timeout_seconds": 3.0,
        "rate_limit_enabled": False,
    }
    values.update(overrides)
    return make_settings(database_url, client, **values)


@pytest.fixture
def settings(
    database_url: str,
    temporal_client: Client,
    google: GoogleEmulator,  # noqa: F811
    graph: GraphEmulator,  # noqa: F811
    tls_files: TlsFiles,  # noqa: F811
    api_port: int,
) -> Settings:
    """Overrides the suite's `settings` (so the `worker` fixture talks to the emulators too)."""
    return calendar_settings(database_url, temporal_client, google, graph, tls_files, api_port)


@pytest.fixture
def huddle_api(settings: Settings, api_port: int) -> Iterator[str]:
    """Huddle's real app on a real port: the emulators deliver webhooks to it, browsers come back to it."""
    server = ServerThread(create_app(settings), port=api_port).start()
    yield server.url
    server.stop()


@pytest.fixture
def owner(huddle_api: str) -> Iterator[Owner]:
    host = DidWebHost()
    yield Owner(host=host, api_url=huddle_api)
    host.close()
