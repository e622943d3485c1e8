"""Tokens at rest: nowhere in a dump of the database or in the logs; `huddle rotate-keys` re-encrypts."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, MetaData, select
from sqlmodel import Session

from clients.calendar.accounts import CalendarAccounts
from clients.calendar.connected import ConnectedCalendars
from clients.calendar.push import PushChannels
from clients.secrets import KeyRing, SecretUnreadable, dev_key
from models.settings import Settings
from models.tables import CalendarConnector
from tests.calendars.helpers import Owner
from tests.emulators.fixtures import Radicale, radicale_calendars
from tests.emulators.google import GoogleEmulator
from tests.emulators.graph import GraphEmulator
from tests.emulators.server import TlsFiles

SECRET_COLUMNS = ("access_token_enc", "refresh_token_enc", "token_cache_enc", "password_enc")


def dump(engine: Engine) -> str:
    """Every row of every table, as text (what a backup or a stolen disk would show)."""
    metadata = MetaData()
    metadata.reflect(engine)
    lines = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                lines.append(f"{table.name}: {tuple(row)!r}")
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:
            lines.extend(raw.driver_connection.iterdump())  # type: ignore[union-attr]
        finally:
            raw.close()
    return "\n".join(lines)


def connect_everything(
    owner: Owner,
    settings: Settings,
    engine: Engine,
    google: GoogleEmulator,
    graph: GraphEmulator,
    tls: TlsFiles,
    radicale: Radicale,
) -> list[str]:
    """Connect all three providers, refresh tokens, open push channels; the secrets that now exist."""
    account = google.add_account(f"host-{uuid.uuid4().hex[:8]}@gmail.test")
    upn = f"host-{uuid.uuid4().hex[:8]}@contoso.test"
    graph.add_user(upn)
    user, password = radicale.account()
    radicale_calendars(radicale, user, password, ("Work",))
    ids = [
        owner.connect_google(google, account)["id"],
        owner.connect_microsoft(graph, tls, upn)["id"],
        owner.connect_caldav(radicale.url, user, password).json()["connector"]["id"],
    ]
    calendars = ConnectedCalendars(settings, engine)
    push = PushChannels(settings, calendars.accounts, calendars.cache)
    for connector_id in ids[:2]:
        calendars.accounts.tokens(connector_id).refreshed()
        push.ensure(connector_id)
    now = datetime.now(UTC)
    assert calendars.busy(owner.did, now, now + timedelta(days=30)) == []
    secrets = [password]
    secrets += [t for t, (who, _, _) in google.access_tokens.items() if who == account]
    secrets += [t for t, (who, _) in google.refresh_tokens.items() if who == account]
    secrets += [c.token for c in google.active_channels(account) if c.token]
    secrets += [t for t, (who, _) in graph.access_tokens.items() if who == upn]
    secrets += [t for t, (who, _) in graph.refresh_tokens.items() if who == upn]
    secrets += [s.client_state for s in graph.subscriptions.values() if s.owner == upn and s.client_state]
    assert len(secrets) >= 8, secrets
    return secrets


def test_no_plaintext_secret_in_a_database_dump_or_the_logs(
    owner: Owner,
    settings: Settings,
    engine: Engine,
    google: GoogleEmulator,
    graph: GraphEmulator,
    tls_files: TlsFiles,
    radicale_server: Radicale,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = connect_everything(owner, settings, engine, google, graph, tls_files, radicale_server)
    text = dump(engine)
    assert "calendar_connectors" in text and "calendar_channels" in text
    leaked = [s for s in secrets if s in text]
    assert leaked == []
    logged = [s for s in secrets if s in caplog.text]
    assert logged == []


def test_rotate_keys_reencrypts_every_secret(
    owner: Owner,
    settings: Settings,
    engine: Engine,
    google: GoogleEmulator,
    graph: GraphEmulator,
    tls_files: TlsFiles,
    radicale_server: Radicale,
) -> None:
    connect_everything(owner, settings, engine, google, graph, tls_files, radicale_server)
    old = dev_key(settings.secret_key)  # what dev mode encrypts with when HUDDLE_TOKEN_KEYS is empty
    new = Fernet.generate_key().decode()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUDDLE_")}
    env.update(
        HUDDLE_DEV_MODE="true", HUDDLE_DATABASE_URL=settings.database_url, HUDDLE_TOKEN_KEYS=f"{new},{old}"
    )
    run = subprocess.run(
        [sys.executable, "-m", "workers.cli", "rotate-keys"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "calendar_connectors: " in run.stdout

    values = _secret_values(engine)
    assert len(values) == 4  # Google access + refresh token, the MSAL cache, the CalDAV password
    only_new, only_old = KeyRing([new]), KeyRing([old])
    assert all(only_new.decrypt(v) for v in values)
    for value in values:
        with pytest.raises(SecretUnreadable):
            only_old.decrypt(value)
    # With the old key dropped, the connectors still work.
    rotated = settings.model_copy(update={"token_keys": new})
    calendars = ConnectedCalendars(rotated, engine, CalendarAccounts(rotated, engine))
    now = datetime.now(UTC)
    for connector in calendars.store.for_owner(owner.did):
        assert connector.id is not None
        calendars.cache.invalidate(connector.id)
    assert calendars.busy(owner.did, now, now + timedelta(days=7)) == []
    # A second run has nothing left to do.
    again = subprocess.run(
        [sys.executable, "-m", "workers.cli", "rotate-keys"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert again.returncode == 0 and "calendar_connectors: 0 re-encrypted" in again.stdout


def _secret_values(engine: Engine) -> list[str]:
    with Session(engine) as session:
        rows = session.scalars(select(CalendarConnector)).all()
    return [getattr(r, c) for r in rows for c in SECRET_COLUMNS if getattr(r, c)]


def test_key_ring_basics() -> None:
    first, second = Fernet.generate_key(), Fernet.generate_key()
    ring = KeyRing([second, first])
    old = KeyRing([first]).encrypt("ya29.secret")
    assert ring.decrypt(old) == "ya29.secret" and not ring.is_current(old)
    assert ring.is_current(ring.rotate(old)) and ring.decrypt(ring.rotate(old)) == "ya29.secret"
    assert "ya29" not in ring.encrypt("ya29.secret")
    with pytest.raises(SecretUnreadable):
        KeyRing([Fernet.generate_key()]).decrypt(old)
    with pytest.raises(ValueError, match="HUDDLE_TOKEN_KEYS"):
        KeyRing.from_settings(Settings(_env_file=None, dev_mode=True).model_copy(update={"dev_mode": False}))  # type: ignore[call-arg]
