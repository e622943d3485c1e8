"""Settings come from HUDDLE_* variables; placeholder secrets are refused outside dev mode."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from models.settings import PLACEHOLDER_SECRET, Settings


def test_defaults_are_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("HUDDLE_DATABASE_URL", "HUDDLE_HOSTNAME", "HUDDLE_SERVICE_DID"):
        monkeypatch.delenv(key, raising=False)
    s = Settings(_env_file=None, dev_mode=True)  # type: ignore[call-arg]
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("/var/huddle.db")
    assert s.temporal_address == "127.0.0.1:7233"
    assert s.service_did == "did:web:localhost"
    assert s.task_queue("bookings") == "huddle-bookings"


def test_environment_variables_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUDDLE_DEV_MODE", "true")
    monkeypatch.setenv("HUDDLE_DATABASE_URL", "postgresql+psycopg://u:p@db:5432/huddle")
    monkeypatch.setenv("HUDDLE_HOSTNAME", "huddle.example")
    monkeypatch.setenv("HUDDLE_ADMIN_DIDS", "did:plc:a, did:plc:b")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.database_url == "postgresql+psycopg://u:p@db:5432/huddle"
    assert not s.is_sqlite
    assert s.service_did == "did:web:huddle.example"
    assert s.admin_did_list == ["did:plc:a", "did:plc:b"]


def test_dotenv_file_is_read(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUDDLE_HOSTNAME", raising=False)
    env = tmp_path / ".env"
    env.write_text("HUDDLE_DEV_MODE=true\nHUDDLE_HOSTNAME=from-dotenv.example\n")
    s = Settings(_env_file=str(env))  # type: ignore[call-arg]
    assert s.hostname == "from-dotenv.example"


def test_placeholder_secret_refused_outside_dev_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUDDLE_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="HUDDLE_SECRET_KEY"):
        Settings(_env_file=None, dev_mode=False, token_keys="k")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="HUDDLE_TOKEN_KEYS"):
        Settings(_env_file=None, dev_mode=False, secret_key="real-secret")  # type: ignore[call-arg]
    ok = Settings(_env_file=None, dev_mode=False, secret_key="real-secret", token_keys="k")  # type: ignore[call-arg]
    assert ok.secret_key != PLACEHOLDER_SECRET
