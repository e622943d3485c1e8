"""Record real `subscribeRepos` frames from the local PDS into the benchmark's fixture.

    python -m bench.firehose.record [--per-kind 3] [--history 150]

Starts the real PDS peer (tests/peers), gives a few accounts some history (so commits carry
realistic MST proofs), then does each kind of write the network is made of — posts, likes,
reposts, follows and unfollows, profile edits, slotOffer creates/edits/deletes, handle changes,
deactivation — and keeps the last `per-kind` frames of each kind. The fixture is a gzipped
DAG-CBOR list of `{kind, frame}`; the benchmark scales it up into a stream (see `mix.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from libipld import decode_dag_cbor_multi, encode_dag_cbor

from bench.firehose.mix import FIXTURE, kind_of

OFFER = {
    "title": "Office hours",
    "timezone": "Europe/Berlin",
    "windows": [{"days": ["mon", "wed"], "start": "09:00", "end": "12:00"}],
    "durations": [30, 60],
    "createdAt": "2026-01-05T10:00:00.000Z",
}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _writes(peer: Any, history: int) -> None:
    accounts = [peer.create_account(f"rec{i}") for i in range(3)]
    posts: list[tuple[str, str]] = []
    for i in range(history):
        account = accounts[i % len(accounts)]
        posts.append(
            peer.create_record(
                account,
                "app.bsky.feed.post",
                {"text": f"history {i} " + "lorem ipsum " * 8, "createdAt": _now()},
            )
        )
    for round_ in range(4):
        for a, account in enumerate(accounts):
            other = accounts[(a + 1) % len(accounts)]
            uri, cid = posts[(round_ * 7 + a) % len(posts)]
            peer.create_record(account, "app.bsky.feed.post", {"text": f"post {round_}", "createdAt": _now()})
            peer.create_record(
                account, "app.bsky.feed.like", {"subject": {"uri": uri, "cid": cid}, "createdAt": _now()}
            )
            peer.create_record(
                account, "app.bsky.feed.repost", {"subject": {"uri": uri, "cid": cid}, "createdAt": _now()}
            )
            follow = peer.follow(account, other.did)
            peer.unfollow(account, follow)
            peer.follow(account, other.did)
            peer.put_record(
                account,
                "app.bsky.actor.profile",
                "self",
                {"displayName": f"Rec {a} {round_}", "description": "hi"},
            )
            offer, _ = peer.create_record(account, "com.huddle.slotOffer", OFFER)
            rkey = offer.rsplit("/", 1)[1]
            peer.put_record(account, "com.huddle.slotOffer", rkey, {**OFFER, "title": "Edited"})
            if round_ % 2:
                peer.delete_record(account, "com.huddle.slotOffer", rkey)
            peer.update_handle(account, f"rec{a}-{round_}x")
            if round_ == 3:
                peer.deactivate_account(account)
                peer.activate_account(account)


async def _capture(url: str) -> list[bytes]:
    from workers.firehose.transport import open_stream

    stream = await open_stream(f"{url}/com.atproto.sync.subscribeRepos?cursor=0")
    frames: list[bytes] = []
    idle = 0
    while idle < 20:
        got = await stream.receive(0.1)
        frames += got
        idle = 0 if got else idle + 1
    stream.close()
    return frames


def record(per_kind: int, history: int) -> dict[str, list[bytes]]:
    from tests.peers.pds_peer import PdsPeer

    with PdsPeer(quiet_install=True) as peer:
        _writes(peer, history)
        frames = asyncio.run(_capture(peer.firehose_url))
    by_kind: dict[str, list[bytes]] = defaultdict(list)
    for frame in frames:
        header, body = decode_dag_cbor_multi(frame)
        kind = kind_of(header, body)
        if kind is not None:
            by_kind[kind].append(frame)
    return {kind: found[-per_kind:] for kind, found in sorted(by_kind.items())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.firehose.record", description=__doc__.split("\n")[0])
    ap.add_argument("--per-kind", type=int, default=3)
    ap.add_argument("--history", type=int, default=150, help="posts written first, so MST proofs have depth")
    ap.add_argument("--out", type=Path, default=FIXTURE)
    args = ap.parse_args(argv)
    kept = record(args.per_kind, args.history)
    items = [{"kind": kind, "frame": frame} for kind, frames in kept.items() for frame in frames]
    args.out.write_bytes(gzip.compress(encode_dag_cbor(items), mtime=0))
    for kind, frames in kept.items():
        print(f"{kind:<24} {len(frames)} frames, {sum(map(len, frames)) // len(frames)} bytes on average")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
