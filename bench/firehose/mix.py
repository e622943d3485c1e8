"""A realistic `subscribeRepos` stream scaled up from frames recorded off the real PDS.

Kinds are weighted like the public network: likes, posts, reposts and follows dominate, identity and
account events are a few per thousand, Huddle's own records are rare (0.05 %). Each frame is a
recorded one with its seq, repo, rev/since and time rewritten, so every repo has a consistent rev
chain; records and CAR blocks are untouched. Repos come from a pool; some are people Huddle knows.
"""

from __future__ import annotations

import gzip
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from libipld import decode_dag_cbor, decode_dag_cbor_multi, encode_dag_cbor

FIXTURE = Path(__file__).with_name("recorded_frames.cbor.gz")

# Events per million on the network (order of magnitude, 2025); Huddle's records are the rare ones.
WEIGHTS = {
    "like": 450_000,
    "post": 200_000,
    "follow": 120_000,
    "repost": 90_000,
    "unfollow": 25_000,
    "profile": 10_000,
    "identity": 8_000,
    "account": 2_000,
    "sync": 1_000,
    "offer_create": 300,
    "offer_update": 150,
    "offer_delete": 50,
}
_COLLECTIONS = {
    "app.bsky.feed.like": "like",
    "app.bsky.feed.post": "post",
    "app.bsky.feed.repost": "repost",
    "app.bsky.actor.profile": "profile",
}
_B32 = "abcdefghijklmnopqrstuvwxyz234567"


def kind_of(header: dict[str, Any], body: dict[str, Any]) -> str | None:
    """The benchmark kind of a recorded frame, or None for frames the mix does not use."""
    t = header.get("t")
    if t in ("#identity", "#account", "#sync"):
        return t[1:]
    if t != "#commit" or len(body.get("ops") or ()) != 1:
        return None
    op = body["ops"][0]
    collection, action = op["path"].split("/", 1)[0], op["action"]
    if collection == "com.huddle.slotOffer":
        return f"offer_{action}"
    if collection == "app.bsky.graph.follow":
        return "follow" if action == "create" else "unfollow"
    return _COLLECTIONS.get(collection)


def load_templates(path: Path = FIXTURE) -> dict[str, list[bytes]]:
    items = decode_dag_cbor(gzip.decompress(path.read_bytes()))
    templates: dict[str, list[bytes]] = {}
    for item in items:
        templates.setdefault(item["kind"], []).append(item["frame"])
    missing = set(WEIGHTS) - set(templates)
    if missing:
        raise RuntimeError(f"{path} lacks {sorted(missing)}: run python -m bench.firehose.record")
    return templates


def fake_did(i: int) -> str:
    chars = []
    for _ in range(24):
        i, r = divmod(i, 32)
        chars.append(_B32[r])
    return "did:plc:" + "".join(reversed(chars))


@dataclass
class Stream:
    frames: list[bytes]
    known: list[str]  # people Huddle knows (seeded as users before the run)
    live_offers: set[str]  # offer uris that exist once the stream has been applied
    kinds: Counter[str] = field(default_factory=Counter)

    @property
    def bytes(self) -> int:
        return sum(map(len, self.frames))


def build(events: int, *, seed: int = 1, repos: int = 20_000, known: int = 500, hosts: int = 50) -> Stream:
    rng = random.Random(seed)
    templates = load_templates()
    pool = [fake_did(1_000_003 * i + 7) for i in range(repos)]
    hosts_pool = pool[:hosts]
    kinds = list(WEIGHTS)
    chosen = rng.choices(kinds, weights=[WEIGHTS[k] for k in kinds], k=events)
    revs: dict[str, str] = {}
    live: dict[str, bool] = {}
    frames: list[bytes] = []
    for seq, kind in enumerate(chosen, start=1):
        header, body = decode_dag_cbor_multi(rng.choice(templates[kind]))
        repo = rng.choice(hosts_pool if kind.startswith("offer") else pool)
        body["seq"] = seq
        body["time"] = "2026-11-25T10:00:00.000Z"
        if header["t"] == "#commit":
            rev = f"3n{seq:011d}"
            body.update(repo=repo, rev=rev, since=revs.get(repo))
            revs[repo] = rev
            if kind.startswith("offer"):
                rkey = body["ops"][0]["path"].split("/", 1)[1]
                live[f"at://{repo}/com.huddle.slotOffer/{rkey}"] = kind != "offer_delete"
        else:
            body["did"] = repo
            if header["t"] == "#sync":
                body["rev"] = revs.setdefault(repo, f"3n{seq:011d}")
        frames.append(encode_dag_cbor(header) + encode_dag_cbor(body))
    return Stream(
        frames=frames,
        known=pool[:known],
        live_offers={uri for uri, alive in live.items() if alive},
        kinds=Counter(chosen),
    )
