"""Writes to the network index: offers, follow edges, users' handles and status, repo sync state.

The firehose consumer, repo backfill, drift repair and the follow graph all write through here, so
the rules live in one place:
- a commit at or below the repo's stored `rev` is stale and ignored; a commit whose `since` is not
  the stored `rev` means commits were missed, and the repo is fetched again;
- a slotOffer is indexed only when it validates; a version that does not is recorded once in
  offer_rejections, and the offer stops being listed (never a half-valid record);
- follow edges are kept by at-uri, since a delete names only the record;
- a repo's rows are locked (Postgres) or the write is serialized (SQLite) before its records are
  written, so a fetched snapshot and the firehose never interleave within one repo.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, delete, union, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from kernel.lexicon import LexiconValidationError, SlotOffer
from kernel.lexicon.formats import is_did
from models.db import serialized_write
from models.index_tables import REPO_ERROR, REPO_GONE, REPO_OK, IndexedRepo, OfferRejection
from models.tables import Booking, GraphEdge, OfferIndex, User
from models.types import utcnow

log = logging.getLogger("huddle.index")

OFFER_NSID = "com.huddle.slotOffer"
FOLLOW_NSID = "app.bsky.graph.follow"
# Account statuses after which the repo is gone for good (the others may come back).
GONE_STATUSES = frozenset({"deleted"})
_DELETE_CHUNK = 500


def at_uri(did: str, collection: str, rkey: str) -> str:
    return f"at://{did}/{collection}/{rkey}"


# ---------------------------------------------------------------- what the writers hand in


@dataclass(slots=True)
class OfferPut:
    """A slotOffer created or updated; `record` is the published value, not yet validated."""

    did: str
    rkey: str
    cid: str
    record: Any


@dataclass(slots=True)
class OfferDelete:
    did: str
    rkey: str


@dataclass(slots=True)
class FollowPut:
    uri: str
    author: str
    subject: str
    replace: bool = False  # an update: the edge may exist with another subject


@dataclass(slots=True)
class FollowDelete:
    uri: str


Change = OfferPut | OfferDelete | FollowPut | FollowDelete


@dataclass(slots=True)
class Commit:
    """One repo commit: its rev chain, and the changes Huddle cares about (maybe none).

    `tracked`: the repo belongs to someone Huddle knows, so its rev chain is followed even when the
    commit changes nothing Huddle indexes (otherwise the next relevant commit would look like a gap).
    """

    did: str
    rev: str
    since: str | None
    changes: list[Change] = field(default_factory=list)
    tracked: bool = False
    incomplete: bool = False  # a block Huddle needed was missing or corrupt: fetch the repo


@dataclass(slots=True)
class IdentityUpdate:
    did: str
    handle: str | None


@dataclass(slots=True)
class AccountUpdate:
    did: str
    active: bool
    status: str | None


Event = Commit | IdentityUpdate | AccountUpdate


@dataclass(frozen=True, slots=True)
class Rejection:
    uri: str
    cid: str
    reason: str
    path: str
    message: str


@dataclass
class WriteOutcome:
    """What a write did: counts for metrics, repos to fetch again, and rejections seen for the first time."""

    resync: dict[str, str] = field(default_factory=dict)  # did -> why (gap, new, reactivated)
    stale: int = 0
    gaps: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    rejected: list[Rejection] = field(default_factory=list)  # refused for the first time: log these
    rejected_reasons: Counter[str] = field(default_factory=Counter)  # the same, counted by reason


@dataclass(frozen=True, slots=True)
class RepoRecord:
    uri: str
    cid: str
    value: Any


@dataclass(frozen=True)
class RepoSnapshot:
    """A repo's Huddle records and follows as read from its PDS at (or after) commit `rev`.

    `offers` / `follows` are None when they were not read (an inactive repo cannot be listed).
    """

    did: str
    rev: str | None
    active: bool
    status: str | None
    offers: list[RepoRecord] | None
    follows: list[RepoRecord] | None


@dataclass
class SnapshotOutcome(WriteOutcome):
    applied: bool = False


# ---------------------------------------------------------------- offer validation


def judge_offer(record: Any) -> tuple[SlotOffer | None, tuple[str, str, str] | None]:
    """(offer, None) when the record validates, else (None, (reason, path, message))."""
    try:
        return SlotOffer.from_record(record), None
    except LexiconValidationError as exc:
        return None, (rejection_reason(exc.path), exc.path, exc.message)


def rejection_reason(path: str) -> str:
    """The top-level field at fault (`windows[2].end` → `windows`): a label with few values."""
    if not path:
        return "record"
    head = path.split(".", 1)[0].split("[", 1)[0]
    return head[:64] or "record"


# ---------------------------------------------------------------- firehose events


def apply_events(
    engine: Engine, events: Sequence[Event], also: Callable[[Session], None] | None = None
) -> WriteOutcome:
    """Apply firehose events in stream order, in one transaction; `also(session)` joins it (the cursor)."""
    out = WriteOutcome()
    with serialized_write(engine) as session:
        lock, create = _repos_to_lock(events)
        revs = _lock_revs(session, lock, out, create=create)
        moved: dict[str, str] = {}
        follows = _FollowWrites()
        for event in events:
            if isinstance(event, Commit):
                _apply_commit(session, event, revs, moved, follows, out)
            elif isinstance(event, IdentityUpdate):
                user = _user(session, event.did)
                if user.handle != event.handle:
                    user.handle = event.handle
                    user.updated_at = utcnow()
                out.counts["identity"] += 1
            else:
                _apply_account(session, event, out)
        follows.write(session, out)
        if moved:
            # One statement for the batch: a busy stream moves hundreds of known repos' revs at once.
            session.execute(
                update(IndexedRepo.__table__)  # type: ignore[attr-defined]
                .where(IndexedRepo.__table__.c.did == bindparam("b_did"))  # type: ignore[attr-defined]
                .values(rev=bindparam("b_rev"), updated_at=utcnow()),
                [{"b_did": did, "b_rev": rev} for did, rev in moved.items()],
            )
        if also is not None:
            also(session)
    return out


def _repos_to_lock(events: Sequence[Event]) -> tuple[list[str], set[str]]:
    """The repos whose rows this batch locks (any commit that writes, and every known repo's commit:
    the rows a snapshot writer locks too), and those among them to create (known repos, hosts)."""
    lock: set[str] = set()
    create: set[str] = set()
    for event in events:
        if isinstance(event, Commit):
            if event.tracked or any(isinstance(c, OfferPut | OfferDelete) for c in event.changes):
                create.add(event.did)
            if event.changes:
                lock.add(event.did)
    return sorted(lock | create), create  # one lock order for every writer: no deadlocks on Postgres


def _lock_revs(
    session: Session, dids: list[str], out: WriteOutcome, *, create: set[str] | None = None
) -> dict[str, str | None]:
    """did → stored rev of the repos' rows, locked until commit (Postgres; on SQLite the whole write is
    serialized). Missing rows of `create` (default: all) are created, and such a new repo read in full."""
    if not dids:
        return {}
    revs: dict[str, str | None] = {}
    for i in range(0, len(dids), _DELETE_CHUNK):
        chunk = dids[i : i + _DELETE_CHUNK]
        existing = set(session.exec(select(IndexedRepo.did).where(col(IndexedRepo.did).in_(chunk))))
        missing = [did for did in chunk if did not in existing and (create is None or did in create)]
        if missing:
            _insert_ignore(session, IndexedRepo, [_new_repo_row(did) for did in missing])
            for did in missing:
                out.resync.setdefault(did, "new")
        query = select(IndexedRepo.did, IndexedRepo.rev).where(col(IndexedRepo.did).in_(chunk))
        revs.update(session.exec(query.order_by(IndexedRepo.did).with_for_update()).all())
    return revs


def _lock_repos(session: Session, dids: list[str], out: WriteOutcome) -> dict[str, IndexedRepo]:
    """The repos' rows as objects (for the whole-repo writers), created if missing, locked."""
    _lock_revs(session, dids, out)
    rows = session.exec(select(IndexedRepo).where(col(IndexedRepo.did).in_(dids)))
    return {row.did: row for row in rows}


def _new_repo_row(did: str) -> dict[str, Any]:
    now = utcnow()
    return {"did": did, "rev": None, "status": REPO_OK, "created_at": now, "updated_at": now}


def _apply_commit(
    session: Session,
    commit: Commit,
    revs: dict[str, str | None],
    moved: dict[str, str],
    follows: _FollowWrites,
    out: WriteOutcome,
) -> None:
    if commit.did in revs:
        stored = revs[commit.did]
        if stored is not None:
            if commit.rev <= stored:
                out.stale += 1
                return
            if commit.since != stored:
                out.gaps += 1
                out.resync.setdefault(commit.did, "gap")
        revs[commit.did] = moved[commit.did] = commit.rev
    if commit.incomplete:
        out.resync.setdefault(commit.did, "incomplete")
    for change in commit.changes:
        if isinstance(change, OfferPut):
            _put_offer(session, change, commit.rev, out)
        elif isinstance(change, OfferDelete):
            _tombstone_offer(session, at_uri(change.did, OFFER_NSID, change.rkey), commit.rev, out)
        elif isinstance(change, FollowPut):
            follows.put(change)
        else:
            follows.delete(change.uri)


class _FollowWrites:
    """A batch's follow changes, written at its end in three statements; the result is the one the
    changes give in stream order (a follow record is created, maybe edited, then deleted, by uri)."""

    def __init__(self) -> None:
        self.puts: dict[str, FollowPut] = {}
        self.replaced: set[str] = set()
        self.deletes: dict[str, None] = {}

    def put(self, change: FollowPut) -> None:
        self.deletes.pop(change.uri, None)
        self.puts[change.uri] = change
        if change.replace:
            self.replaced.add(change.uri)

    def delete(self, uri: str) -> None:
        self.puts.pop(uri, None)
        self.deletes[uri] = None

    def write(self, session: Session, out: WriteOutcome) -> None:
        _delete_edges(session, self.replaced)
        rows = [_edge_row(p.uri, p.author, p.subject) for p in self.puts.values()]
        for i in range(0, len(rows), _DELETE_CHUNK):
            _insert_ignore(session, GraphEdge, rows[i : i + _DELETE_CHUNK])
        out.counts["follow_put"] += len(rows)
        _delete_edges(session, self.deletes)


def _apply_account(session: Session, event: AccountUpdate, out: WriteOutcome) -> None:
    user = _user(session, event.did)
    if event.active and not user.active:
        out.resync.setdefault(event.did, "reactivated")
    user.active = event.active
    user.updated_at = utcnow()
    out.counts["account"] += 1
    if not event.active and event.status in GONE_STATUSES:
        _forget_repo(session, event.did)
        out.counts["repo_gone"] += 1


def _user(session: Session, did: str) -> User:
    user = session.get(User, did)
    if user is None:
        user = User(did=did)
        session.add(user)
    return user


# ---------------------------------------------------------------- records


def _put_offer(session: Session, put: OfferPut, rev: str | None, out: WriteOutcome) -> None:
    uri = at_uri(put.did, OFFER_NSID, put.rkey)
    offer, problem = judge_offer(put.record)
    row = session.get(OfferIndex, uri)
    if offer is None:
        assert problem is not None
        _reject(session, put, uri, rev, problem, out)
        if row is not None and not row.deleted:
            # The version now published is not bookable; the previous one is no longer published.
            row.deleted = True
            row.rev = rev
        return
    now = utcnow()
    values = {
        "did": put.did,
        "rkey": put.rkey,
        "cid": put.cid,
        "rev": rev,
        "record": put.record,
        "title": offer.title,
        "timezone": offer.timezone,
        "policy": offer.policy,
        "requires_approval": offer.requires_approval,
        "record_created_at": offer.created_at,
        "indexed_at": now,
        "deleted": False,
    }
    if row is None:
        session.add(OfferIndex(uri=uri, **values))
    elif row.cid != put.cid or row.deleted:
        for key, value in values.items():
            setattr(row, key, value)
    else:
        row.rev = rev
        return
    out.counts["offer_put"] += 1


def _reject(
    session: Session,
    put: OfferPut,
    uri: str,
    rev: str | None,
    problem: tuple[str, str, str],
    out: WriteOutcome,
) -> None:
    reason, path, message = problem
    if session.get(OfferRejection, (uri, put.cid)) is not None:
        return  # this version was refused (and counted) before
    out.rejected_reasons[reason] += 1
    session.add(
        OfferRejection(
            uri=uri,
            cid=put.cid,
            did=put.did,
            reason=reason,
            path=path[:512],
            message=message[:1000],
            rev=rev,
        )
    )
    out.rejected.append(Rejection(uri, put.cid, reason, path, message))


def _tombstone_offer(session: Session, uri: str, rev: str | None, out: WriteOutcome) -> None:
    row = session.get(OfferIndex, uri)
    if row is not None and not row.deleted:
        row.deleted = True
        row.rev = rev
        out.counts["offer_delete"] += 1


def _edge_row(uri: str, author: str, subject: str) -> dict[str, Any]:
    return {"uri": uri, "author_did": author, "subject_did": subject, "created_at": utcnow()}


def _delete_edges(session: Session, uris: Iterable[str]) -> int:
    batch = list(uris)
    removed = 0
    for i in range(0, len(batch), _DELETE_CHUNK):
        chunk = batch[i : i + _DELETE_CHUNK]
        result = session.execute(delete(GraphEdge).where(col(GraphEdge.uri).in_(chunk)))
        removed += result.rowcount or 0  # type: ignore[attr-defined]
    return removed


def _forget_repo(session: Session, did: str) -> None:
    """The repo is gone: its offers are tombstoned and the follows it authored removed."""
    for row in session.exec(
        select(OfferIndex).where(OfferIndex.did == did, col(OfferIndex.deleted).is_(False))
    ):
        row.deleted = True
    session.execute(delete(GraphEdge).where(col(GraphEdge.author_did) == did))
    repo = session.get(IndexedRepo, did)
    if repo is not None:
        repo.status = REPO_GONE
        repo.updated_at = utcnow()


def _insert_ignore(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING: another writer may have inserted the same key first.

    One cached statement, executed for many rows (Core, so the ORM's per-call compile is skipped).
    """
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.connection().execute(insert(model.__table__).on_conflict_do_nothing(), rows)


# ---------------------------------------------------------------- whole-repo snapshots


def apply_snapshot(engine: Engine, snap: RepoSnapshot) -> SnapshotOutcome:
    """Make the index match a repo as read from its PDS, unless the firehose already applied newer commits."""
    out = SnapshotOutcome()
    with serialized_write(engine) as session:
        repo = _lock_repos(session, [snap.did], out)[snap.did]
        out.resync.clear()  # this is the fetch
        if repo.rev is not None and snap.rev is not None and repo.rev > snap.rev:
            out.stale = 1
            return out
        user = session.get(User, snap.did)
        if user is not None and user.active != snap.active:
            user.active = snap.active
            user.updated_at = utcnow()
        elif user is None and not snap.active:
            session.add(User(did=snap.did, active=False))
        if not snap.active and snap.status in GONE_STATUSES:
            _forget_repo(session, snap.did)
            return _fetched(repo, snap, out, status=REPO_GONE)
        if snap.offers is not None:
            _reconcile_offers(session, snap, out)
        if snap.follows is not None:
            _reconcile_follows(session, snap, out)
        return _fetched(repo, snap, out, status=REPO_OK)


def _fetched(repo: IndexedRepo, snap: RepoSnapshot, out: SnapshotOutcome, *, status: str) -> SnapshotOutcome:
    now = utcnow()
    if snap.rev is not None and (repo.rev is None or snap.rev > repo.rev):
        repo.rev = snap.rev
    repo.status = status
    repo.fetched_at = now
    repo.fetch_error = None
    repo.updated_at = now
    out.applied = True
    return out


def _reconcile_offers(session: Session, snap: RepoSnapshot, out: WriteOutcome) -> None:
    listed: set[str] = set()
    for record in snap.offers or ():
        rkey = record.uri.rsplit("/", 1)[-1]
        listed.add(at_uri(snap.did, OFFER_NSID, rkey))
        _put_offer(session, OfferPut(snap.did, rkey, record.cid, record.value), snap.rev, out)
    current = session.exec(
        select(OfferIndex.uri).where(OfferIndex.did == snap.did, col(OfferIndex.deleted).is_(False))
    )
    for uri in set(current) - listed:
        _tombstone_offer(session, uri, snap.rev, out)


def _reconcile_follows(session: Session, snap: RepoSnapshot, out: WriteOutcome) -> None:
    listed: dict[str, str] = {}
    for record in snap.follows or ():
        subject = record.value.get("subject") if isinstance(record.value, dict) else None
        if isinstance(subject, str) and is_did(subject):
            listed[record.uri] = subject
    current = set(session.exec(select(GraphEdge.uri).where(GraphEdge.author_did == snap.did)))
    added = [_edge_row(uri, snap.did, subject) for uri, subject in listed.items() if uri not in current]
    for i in range(0, len(added), _DELETE_CHUNK):
        _insert_ignore(session, GraphEdge, added[i : i + _DELETE_CHUNK])
    out.counts["follow_put"] += len(added)
    out.counts["follow_delete"] += _delete_edges(session, current - set(listed))


def mark_repo_gone(engine: Engine, did: str, why: str) -> None:
    """No DID document, no PDS or no repo: nothing of it stays indexed."""
    with serialized_write(engine) as session:
        repo = _lock_repos(session, [did], WriteOutcome())[did]
        _forget_repo(session, did)
        now = utcnow()
        repo.status = REPO_GONE
        repo.fetched_at = now
        repo.fetch_error = why[:1000]
        repo.updated_at = now


def mark_repo_error(engine: Engine, did: str, why: str) -> None:
    """The last fetch failed for a reason that may pass; the index keeps what it had."""
    with serialized_write(engine) as session:
        repo = _lock_repos(session, [did], WriteOutcome())[did]
        repo.status = REPO_ERROR
        repo.fetch_error = why[:1000]
        repo.updated_at = utcnow()


# ---------------------------------------------------------------- reads the indexers need


def known_dids(engine: Engine) -> set[str]:
    """Everyone Huddle knows: users, hosts of indexed offers, booking parties, repos it follows."""
    query = union(
        select(User.did),
        select(OfferIndex.did),
        select(Booking.host_did),
        select(Booking.guest_did),
        select(IndexedRepo.did),
    )
    with Session(engine) as session:
        return {row[0] for row in session.execute(query)}


def repos_to_fetch(engine: Engine, dids: Iterable[str], retry_after: timedelta) -> list[str]:
    """Of `dids`, those never read in full: no row yet, a row the firehose created and nobody fetched,
    or a failed fetch; rows touched less than `retry_after` ago wait (someone may be on them)."""
    wanted = sorted(set(dids))
    cutoff = utcnow() - retry_after
    out = []
    with Session(engine) as session:
        for i in range(0, len(wanted), _DELETE_CHUNK):
            chunk = wanted[i : i + _DELETE_CHUNK]
            rows = session.exec(select(IndexedRepo).where(col(IndexedRepo.did).in_(chunk)))
            state = {row.did: row for row in rows}
            for did in chunk:
                repo = state.get(did)
                if repo is None:
                    out.append(did)
                    continue
                if repo.fetched_at is not None or repo.status == REPO_GONE:
                    continue
                if (repo.updated_at if repo.status == REPO_ERROR else repo.created_at) <= cutoff:
                    out.append(did)
    return out


def repo_fetched_since(engine: Engine, did: str, since: datetime) -> bool:
    """Whether `did` was read in full (or found gone) at or after `since`."""
    with Session(engine) as session:
        repo = session.get(IndexedRepo, did)
    return (
        repo is not None
        and repo.fetched_at is not None
        and repo.fetched_at >= since
        and repo.status in (REPO_OK, REPO_GONE)
    )


def repos_to_repair(engine: Engine, after: str = "", limit: int = 200) -> list[str]:
    """Hosts of indexed offers (live or tombstoned) and repos whose last read failed, in DID order."""
    hosts = select(OfferIndex.did).where(OfferIndex.did > after)
    failed = select(IndexedRepo.did).where(IndexedRepo.did > after, IndexedRepo.status == REPO_ERROR)
    query = union(hosts, failed).order_by("did").limit(limit)
    with Session(engine) as session:
        return [row[0] for row in session.execute(query)]
