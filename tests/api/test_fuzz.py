"""Schemathesis over the API's OpenAPI document, with valid service-auth tokens: no answer is a 5xx."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from tests.api.conftest import Api
from tests.api.server import api_process

pytestmark = [pytest.mark.parametrize("database_url", ["sqlite"], indirect=True), pytest.mark.slow]
EXAMPLES_PER_OPERATION = 40
AUTHED = (
    "com.huddle.match",
    "com.huddle.finalize",
    "com.huddle.respond",
    "com.huddle.cancel",
    "com.huddle.reschedule",
    "com.huddle.getBooking",
    "com.huddle.listBookings",
)


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
    # Tokens are reused across generated cases (a real caller would fetch one per call).
    replay_off = {"HUDDLE_SERVICE_AUTH_REPLAY_CHECK": "false", "HUDDLE_RATE_LIMIT_ENABLED": "false"}
    with api_process(api.settings, tmp_path / "api.log", **replay_off) as base:
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
