"""Killed, restarted and cut off mid-stream, the consumer still ends with exactly what the PDS holds."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from models.index_store import OFFER_NSID
from tests.firehose.conftest import peer_settings
from tests.firehose.helpers import RunningConsumer, TcpProxy, converges, offer_record
from tests.peers.pds_peer import Account, PdsPeer

pytestmark = pytest.mark.pds
REPO_ROOT = Path(__file__).resolve().parents[2]


class Workload:
    """Random creates, edits and deletes of offers, follows and unfollows, by a few accounts."""

    def __init__(self, peer: PdsPeer, hosts: list[Account], fan: Account, seed: int) -> None:
        self.peer = peer
        self.hosts = hosts
        self.fan = fan
        self.rng = random.Random(seed)
        self.offers: dict[str, tuple[Account, str]] = {}  # uri -> (account, rkey)
        self.follows: dict[str, Account] = {}  # uri -> author
        self.done: Counter[str] = Counter()

    def step(self) -> None:
        peer, rng = self.peer, self.rng
        roll = rng.random()
        host = rng.choice(self.hosts)
        if roll < 0.3 or not self.offers:
            uri, _ = peer.create_record(host, OFFER_NSID, offer_record(f"offer {rng.randrange(10**6)}"))
            self.offers[uri] = (host, uri.rsplit("/", 1)[1])
            self.done["offer_create"] += 1
        elif roll < 0.45:
            account, rkey = self.offers[rng.choice(sorted(self.offers))]
            peer.put_record(account, OFFER_NSID, rkey, offer_record(f"edited {rng.randrange(10**6)}"))
            self.done["offer_edit"] += 1
        elif roll < 0.55:
            uri = rng.choice(sorted(self.offers))
            account, rkey = self.offers.pop(uri)
            peer.delete_record(account, OFFER_NSID, rkey)
            self.done["offer_delete"] += 1
        elif roll < 0.85 or not self.follows:
            author = rng.choice([*self.hosts, self.fan])
            subject = rng.choice([h for h in self.hosts if h is not author])
            self.follows[peer.follow(author, subject.did)] = author
            self.done["follow"] += 1
        else:
            uri = rng.choice(sorted(self.follows))
            peer.unfollow(self.follows.pop(uri), uri)
            self.done["unfollow"] += 1


async def _accounts(peer: PdsPeer, n_hosts: int = 3) -> tuple[list[Account], Account]:
    hosts = [await asyncio.to_thread(peer.create_account, f"host{i}") for i in range(n_hosts)]
    for host in hosts:  # hosts are known to Huddle through their offers
        await asyncio.to_thread(peer.create_record, host, OFFER_NSID, offer_record("first"))
    fan = await asyncio.to_thread(peer.create_account, "fan")
    return hosts, fan


async def _assert_index_is_the_pds(engine: Engine, peer: PdsPeer, work: Workload) -> None:
    hosts, fan = work.hosts, work.fan
    assert set(work.done) == {"offer_create", "offer_edit", "offer_delete", "follow", "unfollow"}
    offers, follows = await converges(engine, peer, [*hosts, fan], within=20)
    assert offers and follows
    # The fan is nobody Huddle knows: only its follows of known hosts are kept, and all of those are.
    assert all(subject in {h.did for h in hosts} for subject in follows.values())


def _spawn_firehose(database_url: str, peer: PdsPeer, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUDDLE_")}
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        HUDDLE_DATABASE_URL=database_url,
        HUDDLE_RELAY_URL=f"ws://127.0.0.1:{peer.pds_port}",
        HUDDLE_PLC_URL=f"http://127.0.0.1:{peer.plc_port}",
        HUDDLE_DEV_MODE="true",
        HUDDLE_FIREHOSE_FLUSH_SECONDS="0.02",
        HUDDLE_FIREHOSE_CURSOR_EVERY_EVENTS="5",
        HUDDLE_FIREHOSE_CURSOR_EVERY_SECONDS="0.2",
        HUDDLE_FIREHOSE_KNOWN_REFRESH_SECONDS="0.3",
    )
    log = open(tmp_path / f"firehose-{len(list(tmp_path.glob('firehose-*')))}.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "firehose"], cwd=tmp_path, env=env, stdout=log, stderr=log
    )


@pytest.mark.slow
async def test_killed_and_restarted_mid_stream_ends_with_exactly_the_pds_records(
    engine: Engine, database_url: str, pds_peer: PdsPeer, tmp_path: Path
) -> None:
    hosts, fan = await _accounts(pds_peer)
    work = Workload(pds_peer, hosts, fan, seed=6)
    proc = _spawn_firehose(database_url, pds_peer, tmp_path)
    try:
        for round_ in range(3):
            for _ in range(20):
                await asyncio.to_thread(work.step)
            if round_ < 2:
                proc.send_signal(signal.SIGKILL)  # no graceful shutdown: no last flush, no cursor save
                await asyncio.to_thread(proc.wait)
                for _ in range(5):  # written while no consumer runs
                    await asyncio.to_thread(work.step)
                proc = _spawn_firehose(database_url, pds_peer, tmp_path)
        await _assert_index_is_the_pds(engine, pds_peer, work)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 20)
    logs = await asyncio.to_thread(_read_logs, tmp_path)
    assert "Traceback" not in logs, logs[-3000:]


def _read_logs(tmp_path: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("firehose-*.log")))


@pytest.mark.slow
async def test_fifty_forced_disconnects_change_nothing(
    engine: Engine,
    database_url: str,
    pds_peer: PdsPeer,
    proxy: TcpProxy,
    consumers: Callable[..., RunningConsumer],
) -> None:
    settings = peer_settings(
        database_url,
        pds_peer,
        firehose_backoff_initial_seconds=0.01,
        firehose_backoff_max_seconds=0.1,
        firehose_cursor_every_events=3,
    )
    hosts, fan = await _accounts(pds_peer)
    running = consumers(engine, settings, source=proxy.url)
    consumer = await running.start()
    work = Workload(pds_peer, hosts, fan, seed=50)
    rng = random.Random(50)

    async def write() -> None:
        for _ in range(60):
            await asyncio.to_thread(work.step)

    async def cut() -> None:
        while proxy.cuts < 50:
            await asyncio.wait_for(consumer.connected.wait(), 10)
            await asyncio.sleep(rng.uniform(0, 0.08))
            if proxy.cut():
                while consumer.connected.is_set():  # noqa: ASYNC110 (until the consumer has seen it)
                    await asyncio.sleep(0.002)

    await asyncio.gather(write(), cut())
    assert proxy.cuts == 50
    assert consumer.metrics.totals["reconnects"] >= 50
    await _assert_index_is_the_pds(engine, pds_peer, work)
