"""The consumer against the real local PDS: offers, refusals, follows, identity and account events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from api.readiness import _firehose
from clients.graph import StoredFollowGraph
from models.index_store import OFFER_NSID
from models.index_tables import OfferRejection
from models.tables import FirehoseCursor, OfferIndex, User
from tests.firehose.conftest import peer_settings
from tests.firehose.helpers import RunningConsumer, converges, offer_record, wait_until
from tests.peers.pds_peer import PdsPeer

pytestmark = pytest.mark.pds


def _offer(engine: Engine, uri: str) -> OfferIndex | None:
    with Session(engine) as session:
        return session.get(OfferIndex, uri)


def _user(engine: Engine, did: str) -> User | None:
    with Session(engine) as session:
        return session.get(User, did)


async def test_offers_follow_the_pds_within_a_second(
    engine: Engine, database_url: str, pds_peer: PdsPeer, consumers: Callable[..., RunningConsumer]
) -> None:
    settings = peer_settings(database_url, pds_peer)
    await consumers(engine, settings).start()
    host = await asyncio.to_thread(pds_peer.create_account, "host")

    uri, cid = await asyncio.to_thread(pds_peer.create_record, host, OFFER_NSID, offer_record("Mornings"))
    took = await wait_until(lambda: _offer(engine, uri) is not None, 1.0, what="offer indexed")
    row = _offer(engine, uri)
    assert row is not None and row.cid == cid and row.title == "Mornings" and not row.deleted
    assert row.record == {"$type": OFFER_NSID, **offer_record("Mornings")}
    assert row.did == host.did and row.timezone == "Europe/Berlin" and row.rev

    rkey = uri.rsplit("/", 1)[1]
    _, cid2 = await asyncio.to_thread(
        pds_peer.put_record, host, OFFER_NSID, rkey, offer_record("Afternoons", policy="followers")
    )
    took = max(took, await wait_until(lambda: _offer(engine, uri).cid == cid2, 1.0, what="edit indexed"))  # type: ignore[union-attr]
    row = _offer(engine, uri)
    assert row is not None and row.title == "Afternoons" and row.policy == "followers"

    await asyncio.to_thread(pds_peer.delete_record, host, OFFER_NSID, rkey)
    took = max(took, await wait_until(lambda: _offer(engine, uri).deleted, 1.0, what="delete indexed"))  # type: ignore[union-attr]
    print(f"slowest of create/edit/delete: {took * 1000:.0f} ms")


async def test_an_invalid_offer_is_refused_counted_and_logged_once(
    engine: Engine,
    database_url: str,
    pds_peer: PdsPeer,
    consumers: Callable[..., RunningConsumer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="huddle.firehose")
    settings = peer_settings(database_url, pds_peer, firehose_start_cursor=-1)  # this test's events only
    running = consumers(engine, settings)
    consumer = await running.start()
    host = await asyncio.to_thread(pds_peer.create_account, "host")
    good, _ = await asyncio.to_thread(pds_peer.create_record, host, OFFER_NSID, offer_record())
    bad, bad_cid = await asyncio.to_thread(
        pds_peer.create_record, host, OFFER_NSID, offer_record(timezone="Mars/Olympus")
    )

    def refused() -> bool:
        with Session(engine) as session:
            return session.get(OfferRejection, (bad, bad_cid)) is not None

    await wait_until(refused, 2.0, what="refusal recorded")
    await running.settle()
    assert _offer(engine, bad) is None and _offer(engine, good) is not None
    with Session(engine) as session:
        rejection = session.get(OfferRejection, (bad, bad_cid))
    assert rejection is not None and rejection.reason == "timezone" and "Mars/Olympus" in rejection.message
    assert consumer.metrics.totals["rejected.timezone"] == 1
    logged = [r for r in caplog.records if bad in r.getMessage()]
    assert len(logged) == 1

    # A valid offer edited into an invalid one stops being listed (never a half-valid record).
    rkey = good.rsplit("/", 1)[1]
    await asyncio.to_thread(pds_peer.put_record, host, OFFER_NSID, rkey, offer_record(durations=[1]))
    await wait_until(lambda: _offer(engine, good).deleted, 1.0, what="offer hidden")  # type: ignore[union-attr]

    # Replaying the whole stream (a second consumer from cursor 0) logs nothing again.
    await running.stop()
    caplog.clear()
    replay = consumers(engine, peer_settings(database_url, pds_peer, firehose_start_cursor=0))
    replay_consumer = await replay.start()
    await wait_until(lambda: replay_consumer.resume_cursor() is not None, 5.0, what="replay")
    await replay.settle()
    assert not [r for r in caplog.records if bad in r.getMessage()]


async def test_follows_and_unfollows_change_policy_answers(
    engine: Engine, database_url: str, pds_peer: PdsPeer, consumers: Callable[..., RunningConsumer]
) -> None:
    settings = peer_settings(database_url, pds_peer)
    await consumers(engine, settings).start()
    host = await asyncio.to_thread(pds_peer.create_account, "host")
    guest = await asyncio.to_thread(pds_peer.create_account, "guest")
    await asyncio.to_thread(pds_peer.create_record, host, OFFER_NSID, offer_record(policy="mutuals"))
    graph = StoredFollowGraph(engine)  # the edges alone, as the booking policy reads them
    await wait_until(lambda: _offer_count(engine, host.did) == 1, 2.0, what="host known")

    follow = await asyncio.to_thread(pds_peer.follow, guest, host.did)  # guest unknown, host known
    await wait_until(lambda: graph.follows(guest.did, host.did), 1.0, what="guest follows host")
    back = await asyncio.to_thread(pds_peer.follow, host, guest.did)  # the host's repo is followed
    await wait_until(lambda: graph.follows(host.did, guest.did), 1.0, what="host follows guest")

    await asyncio.to_thread(pds_peer.unfollow, guest, follow)
    await wait_until(lambda: not graph.follows(guest.did, host.did), 1.0, what="unfollow")
    await asyncio.to_thread(pds_peer.unfollow, host, back)
    await wait_until(lambda: not graph.follows(host.did, guest.did), 1.0, what="unfollow back")


async def test_handle_changes_and_account_status_reach_the_users_table(
    engine: Engine, database_url: str, pds_peer: PdsPeer, consumers: Callable[..., RunningConsumer]
) -> None:
    settings = peer_settings(database_url, pds_peer)
    await consumers(engine, settings).start()
    host = await asyncio.to_thread(pds_peer.create_account, "host")
    uri, _ = await asyncio.to_thread(pds_peer.create_record, host, OFFER_NSID, offer_record())
    await wait_until(lambda: _offer(engine, uri) is not None, 2.0, what="host known")

    renamed = f"re-{host.handle.split('.')[0]}"[:18]
    new_handle = await asyncio.to_thread(pds_peer.update_handle, host, renamed)
    handle_now = lambda: getattr(_user(engine, host.did), "handle", None)  # noqa: E731
    await wait_until(lambda: handle_now() == new_handle, 2.0, what="handle")

    await asyncio.to_thread(pds_peer.deactivate_account, host)
    await wait_until(lambda: _user(engine, host.did).active is False, 2.0, what="deactivated")  # type: ignore[union-attr]
    row = _offer(engine, uri)
    assert row is not None and not row.deleted  # hidden through users.active, back when reactivated

    await asyncio.to_thread(pds_peer.activate_account, host)
    await wait_until(lambda: _user(engine, host.did).active is True, 2.0, what="reactivated")  # type: ignore[union-attr]


async def test_readiness_sees_the_consumer_connected_and_then_stopped(
    engine: Engine, database_url: str, pds_peer: PdsPeer, consumers: Callable[..., RunningConsumer]
) -> None:
    settings = peer_settings(database_url, pds_peer)
    running = consumers(engine, settings)
    assert not _firehose(engine, settings).ok
    await running.start()
    await wait_until(lambda: _firehose(engine, settings).ok, 2.0, what="ready")
    await running.stop()
    check = _firehose(engine, settings)
    assert not check.ok and "not connected" in check.detail


async def test_restart_resumes_from_the_stored_cursor(
    engine: Engine, database_url: str, pds_peer: PdsPeer, consumers: Callable[..., RunningConsumer]
) -> None:
    settings = peer_settings(database_url, pds_peer, firehose_start_cursor=-1)  # live events only
    host = await asyncio.to_thread(pds_peer.create_account, "host")
    first = consumers(engine, settings)
    await first.start()
    await asyncio.to_thread(pds_peer.create_record, host, OFFER_NSID, offer_record("one"))
    await converges(engine, pds_peer, [host])
    await first.stop()
    stored = first.consumer.resume_cursor()
    assert stored is not None

    # Written while no consumer runs: picked up on restart, from the cursor (not from live events).
    await asyncio.to_thread(pds_peer.create_record, host, OFFER_NSID, offer_record("two"))
    second = consumers(engine, settings)
    await second.start()
    await converges(engine, pds_peer, [host])
    assert len(_offers_of(engine, host.did)) == 2


def _offer_count(engine: Engine, did: str) -> int:
    return len(_offers_of(engine, did))


def _offers_of(engine: Engine, did: str) -> list[OfferIndex]:
    with Session(engine) as session:
        return list(session.exec(select(OfferIndex).where(OfferIndex.did == did)))


async def test_a_cursor_from_the_future_resumes_with_live_events(
    engine: Engine, database_url: str, pds_peer: PdsPeer, consumers: Callable[..., RunningConsumer]
) -> None:
    settings = peer_settings(database_url, pds_peer)
    with Session(engine) as session:  # e.g. the PDS was reset under a stored cursor
        session.add(FirehoseCursor(source=settings.relay_url, cursor=10**9))
        session.commit()
    running = consumers(engine, settings)
    consumer = await running.start()
    # The PDS closes with "FutureCursor"; the consumer forgets the cursor and comes back live.
    await wait_until(lambda: consumer.metrics.totals["reconnects"] >= 1, 5.0, what="refused")
    await asyncio.wait_for(consumer.connected.wait(), 5.0)
    host = await asyncio.to_thread(pds_peer.create_account, "host")
    uri, _ = await asyncio.to_thread(pds_peer.create_record, host, OFFER_NSID, offer_record())
    await wait_until(lambda: _offer(engine, uri) is not None, 2.0, what="live offer indexed")
    with Session(engine) as session:
        stored = session.get(FirehoseCursor, settings.relay_url)
    assert stored is not None and stored.cursor < 10**9
