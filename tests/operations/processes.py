"""A `huddle` command run as its own process, as `make dev` runs it, with a clean HUDDLE_* environment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from models.settings import REPO_ROOT


@contextmanager
def huddle_process(
    command: str, settings: dict[str, str], tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`huddle <command>` with only these HUDDLE_* settings (plus dev mode), run in `tmp_path` so no
    .env but this test's applies; its output goes to `tmp_path/<command>.log`. Stopped on exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUDDLE_")}
    env |= {"PYTHONPATH": str(REPO_ROOT), "HUDDLE_DEV_MODE": "1", **settings}
    with open(tmp_path / f"{command}.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", command],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def wait_for_metrics(proc: subprocess.Popen[bytes], base: str, log: Path, timeout: float = 30.0) -> None:
    """Until the process serves `base`/metrics; fails with its log if it dies or takes too long."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base}/metrics", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the process did not serve /metrics within {timeout:.0f} s:\n{log.read_text()}")
        time.sleep(0.1)
