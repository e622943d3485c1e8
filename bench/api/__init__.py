"""XRPC reads under load: `listOffers` and `getBooking`, 50 concurrent clients, through real uvicorn.

With service auth on (tokens signed by the real PDS account keys, DID documents cached after the
first request; every request carries a fresh jti, so the replay check writes once per request),
against the same endpoints with the caller dependency bypassed, in the same run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.table import Row, percentile, row
from models.db import make_engine, session_scope
from models.migrate import migrate
from models.settings import Settings
from models.tables import Booking, OfferIndex, User
from models.types import utcnow
from tests.api.server import free_port
from tests.bookings.helpers import offer_record
from tests.peers.pds_peer import PdsPeer


class _Server:
    """The API in its own process (as in production), so the load generator does not share its GIL."""

    def __init__(self, mode: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.api.server", str(self.port), mode], env={**os.environ, **env}
        )

    def __enter__(self) -> str:
        base = f"http://127.0.0.1:{self.port}"
        for _ in range(200):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                return base
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("benchmark API server did not start")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def _load(
    base: str, paths: list[tuple[str, dict[str, str]]], clients: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    todo = list(reversed(paths))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

        async def one_client() -> None:
            while todo:
                path, headers = todo.pop()
                started = time.perf_counter()
                resp = await http.get(path, headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
                if resp.status_code != 200:
                    raise RuntimeError(f"{path}: {resp.status_code} {resp.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
    return time.perf_counter() - started, latencies


def _seed(engine: Any, host_did: str, guest_did: str) -> str:
    booking = uuid.uuid4().hex[:20]
    start = utcnow() + timedelta(days=2)
    with session_scope(engine) as session:
        session.add(User(did=host_did, handle="host.test"))
        for n in range(30):
            uri = f"at://{host_did}/com.huddle.slotOffer/3kbench{n:05d}"
            record = offer_record(title=f"Hours {n}")
            session.add(
                OfferIndex(
                    uri=uri,
                    did=host_did,
                    rkey=uri.rsplit("/", 1)[1],
                    cid="bafy",
                    record=record,
                    title=record["title"],
                    timezone="UTC",
                )
            )
        session.add(
            Booking(
                id=booking,
                workflow_id=f"booking-{booking}",
                host_did=host_did,
                guest_did=guest_did,
                offer_uri=f"at://{host_did}/com.huddle.slotOffer/3kbench00000",
                duration_minutes=30,
                state="confirmed",
                start_at=start,
                end_at=start + timedelta(minutes=30),
                block_start=start,
                block_end=start + timedelta(minutes=30),
                idempotency_key="k",
            )
        )
    return booking


def run(requests: int = 2000, clients: int = 50) -> list[Row]:
    tmp = Path(tempfile.mkdtemp(prefix="huddle-bench-api-"))
    url = f"sqlite:///{tmp / 'api.db'}"
    migrate(url)
    engine = make_engine(url)
    rows: list[Row] = []
    with PdsPeer(quiet_install=True) as pds:
        host, guest = pds.create_account("host"), pds.create_account("guest")
        booking = _seed(engine, host.did, guest.did)
        env = {
            "HUDDLE_DEV_MODE": "true",
            "HUDDLE_DATABASE_URL": url,
            "HUDDLE_PLC_URL": pds.plc_url,
            "HUDDLE_RATE_LIMIT_ENABLED": "false",
            "HUDDLE_TEMPORAL_ADDRESS": "127.0.0.1:1",
            "HUDDLE_BENCH_CALLER": guest.did,
        }
        service_did = Settings(_env_file=None, dev_mode=True).service_did  # type: ignore[call-arg]

        def tokens(nsid: str) -> list[dict[str, str]]:
            return [
                {"Authorization": f"Bearer {pds.mint_service_jwt(guest, service_did, nsid)}"}
                for _ in range(requests)
            ]

        get_path = f"/xrpc/com.huddle.getBooking?booking={booking}"
        list_path = f"/xrpc/com.huddle.listOffers?host={host.did}&limit=20"
        with _Server("auth", env) as base_auth, _Server("open", env) as base_open:
            # Warm: one request resolves the guest's DID document, then a round at full concurrency.
            warm = tokens("com.huddle.getBooking")[: clients + 1]
            asyncio.run(_load(base_auth, [(get_path, warm[0])], 1))
            asyncio.run(_load(base_auth, [(get_path, h) for h in warm[1:]], clients))
            asyncio.run(_load(base_open, [(get_path, {})] * clients, clients))
            signed = tokens("com.huddle.getBooking")
            cases = {
                "getBooking": (
                    asyncio.run(_load(base_auth, [(get_path, h) for h in signed], clients)),
                    asyncio.run(_load(base_open, [(get_path, {})] * requests, clients)),
                ),
                "listOffers (public)": (
                    asyncio.run(_load(base_auth, [(list_path, {})] * requests, clients)),
                    asyncio.run(_load(base_open, [(list_path, {})] * requests, clients)),
                ),
            }
    engine.dispose()
    for name, ((auth_s, auth_ms), (open_s, open_ms)) in cases.items():
        case = f"{name}, {clients} clients, {requests} requests"
        rows.append(
            row("api", case, "requests/s auth on (vs auth off)", requests / auth_s, requests / open_s)
        )
        rows.append(
            row("api", case, "p99 ms auth on (vs auth off)", percentile(auth_ms, 99), percentile(open_ms, 99))
        )
    return rows
