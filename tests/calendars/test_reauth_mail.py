"""A grant Google refuses for good: the connector ends `needs_reauth` and its owner gets one mail, soon.

Everything is real: Huddle's API and workers, the Google emulator answering the refresh with
`invalid_grant`, the Temporal schedule that sweeps the outbox, and an aiosmtpd server receiving the mail.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.client import Client

from activities.notifications import outbox_retry_schedule
from clients.secrets import KeyRing
from models.db import session_scope
from models.settings import Settings
from models.tables import CalendarConnector, OutboxMessage, User
from tests.calendars.conftest import calendar_settings
from tests.calendars.helpers import Owner
from tests.emulators.google import GoogleEmulator
from tests.emulators.graph import GraphEmulator
from tests.emulators.server import TlsFiles
from tests.notifications.helpers import body
from tests.notifications.smtp_peer import SmtpPeer
from workflows.connector_maintenance import ConnectorMaintenanceWorkflow
from workflows.connector_messages import MaintenanceInput, MaintenanceReport

HOST_EMAIL = "host-owner@example.test"


@pytest.fixture
def smtp_server() -> Iterator[SmtpPeer]:
    peer = SmtpPeer()
    peer.start()
    yield peer
    peer.stop()


@pytest.fixture
def settings(
    database_url: str,
    temporal_client: Client,
    google: GoogleEmulator,
    graph: GraphEmulator,
    tls_files: TlsFiles,
    api_port: int,
    smtp_server: SmtpPeer,
) -> Settings:
    """Maintenance refreshes every token it sees; mail goes to this test's SMTP server.

    The outbox sweep runs every second but keeps its production `outbox_retry_after_seconds` (10
    minutes): the notice must not wait for that.
    """
    return calendar_settings(
        database_url,
        temporal_client,
        google,
        graph,
        tls_files,
        api_port,
        calendar_token_refresh_before_seconds=2 * 3600,
        smtp_url=smtp_server.url,
        smtp_timeout_seconds=5,
        hostname="huddle.test",
        outbox_retry_interval_seconds=1,
    )


def _secrets(
    engine: Engine, settings: Settings, connector_id: int, google: GoogleEmulator, account: str
) -> set[str]:
    """Every token of this grant: what Huddle stores (decrypted) and what the emulator issued."""
    ring = KeyRing.from_settings(settings)
    with Session(engine) as session:
        row = session.get(CalendarConnector, connector_id)
        assert row is not None and row.access_token_enc and row.refresh_token_enc
        found = {ring.decrypt(row.access_token_enc), ring.decrypt(row.refresh_token_enc)}
    with google.lock:
        found |= {t for t, (owner, _) in google.refresh_tokens.items() if owner == account}
        found |= {t for t, (owner, _, _) in google.access_tokens.items() if owner == account}
    return found


async def _maintain(client: Client, settings: Settings, connector_id: int) -> MaintenanceReport:
    (report,) = await client.execute_workflow(
        ConnectorMaintenanceWorkflow.run,
        MaintenanceInput(connector_ids=[connector_id]),
        id=f"maintenance-{uuid.uuid4().hex}",
        task_queue=settings.task_queue("calendar"),
    )
    return report


async def test_a_refused_refresh_tells_the_host_by_mail_with_a_reconnect_link_and_no_token(
    worker: Settings,
    engine: Engine,
    temporal_client: Client,
    owner: Owner,
    google: GoogleEmulator,
    smtp_server: SmtpPeer,
) -> None:
    account = google.add_account(f"host-{uuid.uuid4().hex[:8]}@gmail.test")
    view = await asyncio.to_thread(owner.connect_google, google, account)
    with session_scope(engine) as session:
        user = session.get(User, owner.did) or User(did=owner.did)
        user.email, user.timezone, user.handle = HOST_EMAIL, "Europe/Paris", "host.test"
        session.add(user)
    tokens = _secrets(engine, worker, view["id"], google, account)
    assert len(tokens) >= 2

    schedule_id, schedule = outbox_retry_schedule(worker)
    handle = await temporal_client.create_schedule(schedule_id, schedule)
    try:
        google.revoke(account)
        report = await _maintain(temporal_client, worker, view["id"])
        assert report.skipped == "needs_reauth"
        shown = await asyncio.to_thread(owner.connector, view["id"])
        assert shown["state"] == "needs_reauth" and "invalid_grant" in shown["stateReason"]

        # The schedule, not a manual trigger, sends it: within seconds, not after retry_after.
        started = time.monotonic()
        received = await asyncio.to_thread(smtp_server.wait_for, 1, 30)
        assert len(received) == 1, "no mail reached the SMTP server"
        assert time.monotonic() - started < 30

        # Another refusal of the same grant is the same transition: no second mail.
        assert (await _maintain(temporal_client, worker, view["id"])).skipped == "needs_reauth"
        await asyncio.sleep(3)  # three more sweeps
        assert len(smtp_server.received) == 1
    finally:
        await handle.delete()

    (mail,) = received
    message = mail.message
    assert mail.rcpt_tos == [HOST_EMAIL]
    assert message["X-Huddle-Kind"] == "calendar_needs_reauth"
    assert message["X-Huddle-Booking"] is None
    assert message["Subject"] == f"Reconnect your Google calendar ({account}) to Huddle"
    text, html = body(message, "plain"), body(message, "html")
    reconnect = f"{worker.public_url}/host/calendars#c-{view['id']}"
    assert reconnect in text and f'href="{reconnect}"' in html
    for part in (text, html):
        assert account in part and "invalid_grant" in part
        assert "(Europe/Paris, " in part  # the host's own zone, named
    raw = mail.data.decode("utf-8", "replace")
    leaked = [t for t in tokens if t in raw or t in text or t in html]
    assert leaked == [], "a token is in the mail"

    with Session(engine) as session:
        (row,) = session.exec(
            select(OutboxMessage).where(OutboxMessage.kind == "calendar_needs_reauth")
        ).all()
    assert row.state == "sent" and row.booking_id is None
    assert not any(t in str(row.payload) for t in tokens)
