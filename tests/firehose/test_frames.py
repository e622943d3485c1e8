"""The frame filter: cheap decisions from op paths, one block read per record that matters."""

from __future__ import annotations

import pytest
from libipld import encode_cid, encode_dag_cbor

from bench.firehose.stream import Op, car, cid_of, commit, error_frame, message
from models.index_store import (
    AccountUpdate,
    Commit,
    FollowDelete,
    FollowPut,
    IdentityUpdate,
    OfferDelete,
    OfferPut,
)
from workers.firehose.backoff import Backoff
from workers.firehose.frames import FrameFilter, Info, Resync, StreamError, json_safe, read_block

HOST = "did:plc:hosthosthosthosthosthost"
GUEST = "did:plc:guestguestguestguestgues"
OTHER = "did:plc:otherotherotherotherothe"
OFFER = {"$type": "com.huddle.slotOffer", "title": "t"}


def follow(subject: str) -> dict:
    return {"$type": "app.bsky.graph.follow", "subject": subject, "createdAt": "2026-01-01T00:00:00Z"}


def test_posts_and_likes_of_strangers_are_dropped_without_reading_blocks() -> None:
    filt = FrameFilter({HOST})
    post = commit(7, OTHER, "3a", None, [Op("create", "app.bsky.feed.post/1", {"text": "hi"})])
    assert filt.feed(post) is None
    assert filt.seq == 7 and filt.counts == {}


def test_an_offer_is_read_from_its_block_and_its_host_becomes_known() -> None:
    filt = FrameFilter(set())
    frame = commit(1, OTHER, "3b", "3a", [Op("create", "com.huddle.slotOffer/3k", OFFER)])
    event = filt.feed(frame)
    assert isinstance(event, Commit) and event.did == OTHER and event.rev == "3b" and event.since == "3a"
    (put,) = event.changes
    assert isinstance(put, OfferPut) and put.rkey == "3k" and put.record == OFFER
    assert put.cid.startswith("bafyrei")
    assert OTHER in filt.known and OTHER in filt.learned
    deleted = filt.feed(commit(2, OTHER, "3c", "3b", [Op("delete", "com.huddle.slotOffer/3k")]))
    assert isinstance(deleted, Commit) and deleted.changes == [OfferDelete(OTHER, "3k")]


def follow_commit(seq: int, repo: str, rkey: str, subject: str | None, action: str = "create") -> bytes:
    record = follow(subject) if subject else None
    return commit(seq, repo, f"3{seq}", None, [Op(action, f"app.bsky.graph.follow/{rkey}", record)])


def test_follows_are_kept_when_either_side_is_known() -> None:
    filt = FrameFilter({HOST})
    to_host = filt.feed(follow_commit(1, GUEST, "f1", HOST))
    assert isinstance(to_host, Commit)
    assert to_host.changes == [FollowPut(f"at://{GUEST}/app.bsky.graph.follow/f1", GUEST, HOST)]
    by_host = filt.feed(follow_commit(2, HOST, "f2", OTHER))
    assert isinstance(by_host, Commit) and by_host.tracked
    assert by_host.changes == [FollowPut(f"at://{HOST}/app.bsky.graph.follow/f2", HOST, OTHER)]
    # Strangers following strangers: nothing. A delete names no subject, so it goes by uri.
    assert filt.feed(follow_commit(3, GUEST, "f3", OTHER)) is None
    gone = filt.feed(follow_commit(4, GUEST, "f1", None, action="delete"))
    assert isinstance(gone, Commit)
    assert gone.changes == [FollowDelete(f"at://{GUEST}/app.bsky.graph.follow/f1")]


def test_known_repos_keep_their_rev_chain_even_without_relevant_ops() -> None:
    filt = FrameFilter({HOST})
    event = filt.feed(commit(1, HOST, "3b", "3a", [Op("create", "app.bsky.feed.like/1", {"x": 1})]))
    assert isinstance(event, Commit) and event.tracked and event.changes == [] and event.since == "3a"


def test_a_missing_or_forged_block_asks_for_the_repo_instead() -> None:
    filt = FrameFilter(set())
    missing = commit(1, OTHER, "3b", "3a", [Op("create", "com.huddle.slotOffer/3k", OFFER)], omit_blocks=True)
    event = filt.feed(missing)
    assert isinstance(event, Commit) and event.incomplete and event.changes == []
    block = encode_dag_cbor(OFFER)
    wrong = bytearray(car([block]))
    wrong[-1] ^= 1  # the block no longer matches its CID
    assert read_block(bytes(wrong), cid_of(block)) is None
    assert read_block(car([block]), cid_of(block)) == block


def event(kind: str, seq: int, did: str, **fields: object) -> bytes:
    return message(kind, {"seq": seq, "did": did, "time": "2026-11-25T10:00:00Z", **fields})


def test_identity_account_sync_and_info() -> None:
    filt = FrameFilter({HOST})
    assert filt.feed(event("#identity", 5, HOST, handle="new.test")) == IdentityUpdate(HOST, "new.test")
    assert filt.feed(event("#identity", 6, HOST, handle="handle.invalid")) == IdentityUpdate(HOST, None)
    takedown = filt.feed(event("#account", 7, HOST, active=False, status="takendown"))
    assert takedown == AccountUpdate(HOST, False, "takendown")
    assert filt.feed(event("#account", 8, OTHER, active=False)) is None  # nobody Huddle knows
    assert filt.feed(event("#sync", 9, HOST, rev="3z", blocks=b"")) == Resync(HOST, "sync")
    info = filt.feed(message("#info", {"name": "OutdatedCursor", "message": "m"}))
    assert info == Info("OutdatedCursor", "m")
    assert filt.seq == 9


def test_error_frames_raise_and_garbage_is_counted() -> None:
    filt = FrameFilter(set())
    with pytest.raises(StreamError) as err:
        filt.feed(error_frame("FutureCursor", "Cursor in the future."))
    assert err.value.error == "FutureCursor"
    assert filt.feed(b"\xff\x00garbage") is None
    assert filt.feed(encode_dag_cbor({"t": "#commit", "op": 1})) is None  # no body
    assert filt.counts["undecodable"] == 2


def test_records_come_out_in_the_atproto_json_form() -> None:
    link = cid_of(b"x")
    assert json_safe({"a": [link, b"\x00\x01"]}) == {"a": [{"$link": encode_cid(link)}, {"$bytes": "AAE"}]}


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    backoff = Backoff(0.5, 8.0, rand=lambda: 1.0)
    assert [backoff.next() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    low = Backoff(0.5, 8.0, rand=lambda: 0.0)
    assert [low.next() for _ in range(3)] == [0.25, 0.5, 1.0]
    backoff.reset()
    assert backoff.next() == 0.5
