"""The `huddle` command line as an operator uses it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect

from models.db import make_engine


def _huddle(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_help_lists_every_command_with_a_description() -> None:
    out = _huddle("--help")
    assert out.returncode == 0
    for command in ("dev", "api", "worker", "firehose", "migrate", "health"):
        line = next(ln for ln in out.stdout.splitlines() if ln.strip().startswith(command + " "))
        assert len(line.split(None, 1)[1]) > 10, line


def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    import os

    url = f"sqlite:///{tmp_path / 'h.db'}"
    out = _huddle("migrate", env={**os.environ, "HUDDLE_DEV_MODE": "true", "HUDDLE_DATABASE_URL": url})
    assert out.returncode == 0, out.stderr
    engine = make_engine(url)
    assert {"bookings", "offers_index", "outbox", "audit_log"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_production_refuses_placeholder_secret(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("HUDDLE_")}
    env["HUDDLE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'h.db'}"
    out = _huddle("migrate", env=env)
    assert out.returncode != 0
    assert "HUDDLE_SECRET_KEY" in out.stderr
