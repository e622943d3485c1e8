"""Issue 5's acceptance: a script using only `atproto` and httpx books through the running API."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from models.settings import REPO_ROOT, Settings
from tests.api.conftest import Api

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HUDDLE_DEV_MODE": "true",
        "HUDDLE_DATABASE_URL": settings.database_url,
        "HUDDLE_TEMPORAL_ADDRESS": settings.temporal_address,
        "HUDDLE_TASK_QUEUE_PREFIX": settings.task_queue_prefix,
        "HUDDLE_PLC_URL": settings.plc_url,
        "HUDDLE_HANDLE_RESOLVER_URLS": settings.handle_resolver_urls,
        "HUDDLE_API_PORT": str(port),
    }
    out = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "api"], env=env, cwd=REPO_ROOT, stdout=out, stderr=out
    )


async def _client(*args: str) -> tuple[int, list[dict]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO_ROOT / "examples" / "xrpc_client.py"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    if proc.returncode not in (0, 3):
        raise AssertionError(err.decode()[-2000:])
    return proc.returncode, lines


async def test_plain_atproto_client_books_and_a_second_guest_cannot_read(
    database_url: str, api: Api, tmp_path: Path
) -> None:
    host, offer = api.host()
    guest = api.pds.create_account("guest")
    other = api.pds.create_account("other")
    port = _free_port()
    server = _serve(api.settings, port, tmp_path / "api.log")
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                try:
                    await http.get(f"{base}/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        common = ["--pds", api.pds.pds_url, "--huddle", base, "--host", host.handle]
        code, steps = await _client(*common, "--handle", guest.handle, "--password", guest.password)
        assert code == 0, steps
        assert steps[0]["offers"] == [offer]
        assert steps[1]["booking"]["state"] == "held"
        assert steps[2]["booking"]["state"] == "confirmed"
        booking = steps[3]["booking"]
        assert booking["state"] == "confirmed" and booking["guest"] == guest.did

        code, steps = await _client(
            *common, "--handle", other.handle, "--password", other.password, "--read-only", booking["id"]
        )
        assert code == 3 and steps[0]["status"] == 404 and steps[0]["body"]["error"] == "BookingNotFound"
    finally:
        server.terminate()
        server.wait(10)
