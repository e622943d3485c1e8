"""The issue's acceptance, in-process: the firehose consumer, the workers and the API beside the real PDS.

An offer written to the PDS is in `com.huddle.listOffers` within a second and gone within a second
of its deletion; a followers-only offer denies a guest until the guest follows the host on the PDS.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine

from api.main import create_app
from clients.graph import StoredFollowGraph
from models.index_store import OFFER_NSID
from models.settings import Settings
from tests.bookings.helpers import offer_record
from tests.firehose.helpers import RunningConsumer
from tests.peers.pds_peer import PdsPeer

pytestmark = pytest.mark.pds


@pytest_asyncio.fixture
async def http(worker: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(worker)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://huddle.test") as client:
            yield client


async def _listed(http: httpx.AsyncClient, host: str) -> list[str]:
    resp = await http.get("/xrpc/com.huddle.listOffers", params={"host": host})
    assert resp.status_code == 200, resp.text
    return [o["uri"] for o in resp.json()["offers"]]


async def _within(seconds: float, check: Callable[[], Any]) -> float:
    start = time.monotonic()
    while not await check():
        assert time.monotonic() - start < seconds, f"not within {seconds} s"
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def test_an_offer_written_to_the_pds_is_listed_within_a_second_and_gone_when_deleted(
    worker: Settings,
    engine: Engine,
    pds_peer: PdsPeer,
    http: httpx.AsyncClient,
    consumers: Callable[..., RunningConsumer],
) -> None:
    await consumers(engine, worker).start()
    host = await asyncio.to_thread(pds_peer.create_account, "host")
    uri, _ = await asyncio.to_thread(pds_peer.create_record, host, OFFER_NSID, offer_record())

    async def listed() -> bool:
        return await _listed(http, host.did) == [uri]

    async def gone() -> bool:
        return await _listed(http, host.did) == []

    await _within(1.0, listed)
    await asyncio.to_thread(pds_peer.delete_record, host, OFFER_NSID, uri.rsplit("/", 1)[1])
    await _within(1.0, gone)


async def test_a_followers_only_offer_opens_when_the_guest_follows_the_host_on_the_pds(
    worker: Settings,
    engine: Engine,
    pds_peer: PdsPeer,
    http: httpx.AsyncClient,
    consumers: Callable[..., RunningConsumer],
) -> None:
    await consumers(engine, worker).start()
    host = await asyncio.to_thread(pds_peer.create_account, "host")
    guest = await asyncio.to_thread(pds_peer.create_account, "guest")
    uri, _ = await asyncio.to_thread(
        pds_peer.create_record, host, OFFER_NSID, offer_record(policy="followers")
    )

    async def listed() -> bool:
        return await _listed(http, host.did) == [uri]

    await _within(2.0, listed)

    async def match(key: str) -> dict[str, Any]:
        nsid = "com.huddle.match"
        token = await asyncio.to_thread(pds_peer.service_auth, guest, aud=worker.service_did, lxm=nsid)
        body = {"host": host.did, "offer": uri, "durationMinutes": 30, "idempotencyKey": key}
        resp = await http.post(f"/xrpc/{nsid}", json=body, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200, resp.text
        return resp.json()

    denied = await match("before-following")
    assert denied["state"] == "denied" and "follow" in denied["reason"]

    await asyncio.to_thread(pds_peer.follow, guest, host.did)
    edges = StoredFollowGraph(engine)

    async def followed() -> bool:
        return await asyncio.to_thread(edges.follows, guest.did, host.did)

    await _within(1.0, followed)
    held = await match("after-following")
    assert held["state"] == "held", held
