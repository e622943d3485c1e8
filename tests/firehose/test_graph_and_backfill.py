"""Follow answers backfilled from repos on first need, `huddle backfill`, and drift repair on Temporal."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.client import Client

from clients.graph import StoredFollowGraph, follow_graph
from clients.repo_reader import RepoRefresher, RepoUnavailable
from models.index_store import OFFER_NSID
from models.index_tables import REPO_ERROR, REPO_GONE, IndexedRepo
from models.settings import Settings
from models.tables import OfferIndex, User
from tests.firehose.conftest import peer_settings
from tests.firehose.helpers import indexed_follows, indexed_offers, offer_record, pds_offers, reader_for
from tests.peers.pds_peer import PdsPeer
from tests.replay.recorder import keep_history
from workers.firehose.backfill import BackfillError, backfill
from workers.firehose.index_role import drift_repair_schedule
from workflows.drift_repair import DriftRepairInput, DriftRepairWorkflow

pytestmark = pytest.mark.pds
REPO_ROOT = Path(__file__).resolve().parents[2]


class CountingRefresher(RepoRefresher):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.reads: list[str] = []

    def refresh(self, did: str):  # type: ignore[no-untyped-def]
        self.reads.append(did)
        return super().refresh(did)


def test_an_unknown_actor_is_read_from_their_repo_once_then_answered_from_edges(
    engine: Engine, database_url: str, pds_peer: PdsPeer
) -> None:
    settings = peer_settings(database_url, pds_peer)
    guest = pds_peer.create_account("guest")
    host = pds_peer.create_account("host")
    stranger = pds_peer.create_account("stranger")
    pds_peer.follow(guest, host.did)  # before Huddle heard of either of them
    refresher = CountingRefresher(engine, reader_for(settings))
    graph = StoredFollowGraph(engine, refresher, refetch_after=timedelta(hours=1))

    assert graph.follows(guest.did, host.did) is True  # the edge came from the guest's repo
    assert graph.follows(guest.did, stranger.did) is False  # read already: no second read
    assert graph.follows(host.did, guest.did) is False  # the host's repo, read once
    assert graph.follows(host.did, stranger.did) is False
    assert refresher.reads == [guest.did, host.did]

    # Past the TTL the repo is read again (the firehose may not have been watching this actor).
    later = StoredFollowGraph(engine, refresher, refetch_after=timedelta(0))
    pds_peer.follow(host, guest.did)
    assert later.follows(host.did, guest.did) is True
    assert refresher.reads[-1] == host.did


def test_a_repo_that_cannot_be_read_is_an_error_not_a_no(
    engine: Engine, database_url: str, pds_peer: PdsPeer
) -> None:
    guest = pds_peer.create_account("guest")
    host = pds_peer.create_account("host")
    dead_plc = peer_settings(database_url, pds_peer, plc_url="http://127.0.0.1:9")
    graph = StoredFollowGraph(engine, RepoRefresher(engine, reader_for(dead_plc)))
    with pytest.raises(RepoUnavailable):
        graph.follows(guest.did, host.did)
    with Session(engine) as session:
        repo = session.get(IndexedRepo, guest.did)
    assert repo is not None and repo.status == REPO_ERROR and repo.fetched_at is None

    # A DID that does not exist follows nobody: that is an answer.
    settings = peer_settings(database_url, pds_peer)
    graph = StoredFollowGraph(engine, RepoRefresher(engine, reader_for(settings)))
    assert graph.follows("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", host.did) is False
    with Session(engine) as session:
        gone = session.get(IndexedRepo, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
    assert gone is not None and gone.status == REPO_GONE


def test_without_a_relay_the_graph_is_the_stored_edges(engine: Engine, database_url: str) -> None:
    from tests.conftest import make_settings

    graph = follow_graph(engine, make_settings(database_url))
    assert graph.follows("did:plc:hosthosthosthosthosthost", "did:plc:guestguestguestguestgue") is False


def test_backfill_reads_offers_follows_and_account_status(
    engine: Engine, database_url: str, pds_peer: PdsPeer
) -> None:
    settings = peer_settings(database_url, pds_peer)
    host = pds_peer.create_account("host")
    friend = pds_peer.create_account("friend")
    good, _ = pds_peer.create_record(host, OFFER_NSID, offer_record("Mornings"))
    pds_peer.create_record(host, OFFER_NSID, offer_record("Bad", windows=[]))
    follow = pds_peer.follow(host, friend.did)

    report = backfill(settings, engine, host.handle)  # a handle, verified through the PDS
    assert report.did == host.did
    assert indexed_offers(engine, [host.did]) == {good: pds_offers(pds_peer, [host])[good]}
    assert indexed_follows(engine, [host.did]) == {follow: friend.did}
    assert [r.reason for r in report.outcome.rejected] == ["windows"]
    assert "offers indexed 1" in report.lines()[0]

    # Deleted on the PDS, deactivated: a second backfill tombstones and hides.
    pds_peer.delete_record(host, OFFER_NSID, good.rsplit("/", 1)[1])
    assert backfill(settings, engine, host.did).outcome.counts["offer_delete"] == 1
    pds_peer.deactivate_account(host)
    try:
        backfill(settings, engine, host.did)
        with Session(engine) as session:
            user = session.get(User, host.did)
        assert user is not None and user.active is False
    finally:
        pds_peer.activate_account(host)
    backfill(settings, engine, host.did)
    with Session(engine) as session:
        assert session.get(User, host.did).active is True  # type: ignore[union-attr]


def test_huddle_backfill_command(
    database_url: str, engine: Engine, pds_peer: PdsPeer, tmp_path: Path
) -> None:
    host = pds_peer.create_account("host")
    uri, _ = pds_peer.create_record(host, OFFER_NSID, offer_record())
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUDDLE_")}
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        HUDDLE_DATABASE_URL=database_url,
        HUDDLE_PLC_URL=f"http://127.0.0.1:{pds_peer.plc_port}",
        HUDDLE_HANDLE_RESOLVER_URLS=pds_peer.base_url,
        HUDDLE_DEV_MODE="true",
    )
    cmd = [sys.executable, "-m", "workers.cli", "backfill", host.handle]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{host.did}: offers indexed 1" in done.stdout
    with Session(engine) as session:
        assert session.get(OfferIndex, uri) is not None

    settings = peer_settings(database_url, pds_peer)
    with pytest.raises(BackfillError, match="cannot resolve"):
        backfill(settings, engine, "nobody-here.test")


@pytest.mark.history
async def test_drift_repair_schedule_repairs_what_the_firehose_missed(
    worker: Settings, engine: Engine, temporal_client: Client, pds_peer: PdsPeer
) -> None:
    host = await asyncio.to_thread(pds_peer.create_account, "host")
    kept, _ = await asyncio.to_thread(pds_peer.create_record, host, OFFER_NSID, offer_record("kept"))
    missed, _ = await asyncio.to_thread(pds_peer.create_record, host, OFFER_NSID, offer_record("missed"))
    # The index knows the host, holds one offer that is gone from the PDS, and lacks one.
    with Session(engine) as session:
        session.add(
            OfferIndex(
                uri=kept.replace(kept.rsplit("/", 1)[1], "3zzzzzzzzzzzz"),
                did=host.did,
                rkey="3zzzzzzzzzzzz",
                cid="bafyreigone",
                record=offer_record("deleted while the firehose was down"),
                title="gone",
                timezone="Europe/Berlin",
            )
        )
        session.commit()

    drift_id = f"drift-{uuid.uuid4().hex[:8]}"
    report = await temporal_client.execute_workflow(
        DriftRepairWorkflow.run,
        DriftRepairInput(page_size=1),
        id=drift_id,
        task_queue=worker.task_queue("index"),
    )
    await keep_history(temporal_client, drift_id, "drift-repair-repairs-a-host")
    assert report.checked >= 1 and report.repaired >= 1 and report.failed == 0
    live = await asyncio.to_thread(indexed_offers, engine, [host.did])
    assert live == await asyncio.to_thread(pds_offers, pds_peer, [host])
    assert set(live) == {kept, missed}

    schedule_id, schedule = drift_repair_schedule(worker)
    handle = await temporal_client.create_schedule(schedule_id, schedule)
    try:
        described = await handle.describe()
        assert described.schedule.action.task_queue == worker.task_queue("index")  # type: ignore[attr-defined]
    finally:
        await handle.delete()
    with Session(engine) as session:
        assert session.exec(select(IndexedRepo).where(IndexedRepo.did == host.did)).one().fetched_at
