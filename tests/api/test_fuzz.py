"""Schemathesis over the API's OpenAPI document, with valid service-auth tokens: no answer is a 5xx."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from models.settings import REPO_ROOT
from tests.api.conftest import Api

pytestmark = [pytest.mark.parametrize("database_url", ["sqlite"], indirect=True), pytest.mark.slow]
EXAMPLES_PER_OPERATION = 40
AUTHED = (
    "com.huddle.match",
    "com.huddle.finalize",
    "com.huddle.respond",
    "com.huddle.cancel",
    "com.huddle.getBooking",
    "com.huddle.listBookings",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fuzz(
    operation: schemathesis.APIOperation,
    base: str,
    token: str | None,
    failures: list[str],
    seen: Counter[int],
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def check(case: schemathesis.Case) -> None:
        sent = case.as_transport_kwargs(base_url=base, headers=headers)
        body = sent.get("json")
        response = httpx.request(
            sent["method"],
            sent["url"],
            params=sent.get("params"),
            headers=sent.get("headers"),
            content=None if "json" in sent else sent.get("data"),
            json=body,
            timeout=60,
        )
        seen[response.status_code] += 1
        if response.status_code >= 500:
            failures.append(
                f"{case.method} {operation.path} {case.body!r} {case.query!r} → {response.status_code}"
            )

    check()


def test_no_operation_answers_5xx(database_url: str, api: Api, tmp_path: Path) -> None:
    api.host(durations=[30, 60])  # so that matching a real host is among what can happen
    guest = api.pds.create_account("fuzz")
    port = _free_port()
    env = {
        **os.environ,
        "HUDDLE_DEV_MODE": "true",
        "HUDDLE_DATABASE_URL": api.settings.database_url,
        "HUDDLE_TEMPORAL_ADDRESS": api.settings.temporal_address,
        "HUDDLE_TASK_QUEUE_PREFIX": api.settings.task_queue_prefix,
        "HUDDLE_PLC_URL": api.settings.plc_url,
        "HUDDLE_HANDLE_RESOLVER_URLS": api.settings.handle_resolver_urls,
        "HUDDLE_API_PORT": str(port),
        # Tokens are reused across generated cases; a real caller would fetch one per call.
        "HUDDLE_SERVICE_AUTH_REPLAY_CHECK": "false",
        "HUDDLE_RATE_LIMIT_ENABLED": "false",
    }
    log = (tmp_path / "api.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "api"], env=env, cwd=REPO_ROOT, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        expires = int(time.time()) + 3600
        tokens = {
            f"/xrpc/{nsid}": api.pds.mint_service_jwt(guest, api.settings.service_did, nsid, exp=expires)
            for nsid in AUTHED
        }
        operations = [r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)]
        assert {f"/xrpc/{nsid}" for nsid in AUTHED} <= {op.path for op in operations}
        failures: list[str] = []
        seen: Counter[int] = Counter()
        for operation in operations:
            if operation.path == "/readyz":
                continue  # its 503 is the honest "not ready" answer, not a crash
            _fuzz(operation, base, tokens.get(operation.path), failures, seen)
        assert failures == [], failures[:10]
        # The tokens were good: generated input got past auth into validation (400s, not only 401s).
        assert seen[400] > 50 and seen[401] < sum(seen.values()) // 2, seen
    finally:
        server.terminate()
        server.wait(10)
        log.close()
