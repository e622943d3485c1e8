"""`huddle api` as its own process, configured like the in-process test app, for black-box tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from models.settings import REPO_ROOT, Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def api_process(settings: Settings, log: Path, **extra_env: str) -> Iterator[str]:
    """Start `huddle api` on a free port with these settings; yield its base URL once it answers."""
    port = free_port()
    env = {
        **os.environ,
        "HUDDLE_DEV_MODE": "true",
        "HUDDLE_DATABASE_URL": settings.database_url,
        "HUDDLE_TEMPORAL_ADDRESS": settings.temporal_address,
        "HUDDLE_TASK_QUEUE_PREFIX": settings.task_queue_prefix,
        "HUDDLE_PLC_URL": settings.plc_url,
        "HUDDLE_HANDLE_RESOLVER_URLS": settings.handle_resolver_urls,
        "HUDDLE_MAIL_SINK_DIR": settings.mail_sink_dir,
        "HUDDLE_API_PORT": str(port),
        **extra_env,
    }
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "api"], env=env, cwd=REPO_ROOT, stdout=out, stderr=out
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    httpx.get(f"{base}/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            else:
                raise RuntimeError(f"huddle api did not start: {log.read_text()[-2000:]}")
            yield base
        finally:
            server.terminate()
            server.wait(10)
