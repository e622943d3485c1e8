"""Session-wide peers for calendar tests: the Google and Graph emulators, TLS files, a real Radicale.

Import the fixtures into a conftest (`from tests.emulators.fixtures import *`). Session-scoped
servers keep their state between tests, so tests create their own accounts; faults are cleared
after every test by the function-scoped `google` and `graph` fixtures.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.emulators.google import GoogleEmulator
from tests.emulators.graph import GraphEmulator
from tests.emulators.server import TlsFiles, free_port, make_tls

RADICALE_USERS = 200


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def google_server() -> Iterator[GoogleEmulator]:
    emulator = GoogleEmulator().start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def graph_server(tls_files: TlsFiles) -> Iterator[GraphEmulator]:
    emulator = GraphEmulator(tls_files).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def google(google_server: GoogleEmulator) -> Iterator[GoogleEmulator]:
    yield google_server
    google_server.faults.clear()
    google_server.deny_next = False


@pytest.fixture
def graph(graph_server: GraphEmulator) -> Iterator[GraphEmulator]:
    yield graph_server
    graph_server.faults.clear()


@dataclass
class Radicale:
    url: str
    users: Iterator[int]

    def account(self) -> tuple[str, str]:
        """A fresh (username, password) no other test uses."""
        n = next(self.users)
        return f"user{n:03d}", f"app-password-{n:03d}"


@pytest.fixture(scope="session")
def radicale_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    """A real Radicale (htpasswd auth, so a wrong password is refused) on a free port."""
    root = tmp_path_factory.mktemp("radicale")
    htpasswd = root / "users"
    htpasswd.write_text("".join(f"user{n:03d}:app-password-{n:03d}\n" for n in range(RADICALE_USERS)))
    port = free_port()
    log = (root / "radicale.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "radicale",
            f"--storage-filesystem-folder={root / 'collections'}",
            "--auth-type=htpasswd",
            f"--auth-htpasswd-filename={htpasswd}",
            "--auth-htpasswd-encryption=plain",
            f"--server-hosts=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"Radicale did not start: {(root / 'radicale.log').read_text()}") from None
            time.sleep(0.1)
    yield Radicale(url=f"http://127.0.0.1:{port}/", users=itertools.count())
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def radicale_calendars(server: Radicale, username: str, password: str, names: tuple[str, ...]) -> list[str]:
    """Create calendars for a Radicale user (a fresh account has none); their URLs."""
    import caldav

    with caldav.DAVClient(
        url=server.url, username=username, password=password, require_tls=False, enable_rfc6764=False
    ) as client:  # type: ignore[operator]
        principal = client.principal()
        return [str(principal.make_calendar(name=name, cal_id=name.lower()).url) for name in names]
