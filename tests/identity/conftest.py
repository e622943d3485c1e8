"""Fixtures for the identity layer: a migrated SQLite file, did:web hosts we control."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from models.db import make_engine
from tests.identity.helpers import DidWebHost, TestKey


@pytest.fixture
def sqlite_engine(sqlite_template: Path, tmp_path: Path) -> Iterator[Engine]:
    """One migrated SQLite database, for tests where the database kind does not matter."""
    path = tmp_path / "huddle.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}", pool_size=5)
    yield engine
    engine.dispose()


@pytest.fixture
def did_web_host() -> Iterator[Callable[..., DidWebHost]]:
    """`factory(key=None) -> DidWebHost`; all closed after the test."""
    hosts: list[DidWebHost] = []

    def start(key: TestKey | None = None) -> DidWebHost:
        host = DidWebHost(key)
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        host.close()
