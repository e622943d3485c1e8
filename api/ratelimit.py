"""Token buckets per caller DID and per client IP for procedures, in the database.

Each bucket is one row holding its theoretical arrival time (`tat`, the GCRA form of a token
bucket): with `capacity` C and refill rate r, a call is allowed when
`max(tat, now) + 1/r - now <= C/r`, and then moves `tat` to `max(tat, now) + 1/r`. Allowing
and consuming is one conditional UPDATE, so replicas sharing the database cannot both take the
last token: Postgres re-checks the WHERE on the locked row, SQLite writes under BEGIN IMMEDIATE
(see `ephemeral_write` for the durability trade-off).
A refused call consumes nothing, from either bucket (one transaction for both).

Wiring: `app.state.rate_limiter = RateLimiter.from_settings(cfg, engine)` in the lifespan, then
`dependencies=[RateLimited]` on each procedure route (it authenticates first, see api/auth.py).
The client IP is `request.client.host`: behind a load balancer, run uvicorn with
`--proxy-headers --forwarded-allow-ips=<the balancer>` so it is the real client's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import anyio.to_thread
from fastapi import Depends, Request, Response
from sqlalchemy import Connection, Engine, Float, case, delete, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from api.auth import Caller, XrpcError
from models.auth_tables import RateLimitBucket, ephemeral_write
from models.settings import Settings
from workers.telemetry import rate_limit_rejected

_table = RateLimitBucket.__table__  # type: ignore[attr-defined]
_EPSILON = 1e-9


@dataclass(frozen=True)
class BucketPolicy:
    """`capacity` calls at once, refilled at `refill_per_second`."""

    capacity: int
    refill_per_second: float

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.refill_per_second <= 0:
            raise ValueError("a bucket needs capacity >= 1 and a positive refill rate")

    @property
    def interval(self) -> float:
        return 1.0 / self.refill_per_second

    @property
    def burst(self) -> float:
        return self.capacity * self.interval


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int  # capacity of the tightest bucket
    remaining: int  # calls left in the tightest bucket
    retry_after: int  # whole seconds (>= 1) when refused, 0 when allowed

    def headers(self) -> dict[str, str]:
        out = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining)}
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


class RateLimiter:
    """Buckets `caller:<did>` and `ip:<address>`, shared by every replica through the database."""

    def __init__(
        self,
        engine: Engine,
        *,
        per_caller: BucketPolicy,
        per_ip: BucketPolicy,
        enabled: bool = True,
        sweep_interval: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        name = engine.dialect.name
        if name not in ("postgresql", "sqlite"):
            raise ValueError(f"unsupported database for rate limits: {name}")
        self._dialect = postgresql if name == "postgresql" else sqlite
        self._engine = engine
        self.per_caller = per_caller
        self.per_ip = per_ip
        self.enabled = enabled
        self._sweep_interval = sweep_interval
        self._clock = clock
        self._last_sweep = clock()

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> RateLimiter:
        return cls(
            engine,
            per_caller=BucketPolicy(
                settings.rate_limit_caller_capacity,
                settings.rate_limit_caller_refill_per_second,
            ),
            per_ip=BucketPolicy(
                settings.rate_limit_ip_capacity,
                settings.rate_limit_ip_refill_per_second,
            ),
            enabled=settings.rate_limit_enabled,
        )

    async def check(self, caller_did: str, client_ip: str | None) -> RateDecision:
        """Take one token from the caller's bucket and the IP's, or from neither."""
        buckets = [(f"caller:{caller_did}", self.per_caller)]
        if client_ip:
            buckets.append((f"ip:{client_ip}", self.per_ip))
        return await anyio.to_thread.run_sync(self.consume, buckets)

    def consume(self, buckets: Sequence[tuple[str, BucketPolicy]]) -> RateDecision:
        """All-or-nothing: one token from each bucket, in one transaction."""
        if not self.enabled or not buckets:
            tightest = min((p for _, p in buckets), key=lambda p: p.capacity, default=self.per_caller)
            return RateDecision(True, tightest.capacity, tightest.capacity, 0)
        now = self._clock()
        granted: list[tuple[BucketPolicy, float]] = []
        refused: list[tuple[BucketPolicy, float]] = []
        # Sorted keys: every transaction locks rows in the same order, so no deadlock on Postgres.
        ordered = sorted(buckets, key=lambda b: b[0])
        with ephemeral_write(self._engine) as conn:
            for key, policy in ordered:
                tat = self._take(conn, key, policy, now)
                if tat is None:
                    current = conn.execute(select(_table.c.tat).where(_table.c.key == key)).scalar_one()
                    refused.append((policy, current))
                else:
                    granted.append((policy, tat))
            if refused:
                conn.rollback()  # all or nothing: a refused call costs no bucket anything
        if now - self._last_sweep >= self._sweep_interval:
            self._last_sweep = now
            self.sweep(now)
        if refused:
            waits = [tat + p.interval - p.burst - now for p, tat in refused]
            policy = refused[0][0]
            return RateDecision(False, policy.capacity, 0, max(1, math.ceil(max(waits) - _EPSILON)))
        remaining = [(p, math.floor(p.capacity - (tat - now) / p.interval + _EPSILON)) for p, tat in granted]
        policy, left = min(remaining, key=lambda pr: pr[1])
        return RateDecision(True, policy.capacity, max(0, left), 0)

    def _take(self, conn: Connection, key: str, policy: BucketPolicy, now: float) -> float | None:
        """The bucket's new `tat` if a token was taken; None if the bucket is empty."""
        for _ in range(2):
            start = case((_table.c.tat > now, _table.c.tat), else_=literal(now, Float))
            taken = conn.execute(
                update(_table)
                .where(_table.c.key == key, start + policy.interval - now <= policy.burst + _EPSILON)
                .values(tat=start + policy.interval)
                .returning(_table.c.tat)
            ).scalar_one_or_none()
            if taken is not None:
                return float(taken)
            created = conn.execute(
                self._dialect.insert(_table)
                .values(key=key, tat=now + policy.interval)
                .on_conflict_do_nothing(index_elements=[_table.c.key])
                .returning(_table.c.tat)
            ).scalar_one_or_none()
            if created is not None:
                return float(created)
            # The row exists: either the bucket is empty, or another replica created it between our
            # UPDATE and INSERT (Postgres) — one more UPDATE tells which.
        return None

    def sweep(self, now: float | None = None) -> int:
        """Delete buckets that are full again (a missing row is a full bucket)."""
        cutoff = self._clock() if now is None else now
        with ephemeral_write(self._engine) as conn:
            return conn.execute(delete(_table).where(_table.c.tat < cutoff)).rowcount


def get_rate_limiter(request: Request) -> RateLimiter:
    found = getattr(request.app.state, "rate_limiter", None)
    if not isinstance(found, RateLimiter):
        raise RuntimeError(
            "app.state.rate_limiter is not set: create_app's lifespan must install RateLimiter"
        )
    return found


async def limit_procedure(request: Request, response: Response, caller: Caller) -> None:
    """Charge the authenticated caller and its IP one call; 429 RateLimitExceeded when either is empty."""
    decision = await get_rate_limiter(request).check(
        caller.did, request.client.host if request.client else None
    )
    if not decision.allowed:
        rate_limit_rejected(request.url.path)
        raise XrpcError(
            429,
            "RateLimitExceeded",
            f"Rate Limit Exceeded: try again in {decision.retry_after} s",
            headers=decision.headers(),
        )
    response.headers.update(decision.headers())


RateLimited = Depends(limit_procedure)
