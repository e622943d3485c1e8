"""docker-compose.temporal.yml cannot run here (no Docker engine), so it is checked by reading it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import make_url

from models.settings import REPO_ROOT, Settings
from workers.cli import main as cli

COMPOSE = REPO_ROOT / "docker-compose.temporal.yml"


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _huddle_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in doc["services"].items() if s.get("image") == "huddle:latest"}


def _resolve(value: str) -> str:
    """`${VAR:?msg}` / `${VAR:-default}` as an operator who set VAR=x would get them."""
    return re.sub(r"\$\{(\w+)(:[?-][^}]*)?\}", lambda m: "x", value)


def test_services_and_health_checks() -> None:
    services = _compose()["services"]
    assert {"postgres", "temporal", "temporal-ui", "api", "worker", "firehose", "migrate"} <= set(services)
    for name, service in services.items():
        if name != "migrate":
            assert "healthcheck" in service, f"{name} has no health check"
        for dep in service.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"


def test_huddle_services_run_real_commands_from_the_dockerfile() -> None:
    doc = _compose()
    huddle = _huddle_services(doc)
    assert set(huddle) == {"api", "worker", "firehose", "migrate"}
    assert (REPO_ROOT / "Dockerfile").exists()
    for name, service in huddle.items():
        assert service["build"]["dockerfile"] == "Dockerfile"
        command = service["command"]
        assert command[0] == "huddle" and command[1] in cli.commands, f"{name}: {command}"


def test_every_huddle_variable_is_a_setting_and_agrees_with_the_services() -> None:
    doc = _compose()
    fields = {f"HUDDLE_{name.upper()}" for name in Settings.model_fields}
    env = doc["x-huddle-env"]
    unknown = [k for k in env if k.startswith("HUDDLE_") and k not in fields]
    assert unknown == []
    for service in _huddle_services(doc).values():
        assert service["environment"] == env
    # Production must not run with development shortcuts, and must provide the real secrets.
    assert env["HUDDLE_DEV_MODE"] == "false"
    assert "?" in env["HUDDLE_SECRET_KEY"] and "?" in env["HUDDLE_TOKEN_KEYS"]

    db = make_url(_resolve(env["HUDDLE_DATABASE_URL"]))
    assert db.drivername == "postgresql+psycopg" and db.host in doc["services"]
    postgres_env = doc["services"]["postgres"]["environment"]
    assert db.username == postgres_env["POSTGRES_USER"] and db.database == postgres_env["POSTGRES_DB"]

    temporal_host, temporal_port = env["HUDDLE_TEMPORAL_ADDRESS"].split(":")
    assert temporal_host in doc["services"]
    assert any(p.endswith(f":{temporal_port}") for p in doc["services"]["temporal"]["ports"])

    api_port = env["HUDDLE_API_PORT"]
    assert any(p.endswith(f":{api_port}") for p in doc["services"]["api"]["ports"])
    assert env["HUDDLE_API_HOST"] == "0.0.0.0"
    # The values parse as the settings class would parse them.
    Settings(_env_file=None, **{k[7:].lower(): _resolve(v) for k, v in env.items()})  # type: ignore[arg-type]


def test_postgres_init_script_exists() -> None:
    mounts = _compose()["services"]["postgres"]["volumes"]
    scripts = [m.split(":")[0] for m in mounts if m.startswith("./")]
    assert scripts and all((REPO_ROOT / Path(s)).exists() for s in scripts)
