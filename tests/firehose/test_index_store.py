"""Index writes on SQLite and Postgres: stale revs, gaps, order within a batch, snapshots, refusals."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from models import index_store as store
from models.index_store import (
    AccountUpdate,
    Commit,
    FollowDelete,
    FollowPut,
    OfferDelete,
    OfferPut,
    RepoRecord,
    RepoSnapshot,
)
from models.index_tables import REPO_GONE, IndexedRepo, OfferRejection
from models.tables import GraphEdge, OfferIndex, User

HOST = "did:plc:hosthosthosthosthosthost"
GUEST = "did:plc:guestguestguestguestgues"
OFFER = {
    "$type": "com.huddle.slotOffer",
    "title": "Office hours",
    "timezone": "UTC",
    "windows": [{"days": ["mon"], "start": "09:00", "end": "10:00"}],
    "durations": [30],
    "createdAt": "2026-01-01T00:00:00Z",
}
OFFER_URI = f"at://{HOST}/com.huddle.slotOffer/o1"
FOLLOW_URI = f"at://{GUEST}/app.bsky.graph.follow/f1"


def put(title: str, cid: str, **extra: Any) -> OfferPut:
    return OfferPut(HOST, "o1", cid, {**OFFER, "title": title, **extra})


def offer(engine: Engine) -> OfferIndex | None:
    with Session(engine) as session:
        return session.get(OfferIndex, OFFER_URI)


def edges(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        return {e.uri: e.subject_did for e in session.exec(select(GraphEdge))}


def repo(engine: Engine, did: str = HOST) -> IndexedRepo | None:
    with Session(engine) as session:
        return session.get(IndexedRepo, did)


def test_a_stale_commit_is_ignored_and_a_gap_asks_for_the_repo(engine: Engine) -> None:
    first = store.apply_events(engine, [Commit(HOST, "3b", "3a", [put("new", "bafy2")])])
    assert first.resync == {HOST: "new"}  # a host seen for the first time is read in full
    stale = store.apply_events(engine, [Commit(HOST, "3a", None, [put("old", "bafy1")])])
    assert stale.stale == 1
    row = offer(engine)
    assert row is not None and row.title == "new" and row.rev == "3b"

    gap = store.apply_events(engine, [Commit(HOST, "3d", "3c", [put("newer", "bafy4")])])  # 3c never seen
    assert gap.gaps == 1 and gap.resync == {HOST: "gap"}
    chained = store.apply_events(engine, [Commit(HOST, "3e", "3d", [], tracked=True)])
    assert chained.gaps == 0 and chained.resync == {}
    assert repo(engine).rev == "3e"  # type: ignore[union-attr]


def test_events_apply_in_stream_order_within_a_batch(engine: Engine) -> None:
    store.apply_events(
        engine,
        [
            Commit(HOST, "3a", None, [put("a", "bafy1")]),
            Commit(HOST, "3b", "3a", [OfferDelete(HOST, "o1")]),
            Commit(GUEST, "3a", None, [FollowPut(FOLLOW_URI, GUEST, HOST)]),
            Commit(GUEST, "3b", "3a", [FollowDelete(FOLLOW_URI)]),
            Commit(GUEST, "3c", "3b", [FollowPut(f"{FOLLOW_URI}x", GUEST, HOST)]),
        ],
    )
    row = offer(engine)
    assert row is not None and row.deleted and row.rev == "3b"
    assert edges(engine) == {f"{FOLLOW_URI}x": HOST}
    # An edited follow replaces its subject; a replayed create changes nothing.
    edited = FollowPut(f"{FOLLOW_URI}x", GUEST, "did:web:x.test", replace=True)
    store.apply_events(engine, [Commit(GUEST, "3d", "3c", [edited])])
    store.apply_events(engine, [Commit(GUEST, "3d", "3c", [FollowPut(f"{FOLLOW_URI}x", GUEST, HOST)])])
    assert edges(engine) == {f"{FOLLOW_URI}x": "did:web:x.test"}


def test_an_invalid_version_is_refused_once_and_hides_the_offer(engine: Engine) -> None:
    store.apply_events(engine, [Commit(HOST, "3a", None, [put("fine", "bafy1")])])
    bad = put("bad", "bafy2", durations=[])
    first = store.apply_events(engine, [Commit(HOST, "3b", "3a", [bad])])
    assert [r.reason for r in first.rejected] == ["durations"] and first.rejected_reasons == {"durations": 1}
    row = offer(engine)
    assert row is not None and row.deleted and row.title == "fine"  # never the half-valid record
    again = store.apply_events(engine, [Commit(HOST, "3c", "3b", [bad])])  # the same version, replayed
    assert again.rejected == [] and not again.rejected_reasons
    with Session(engine) as session:
        assert len(session.exec(select(OfferRejection)).all()) == 1
    store.apply_events(engine, [Commit(HOST, "3d", "3c", [put("fixed", "bafy3")])])
    row = offer(engine)
    assert row is not None and not row.deleted and row.title == "fixed"


def test_a_snapshot_reconciles_unless_the_firehose_is_ahead(engine: Engine) -> None:
    follow = FollowPut(f"at://{HOST}/app.bsky.graph.follow/x", HOST, GUEST)
    store.apply_events(engine, [Commit(HOST, "3a", None, [put("old", "bafy1"), follow])])
    snap = RepoSnapshot(
        HOST,
        "3c",
        True,
        None,
        offers=[RepoRecord(f"at://{HOST}/com.huddle.slotOffer/o2", "bafy9", {**OFFER, "title": "o2"})],
        follows=[RepoRecord(f"at://{HOST}/app.bsky.graph.follow/y", "bafyf", {"subject": "did:web:y.test"})],
    )
    done = store.apply_snapshot(engine, snap)
    assert done.applied and done.counts["offer_delete"] == 1 and done.counts["offer_put"] == 1
    assert edges(engine) == {f"at://{HOST}/app.bsky.graph.follow/y": "did:web:y.test"}
    assert repo(engine).rev == "3c" and repo(engine).fetched_at is not None  # type: ignore[union-attr]

    store.apply_events(engine, [Commit(HOST, "3d", "3c", [], tracked=True)])
    older = store.apply_snapshot(engine, RepoSnapshot(HOST, "3c", True, None, offers=[], follows=[]))
    assert not older.applied and older.stale == 1
    with Session(engine) as session:
        live = session.exec(select(OfferIndex.uri).where(OfferIndex.deleted == False)).all()  # noqa: E712
    assert live == [f"at://{HOST}/com.huddle.slotOffer/o2"]


def test_a_deleted_account_leaves_nothing_listed(engine: Engine) -> None:
    follow = FollowPut(f"at://{HOST}/app.bsky.graph.follow/z", HOST, GUEST)
    store.apply_events(engine, [Commit(HOST, "3a", None, [put("a", "bafy1"), follow])])
    out = store.apply_events(engine, [AccountUpdate(HOST, False, "deleted")])
    assert out.counts["repo_gone"] == 1
    row = offer(engine)
    assert row is not None and row.deleted and edges(engine) == {}
    assert repo(engine).status == REPO_GONE  # type: ignore[union-attr]
    with Session(engine) as session:
        assert session.get(User, HOST).active is False  # type: ignore[union-attr]
    back = store.apply_events(engine, [AccountUpdate(HOST, True, None)])
    assert back.resync == {HOST: "reactivated"}


def test_known_dids_and_repos_to_fetch(engine: Engine) -> None:
    from datetime import timedelta

    with Session(engine) as session:
        session.add(User(did=GUEST))
        session.commit()
    store.apply_events(engine, [Commit(HOST, "3a", None, [put("a", "bafy1")])])
    assert store.known_dids(engine) == {HOST, GUEST}
    assert store.repos_to_fetch(engine, {HOST, GUEST}, timedelta(0)) == [GUEST, HOST]
    assert store.repos_to_fetch(engine, {HOST, GUEST}, timedelta(hours=1)) == [GUEST]  # HOST is being read
    store.apply_snapshot(engine, RepoSnapshot(HOST, "3a", True, None, offers=[], follows=[]))
    assert store.repos_to_fetch(engine, {HOST, GUEST}, timedelta(0)) == [GUEST]
    assert store.repos_to_repair(engine) == [HOST]
