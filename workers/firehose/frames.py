"""From a raw `subscribeRepos` frame to the few events Huddle indexes, as cheaply as possible.

A frame is two DAG-CBOR values: a header `{op, t}` and a body. Decoding both with libipld costs
about a microsecond (the CAR bytes in `blocks` stay one `bytes` value). The op paths decide what
matters; only for a slotOffer, or a follow that touches someone Huddle knows, is the CAR scanned
for the one record block needed, its hash checked, and that block decoded. Every other commit
(posts, likes, reposts, other people's follows) costs a decode and a couple of string checks.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

from libipld import decode_dag_cbor, decode_dag_cbor_multi, encode_cid

from models.index_store import (
    FOLLOW_NSID,
    OFFER_NSID,
    AccountUpdate,
    Change,
    Commit,
    Event,
    FollowDelete,
    FollowPut,
    IdentityUpdate,
    OfferDelete,
    OfferPut,
    at_uri,
)

_OFFER_PREFIX = OFFER_NSID + "/"
_FOLLOW_PREFIX = FOLLOW_NSID + "/"
_SHA256_CID_PREFIX = b"\x01\x71\x12\x20"  # CIDv1, dag-cbor, sha2-256, 32 bytes


class StreamError(Exception):
    """An error frame (`op: -1`): the server ends the stream after it (FutureCursor, ConsumerTooSlow)."""

    def __init__(self, error: str, message: str | None) -> None:
        super().__init__(f"{error}: {message}" if message else error)
        self.error = error
        self.message = message


@dataclass(frozen=True, slots=True)
class Info:
    """An `#info` message, e.g. `OutdatedCursor`: the cursor was older than the stream's window."""

    name: str
    message: str | None


@dataclass(frozen=True, slots=True)
class Resync:
    """Read this repo again from its PDS (`#sync`, a too-big commit)."""

    did: str
    reason: str


class FrameFilter:
    """Turns frames into index events for the DIDs in `known`; keeps the last seq and event time.

    `known` is replaced as Huddle learns about people (users, hosts, booking parties). Counters are
    plain ints here (the hot path), turned into metrics by the consumer.
    """

    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.learned: set[str] = set()  # hosts first seen in the stream, before the index has them
        self.seq: int | None = None
        self.time: str | None = None
        self.counts: Counter[str] = Counter()
        self.frames = 0
        self.error: StreamError | None = None

    def feed(self, frame: bytes) -> Event | Info | Resync | None:
        """The event in `frame` that concerns Huddle, or None; StreamError for an error frame."""
        events = self.feed_all([frame])
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return events[0] if events else None

    def feed_all(self, frames: list[bytes]) -> list[Event | Info | Resync]:
        """The events in `frames` that concern Huddle, in order. An error frame stops the batch: what
        came before it is returned, and the error is left in `self.error` for the caller to raise."""
        self.error = None
        self.frames += len(frames)
        events: list[Event | Info | Resync] = []
        known = self.known
        body: dict[str, Any] = {}
        for frame in frames:
            try:
                header, body = decode_dag_cbor_multi(frame)
                if header.get("t") == "#commit" and header.get("op") == 1:
                    self.seq = body["seq"]
                    if body["repo"] not in known:
                        # The hot path: most commits are strangers' posts and likes.
                        for op in body["ops"]:
                            path = op["path"]
                            if path.startswith(_FOLLOW_PREFIX) or path.startswith(_OFFER_PREFIX):
                                break
                        else:
                            continue
                    event: Event | Info | Resync | None = self._commit(body)
                else:
                    event = self._other(header, body)
            except StreamError as exc:
                self.error = exc
                break
            except Exception:  # an undecodable frame is skipped, never fatal
                self.counts["undecodable"] += 1
                continue
            if event is not None:
                events.append(event)
        if isinstance(body, dict) and isinstance(body.get("time"), str):
            self.time = body["time"]
        return events

    def _commit(self, body: dict[str, Any]) -> Commit | Resync | None:
        repo = body["repo"]
        tracked = repo in self.known
        changes: list[Change] | None = None
        incomplete = False
        for op in body["ops"]:
            path = op["path"]
            if path.startswith(_FOLLOW_PREFIX):
                change = self._follow(repo, tracked, op, path, body)
            elif path.startswith(_OFFER_PREFIX):
                change = self._offer(repo, op, path, body)
            else:
                continue
            if change is None:
                continue
            if change is _INCOMPLETE:
                incomplete = True
                continue
            if changes is None:
                changes = []
            changes.append(change)  # type: ignore[arg-type]
        if body.get("tooBig") and (tracked or changes or incomplete):
            self.counts["too_big"] += 1
            return Resync(repo, "too_big")
        if changes is None and not tracked and not incomplete:
            return None
        self.counts["commit_kept"] += 1
        return Commit(
            did=repo,
            rev=body["rev"],
            since=body.get("since"),
            changes=changes or [],
            tracked=tracked,
            incomplete=incomplete,
        )

    def _offer(self, repo: str, op: dict[str, Any], path: str, body: dict[str, Any]) -> Any:
        rkey = path[len(_OFFER_PREFIX) :]
        action = op.get("action")
        self.counts[f"offer_{action}"] += 1
        if repo not in self.known:
            # A host from now on: the next frame (a follow of them, say) must already know it.
            self.known.add(repo)
            self.learned.add(repo)
        if action == "delete":
            return OfferDelete(repo, rkey)
        if action not in ("create", "update"):
            return None
        cid = op.get("cid")
        record = self._record(body, cid)
        if record is _INCOMPLETE or not isinstance(cid, bytes):
            return _INCOMPLETE
        return OfferPut(repo, rkey, encode_cid(cid), json_safe(record))

    def _follow(self, repo: str, tracked: bool, op: dict[str, Any], path: str, body: dict[str, Any]) -> Any:
        action = op.get("action")
        uri = at_uri(repo, FOLLOW_NSID, path[len(_FOLLOW_PREFIX) :])
        if action == "delete":
            # The subject is not in a delete: the edge, if Huddle kept it, is found by its uri.
            self.counts["follow_delete"] += 1
            return FollowDelete(uri)
        if action not in ("create", "update"):
            return None
        record = self._record(body, op.get("cid"))
        if record is _INCOMPLETE:
            return _INCOMPLETE if tracked else None
        subject = record.get("subject") if isinstance(record, dict) else None
        if not isinstance(subject, str):
            self.counts["follow_invalid"] += 1
            return None
        if not tracked and subject not in self.known:
            return FollowDelete(uri) if action == "update" else None
        self.counts["follow_kept"] += 1
        return FollowPut(uri, repo, subject, replace=action == "update")

    def _record(self, body: dict[str, Any], cid: Any) -> Any:
        blocks = body.get("blocks")
        if not isinstance(cid, bytes) or not isinstance(blocks, bytes):
            self.counts["missing_block"] += 1
            return _INCOMPLETE
        block = read_block(blocks, cid)
        if block is None:
            self.counts["missing_block"] += 1
            return _INCOMPLETE
        try:
            return decode_dag_cbor(block)
        except Exception:
            self.counts["undecodable_block"] += 1
            return _INCOMPLETE

    def _other(self, header: dict[str, Any], body: dict[str, Any]) -> Event | Info | Resync | None:
        if header.get("op") != 1:
            if header.get("op") == -1:
                raise StreamError(str(body.get("error")), body.get("message"))
            self.counts["unknown_op"] += 1
            return None
        kind = header.get("t")
        if kind == "#info":
            self.counts["info"] += 1
            return Info(str(body.get("name")), body.get("message"))
        seq = body.get("seq")
        if isinstance(seq, int):
            self.seq = seq
            self.time = body.get("time")
        did = body.get("did")
        if not isinstance(did, str):
            self.counts["other"] += 1
            return None
        if kind == "#identity":
            self.counts["identity"] += 1
            if did not in self.known:
                return None
            handle = body.get("handle")
            if not isinstance(handle, str) or handle == "handle.invalid":
                handle = None
            return IdentityUpdate(did, handle)
        if kind == "#account":
            self.counts["account"] += 1
            if did not in self.known:
                return None
            status = body.get("status")
            active = body.get("active") is not False
            return AccountUpdate(did, active, status if isinstance(status, str) else None)
        if kind == "#sync":
            self.counts["sync"] += 1
            return Resync(did, "sync") if did in self.known else None
        self.counts["other"] += 1
        return None


class _Incomplete:
    """A marker: the record Huddle needed is not in the commit's blocks (or is corrupt)."""


_INCOMPLETE: Any = _Incomplete()


def read_block(car: bytes, cid: bytes) -> bytes | None:
    """The block of `cid` in a CAR v1 file, checked against its sha2-256 hash; None if absent or wrong.

    Walks the section headers only: nothing but the wanted block is decoded.
    """
    size = len(car)
    length, pos = _varint(car, 0)
    pos += length  # the CAR header
    want = len(cid)
    while pos < size:
        length, start = _varint(car, pos)
        end = start + length
        if end > size:
            return None
        if car.startswith(cid, start):
            block = car[start + want : end]
            if cid.startswith(_SHA256_CID_PREFIX) and hashlib.sha256(block).digest() != cid[4:]:
                return None
            return block
        pos = end
    return None


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def json_safe(value: Any) -> Any:
    """A decoded DAG-CBOR value in the ATProto JSON form: links as `{"$link"}`, bytes as `{"$bytes"}`."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_safe(item) for item in value]
    if isinstance(value, bytes):
        # libipld hands links and byte strings back alike; a CIDv1 prefix says which it was.
        if len(value) > 4 and value[0] == 1 and value[1] in (0x55, 0x71):
            with contextlib.suppress(Exception):  # not a CID after all
                return {"$link": encode_cid(value)}
        return {"$bytes": base64.b64encode(value).decode().rstrip("=")}
    return value
