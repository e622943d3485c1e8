"""Token buckets in the database: 429 with Retry-After, refill, and one budget across replicas."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine

from api.ratelimit import BucketPolicy, RateLimiter
from clients.identity import ServiceAuthVerifier, StoredReplayGuard
from models.db import make_engine
from tests.conftest import make_settings
from tests.identity.helpers import (
    SERVICE_DID,
    DidWebHost,
    bearer,
    build_app,
    client_for,
    make_identity,
)

HostFactory = Callable[..., DidWebHost]
MATCH = "com.huddle.match"
SLOW = 0.001  # tokens per second: nothing refills during a test
PLENTY = BucketPolicy(1000, 100.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def app_for(engine: Engine, limiter: RateLimiter, identity: object) -> object:
    settings = make_settings(str(engine.url), service_did=SERVICE_DID)
    verifier = ServiceAuthVerifier(
        identity,  # type: ignore[arg-type]
        service_did=SERVICE_DID,
        replay_guard=StoredReplayGuard(engine),
    )
    return build_app(settings, engine, identity, limiter=limiter, verifier=verifier)  # type: ignore[arg-type]


async def test_burst_over_capacity_is_429_with_retry_after(
    database_url: str, did_web_host: HostFactory
) -> None:
    engine = make_engine(database_url, pool_size=2)
    host = did_web_host()
    limiter = RateLimiter(engine, per_caller=BucketPolicy(3, 0.5), per_ip=PLENTY)
    try:
        async with make_identity("http://127.0.0.1:9") as identity:
            async with client_for(app_for(engine, limiter, identity)) as client:  # type: ignore[arg-type]
                remaining = []
                for _ in range(3):
                    resp = await client.post(f"/xrpc/{MATCH}", json={}, headers=bearer(host.token(MATCH)))
                    assert resp.status_code == 200, resp.text
                    remaining.append(resp.headers["RateLimit-Remaining"])
                assert remaining == ["2", "1", "0"]
                resp = await client.post(f"/xrpc/{MATCH}", json={}, headers=bearer(host.token(MATCH)))
    finally:
        engine.dispose()
    assert resp.status_code == 429
    assert resp.json()["error"] == "RateLimitExceeded"
    # One token every 2 s: the next one is at most 2 s away, and never announced as 0.
    assert resp.headers["Retry-After"] in {"1", "2"}


def test_bucket_refills_at_its_rate(sqlite_engine: Engine) -> None:
    clock = FakeClock()
    limiter = RateLimiter(sqlite_engine, per_caller=BucketPolicy(2, 4.0), per_ip=PLENTY, clock=clock)
    bucket = [("caller:did:plc:a", limiter.per_caller)]
    assert [limiter.consume(bucket).allowed for _ in range(3)] == [True, True, False]
    clock.now += 0.2  # not yet a whole token (one per 0.25 s)
    refused = limiter.consume(bucket)
    assert not refused.allowed and refused.retry_after == 1
    clock.now += 0.05
    assert limiter.consume(bucket).allowed
    assert not limiter.consume(bucket).allowed
    clock.now += 10  # full again, but never above capacity
    assert [limiter.consume(bucket).allowed for _ in range(3)] == [True, True, False]


def test_ip_bucket_is_shared_by_callers_and_refusals_cost_nothing(sqlite_engine: Engine) -> None:
    clock = FakeClock()
    limiter = RateLimiter(
        sqlite_engine, per_caller=BucketPolicy(1, SLOW), per_ip=BucketPolicy(3, SLOW), clock=clock
    )

    def call(did: str) -> bool:
        ip = limiter.per_ip
        return limiter.consume([(f"caller:{did}", limiter.per_caller), ("ip:10.0.0.1", ip)]).allowed

    assert call("did:plc:a")
    assert not call("did:plc:a")  # a's own bucket is empty: the IP is not charged for it
    assert call("did:plc:b")
    assert call("did:plc:c")
    assert not call("did:plc:d")  # the IP's three are spent
    assert not call("did:plc:d")
    assert limiter.consume([("caller:did:plc:d", limiter.per_caller)]).allowed  # d itself was never charged


async def test_one_budget_across_two_app_instances(database_url: str, did_web_host: HostFactory) -> None:
    host = did_web_host()
    engines = [make_engine(database_url, pool_size=2) for _ in range(2)]
    try:
        async with make_identity("http://127.0.0.1:9") as identity:
            limiters = [RateLimiter(e, per_caller=BucketPolicy(4, SLOW), per_ip=PLENTY) for e in engines]
            apps = [app_for(e, lim, identity) for e, lim in zip(engines, limiters, strict=True)]
            async with client_for(apps[0]) as one, client_for(apps[1]) as two:  # type: ignore[arg-type]
                statuses = []
                for client in (one, two, one, two, one, two):
                    resp = await client.post(f"/xrpc/{MATCH}", json={}, headers=bearer(host.token(MATCH)))
                    statuses.append(resp.status_code)
    finally:
        for e in engines:
            e.dispose()
    assert statuses == [200, 200, 200, 200, 429, 429]


def test_concurrent_replicas_cannot_overdraw_a_bucket(database_url: str) -> None:
    engines = [make_engine(database_url, pool_size=8) for _ in range(2)]
    limiters = [
        RateLimiter(e, per_caller=BucketPolicy(5, SLOW), per_ip=BucketPolicy(50, SLOW)) for e in engines
    ]
    try:

        def call(i: int) -> bool:
            limiter = limiters[i % 2]
            return limiter.consume(
                [("caller:did:plc:racer", limiter.per_caller), ("ip:192.0.2.7", limiter.per_ip)]
            ).allowed

        with ThreadPoolExecutor(max_workers=12) as pool:
            results = list(pool.map(call, range(24)))
    finally:
        for e in engines:
            e.dispose()
    assert results.count(True) == 5


def test_disabled_limiter_touches_nothing(sqlite_engine: Engine) -> None:
    limiter = RateLimiter(sqlite_engine, per_caller=BucketPolicy(1, SLOW), per_ip=PLENTY, enabled=False)
    assert all(limiter.consume([("caller:did:plc:a", limiter.per_caller)]).allowed for _ in range(5))


@pytest.mark.parametrize(("capacity", "rate"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_nonsense_policies_are_refused(capacity: int, rate: float) -> None:
    with pytest.raises(ValueError):
        BucketPolicy(capacity, rate)
