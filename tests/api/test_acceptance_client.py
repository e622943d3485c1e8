"""Issue 5's acceptance: a script using only `atproto` and httpx books through the running API."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from models.settings import REPO_ROOT
from tests.api.conftest import Api
from tests.api.server import api_process

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


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
    with api_process(api.settings, tmp_path / "api.log") as base:
        common = ["--pds", api.pds.pds_url, "--huddle", base, "--host", host.handle]
        code, steps = await _client(*common, f"--handle={guest.handle}", f"--password={guest.password}")
        assert code == 0, steps
        assert steps[0]["offers"] == [offer]
        assert steps[1]["booking"]["state"] == "held"
        assert steps[2]["booking"]["state"] == "confirmed"
        booking = steps[3]["booking"]
        assert booking["state"] == "confirmed" and booking["guest"] == guest.did

        code, steps = await _client(
            *common, f"--handle={other.handle}", f"--password={other.password}", "--read-only", booking["id"]
        )
        assert code == 3 and steps[0]["status"] == 404 and steps[0]["body"]["error"] == "BookingNotFound"
