"""`huddle dev` as a new user runs it: ready within 60 s, the Temporal UI answers, Ctrl-C leaves nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.api.server import free_port

pytestmark = pytest.mark.slow


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_huddle_dev_starts_ready_and_stops_clean(tmp_path: Path) -> None:
    api_port, temporal_port, ui_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "HUDDLE_DEV_MODE": "true",
        "HUDDLE_DATABASE_URL": f"sqlite:///{tmp_path / 'huddle.db'}",
        "HUDDLE_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "HUDDLE_TEMPORAL_UI_PORT": str(ui_port),
        "HUDDLE_TEMPORAL_DB_FILE": str(tmp_path / "temporal.db"),
        "HUDDLE_API_PORT": str(api_port),
        "HUDDLE_RELAY_URL": "",
    }
    log = (tmp_path / "dev.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "dev"], env=env, stdout=log, stderr=log)
    tree: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        body: dict = {}
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "dev.log").read_text()
            try:
                resp = httpx.get(f"http://127.0.0.1:{api_port}/readyz", timeout=5)
                body = resp.json()
                if resp.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"not ready within 60 s: {body}\n{(tmp_path / 'dev.log').read_text()}")
        assert body["checks"]["database"]["ok"] and body["checks"]["temporal"]["ok"]
        ui = httpx.get(f"http://127.0.0.1:{ui_port}/", timeout=10)
        assert ui.status_code == 200 and "<html" in ui.text.lower()
        tree = _descendants(proc.pid)
        assert len(tree) >= 4  # temporal, worker, firehose, api
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            for pid in tree:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            raise
        log.close()
    time.sleep(0.5)
    assert [pid for pid in tree if _alive(pid)] == []
    output = (tmp_path / "dev.log").read_text()
    assert "database migrated" in output and "stopped" in output
