"""What an operator runs for an upgrade, as processes: a Temporal dev server on a kept database file, and
each Huddle version's `huddle migrate` / `huddle worker` importing that version's own modules."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from models.settings import REPO_ROOT
from tests.operations.upgrade_driver import MARKER
from workers.devserver import dev_server_command, temporal_binary

STOP_TIMEOUT = 30.0


@contextmanager
def old_checkout(commit: str, path: Path) -> Iterator[Path]:
    """`commit` checked out in a temporary work tree at `path` (removed on exit)."""
    present = subprocess.run(
        ["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=REPO_ROOT, capture_output=True
    )
    if present.returncode != 0:
        # Passing without the old code would claim an upgrade nobody ran.
        pytest.fail(
            f"commit {commit} is not in this clone ({REPO_ROOT}); the upgrade test needs it: "
            f"fetch the full history (git fetch --unshallow) and run again"
        )
    added = subprocess.run(
        ["git", "worktree", "add", "--detach", str(path), commit],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert added.returncode == 0, f"git worktree add {path} {commit} failed:\n{added.stderr}"
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=REPO_ROOT, check=False)


@dataclass(frozen=True)
class Version:
    """One version of Huddle's code: its modules are imported from `root` (PYTHONPATH), before the
    venv's editable install of the main checkout."""

    name: str
    root: Path

    def env(self, settings: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUDDLE_")}
        return env | {"PYTHONPATH": str(self.root), "HUDDLE_DEV_MODE": "1", **settings}

    def origin(self, settings: dict[str, str], cwd: Path) -> list[str]:
        """Where this version's processes import Huddle's packages from (run as they are run)."""
        code = "import api, kernel, models, workers, workflows as w; print(api.__file__, w.__file__)"
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=cwd,
            env=self.env(settings),
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.split()

    def run(self, args: list[str], settings: dict[str, str], cwd: Path, log: Path) -> str:
        """Run a command of this version to its end; its stdout, or a failure with its output."""
        done = subprocess.run(
            [sys.executable, *args],
            cwd=cwd,
            env=self.env(settings),
            capture_output=True,
            text=True,
            timeout=120,
        )
        log.write_text(done.stdout + done.stderr)
        assert done.returncode == 0, f"{self.name}: {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
        return done.stdout

    def migrate(self, settings: dict[str, str], cwd: Path) -> None:
        self.run(["-m", "workers.cli", "migrate"], settings, cwd, cwd / f"migrate-{self.name}.log")

    def drive(self, settings: dict[str, str], cwd: Path, **extra: str) -> dict[str, Any]:
        """tests/operations/upgrade_driver.py under this version's code; what it booked."""
        script = str(Path(__file__).with_name("upgrade_driver.py"))
        out = self.run([script], settings | extra, cwd, cwd / f"driver-{self.name}.log")
        [line] = [x for x in out.splitlines() if x.startswith(MARKER)]
        answer: dict[str, Any] = json.loads(line.removeprefix(MARKER))
        return answer

    @contextmanager
    def worker(self, settings: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
        """`huddle worker` of this version, until it polls its task queues; stopped with SIGTERM on
        exit, and it must then exit cleanly as an operator's stop expects."""
        log = cwd / f"worker-{self.name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "workers.cli", "worker"],
                cwd=cwd,
                env=self.env(settings),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 60
            while b"worker polling" not in log.read_bytes():
                assert proc.poll() is None, f"{self.name} worker died:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"{self.name} worker never polled:\n{log.read_text()}"
                time.sleep(0.1)
            yield proc
        finally:
            code = _stop(proc)
        assert code == 0, f"{self.name} worker exited {code} on SIGTERM:\n{log.read_text()}"


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    return proc.returncode


@contextmanager
def temporal_server(port: int, ui_port: int, db_file: Path, log: Path) -> Iterator[str]:
    """The Temporal dev server on `db_file` (kept across restarts); yields its address once its
    namespace answers."""
    address = f"127.0.0.1:{port}"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [*dev_server_command(port=port, ui_port=ui_port, db_file=db_file), "--headless"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        probe = [str(temporal_binary()), "operator", "namespace", "describe", "default", "--address", address]
        deadline = time.monotonic() + 60
        while subprocess.run(probe, capture_output=True).returncode != 0:
            assert proc.poll() is None, f"the Temporal dev server died:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"the Temporal dev server never answered:\n{log.read_text()}"
            time.sleep(0.2)
        yield address
    finally:
        _stop(proc)
