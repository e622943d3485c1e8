"""pytest fixtures for the real-PDS peer. Load with ``pytest_plugins = ["tests.peers.fixtures"]``.

- ``pds_peer`` (session): one real PDS + PLC for the whole run, started on first use.
  With ``HUDDLE_SKIP_PDS=1`` the tests using it are skipped; otherwise a peer that cannot be
  installed or started is an error, never a skip.
- ``pds_peer_factory`` (function): ``start()`` more peers (fresh PLC and data each), stopped
  after the test. For tests that stop or break a PDS; each costs about 2-3 s and 250 MB.

The first run on a machine installs Node 22 and the PDS (a few minutes: better-sqlite3 compiles).
That happens after collection, outside any test's timeout, with progress on the terminal, and
only if a selected test uses one of these fixtures. ``python -m tests.peers.pds_install`` does
it ahead of time.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator

import pytest

from tests.peers import pds_install
from tests.peers.pds_peer import PdsPeer

FIXTURES = ("pds_peer", "pds_peer_factory")


def _skip_requested() -> bool:
    return os.environ.get("HUDDLE_SKIP_PDS") == "1"


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """Install ahead of the tests that need it, so the install does not count against a test timeout."""
    if _skip_requested() or pds_install.is_installed():
        return
    if not any(name in FIXTURES for item in items for name in getattr(item, "fixturenames", ())):
        return
    capman = config.pluginmanager.getplugin("capturemanager")
    ctx = capman.global_and_fixture_disabled() if capman else None
    if ctx is not None:
        ctx.__enter__()
    try:
        print(
            "\n[pds-install] installing the real-PDS test peer (first run on this machine)", file=sys.stderr
        )
        pds_install.install()
    except Exception as e:  # the fixture tries again and reports it as an error
        print(f"[pds-install] FAILED: {e}", file=sys.stderr)
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)


@pytest.fixture(scope="session")
def pds_peer() -> Iterator[PdsPeer]:
    """A running real PDS + PLC, shared by the session. Create your own accounts on it."""
    if _skip_requested():
        pytest.skip("real PDS peer disabled by HUDDLE_SKIP_PDS=1")
    peer = PdsPeer(quiet_install=True)
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture
def pds_peer_factory() -> Iterator[Callable[..., PdsPeer]]:
    """``factory(**PdsPeer kwargs) -> started PdsPeer``; all stopped after the test."""
    if _skip_requested():
        pytest.skip("real PDS peer disabled by HUDDLE_SKIP_PDS=1")
    peers: list[PdsPeer] = []

    def start(**kwargs: object) -> PdsPeer:
        peer = PdsPeer(**kwargs)  # type: ignore[arg-type]
        peers.append(peer)
        return peer.start()

    try:
        yield start
    finally:
        for peer in peers:
            peer.stop()
