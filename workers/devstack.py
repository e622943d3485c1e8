"""`huddle dev`: the whole stack as one process tree that stops cleanly on Ctrl-C.

The children run in their own sessions so the terminal's Ctrl-C reaches only this supervisor, which
then stops them in order (API and consumers first, Temporal last) and kills what does not exit.
They also get PR_SET_PDEATHSIG, so even a SIGKILLed supervisor leaves nothing behind.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from models.migrate import migrate
from models.settings import REPO_ROOT, Settings
from workers.devserver import dev_server_command

log = logging.getLogger("huddle.dev")
STOP_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: the supervisor's own shutdown still stops the children
        pass


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]


@dataclass
class DevStack:
    settings: Settings
    children: list[Child] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> Child:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO_ROOT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        child = Child(name, proc)
        self.children.append(child)
        assert proc.stdout is not None
        threading.Thread(target=_relay_output, args=(name, proc.stdout), daemon=True).start()
        return child

    def stop(self) -> None:
        self._stopping.set()
        for child in reversed(self.children):
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGINT if child.name == "temporal" else signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            while child.proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if child.proc.poll() is None:
                log.warning("%s did not stop in %.0fs: killing it", child.name, STOP_TIMEOUT)
                child.proc.kill()
                child.proc.wait()
        log.info("stopped")

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if c.proc.poll() is not None), None)


def _relay_output(name: str, stream: IO[bytes]) -> None:
    prefix = f"{name:>8} | "
    for line in iter(stream.readline, b""):
        sys.stdout.write(prefix + line.decode(errors="replace"))
        sys.stdout.flush()


def _wait_for_port(host: str, port: int, timeout: float, child: Child) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise RuntimeError(f"{child.name} exited with code {child.proc.returncode} while starting")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{child.name} did not listen on {host}:{port} within {timeout:.0f}s")


def run_dev(settings: Settings) -> int:
    """Start Temporal, migrate, then the worker, API and firehose consumer; block until Ctrl-C."""
    stack = DevStack(settings)
    env = {**os.environ, "HUDDLE_DEV_MODE": "true", "PYTHONUNBUFFERED": "1"}
    host, _, port_text = settings.temporal_address.rpartition(":")
    temporal_port = int(port_text)
    (REPO_ROOT / "var").mkdir(exist_ok=True)

    stopped = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    huddle = [sys.executable, "-m", "workers.cli"]
    try:
        temporal = stack.spawn(
            "temporal",
            dev_server_command(
                port=temporal_port,
                ui_port=settings.temporal_ui_port,
                db_file=Path(settings.temporal_db_file),
                namespace=settings.temporal_namespace,
            ),
            env,
        )
        _wait_for_port(host or "127.0.0.1", temporal_port, 60, temporal)
        log.info(
            "Temporal ready on %s, UI on http://127.0.0.1:%d",
            settings.temporal_address,
            settings.temporal_ui_port,
        )
        migrate(settings.database_url)
        log.info("database migrated (%s)", settings.database_url.split("://", 1)[0])
        stack.spawn("worker", [*huddle, "worker"], env)
        stack.spawn("firehose", [*huddle, "firehose"], env)
        stack.spawn("api", [*huddle, "api"], env)
        log.info(
            "API on http://%s:%d (readiness: /readyz, docs: /docs)", settings.api_host, settings.api_port
        )
        while not stopped.wait(0.5):
            dead = stack.first_exited()
            if dead is not None:
                log.error("%s exited with code %s: stopping the stack", dead.name, dead.proc.returncode)
                return 1
        return 0
    finally:
        stack.stop()
