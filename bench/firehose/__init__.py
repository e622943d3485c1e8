"""Firehose ingest: `huddle firehose`'s consumer vs a reference consumer that fully decodes every commit
with the `atproto` package, both reading the same replayed stream from a local WebSocket server.

The stream is recorded real frames scaled up into the network's mix (mix.py). The server runs in
its own process, sends pre-framed messages in large writes and is never the bottleneck. Huddle's
consumer writes into a fresh SQLite index with 500 known people; the reference parses every frame
into models, reads each commit's CAR and builds every record (what a naive AppView does first).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.firehose.mix import Stream, build
from bench.firehose.stream import ReplayServer, Reply, ws_frame
from bench.table import Row, row

EVENTS = 100_000
TARGET_EVENTS_PER_SECOND = 20_000
TARGET_RATIO = 5.0


def _serve(frames: list[bytes], ready: Any) -> None:
    """The replay server's process: every connection gets the frames after its cursor, then a close."""

    # The whole stream framed once, so serving it costs the server next to nothing per event.
    offsets = [0]
    for frame in frames:
        offsets.append(offsets[-1] + len(ws_frame(frame)))
    wire = memoryview(b"".join(ws_frame(frame) for frame in frames))

    def script(cursor: int | None) -> Reply:
        start = cursor or 0  # frame i has seq i + 1: resume after the cursor
        if start >= len(frames):
            return Reply()  # caught up: stay open, silent
        return Reply(raw=wire[offsets[start] :], close_code=1000, close_reason="done")

    async def main() -> None:
        server = await ReplayServer(script, chunk=1 << 20).start()
        ready.put(server.port)
        await asyncio.Event().wait()

    asyncio.run(main())


def _start_server(stream: Stream) -> tuple[Any, str]:
    ctx = mp.get_context("fork")  # the child inherits the frames; nothing is pickled
    ready = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(stream.frames, ready), daemon=True)
    proc.start()
    return proc, f"ws://127.0.0.1:{ready.get(timeout=60)}"


async def _huddle(url: str, stream: Stream, workdir: Path) -> tuple[float, dict[str, Any]]:
    from sqlmodel import Session, col, select

    from models.db import make_engine
    from models.migrate import migrate
    from models.tables import OfferIndex, User
    from workers.firehose.consumer import ConsumerOptions, FirehoseConsumer

    database = f"sqlite:///{workdir / 'index.db'}"
    migrate(database)
    engine = make_engine(database)
    with Session(engine) as session:
        session.add_all(User(did=did) for did in stream.known)
        session.commit()
    consumer = FirehoseConsumer(engine, url, ConsumerOptions(stats_log_seconds=3600))
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await consumer.connected.wait()
    start, cpu = time.perf_counter(), time.process_time()
    last = len(stream.frames)
    while consumer.resume_cursor() != last:
        if task.done():
            task.result()
        await asyncio.sleep(0.002)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    stop.set()
    await task
    with Session(engine) as session:
        live = set(session.exec(select(OfferIndex.uri).where(col(OfferIndex.deleted).is_(False))).all())
    engine.dispose()
    totals = consumer.metrics.totals
    blocks = sum(
        totals[f"frames.{k}"] for k in ("offer_create", "offer_update", "follow_kept", "follow_invalid")
    )
    facts = {"live_offers": live, "totals": totals, "blocks": blocks, "per_cpu_second": last / cpu}
    return last / elapsed, facts


async def _reference(url: str, last: int) -> tuple[float, float, int]:
    from atproto import (
        CAR,
        AsyncFirehoseSubscribeReposClient,
        firehose_models,
        models,
        parse_subscribe_repos_message,
    )

    client = AsyncFirehoseSubscribeReposClient(base_uri=f"{url}/xrpc")
    decoded = newest = 0
    first: float | None = None
    first_cpu = 0.0
    done = asyncio.Event()
    elapsed = cpu = 0.0

    async def on_message(message: firehose_models.MessageFrame) -> None:
        nonlocal decoded, newest, first, first_cpu, elapsed, cpu
        if first is None:
            first, first_cpu = time.perf_counter(), time.process_time()
        commit = parse_subscribe_repos_message(message)
        seq = getattr(commit, "seq", None)
        if isinstance(commit, models.ComAtprotoSyncSubscribeRepos.Commit) and commit.blocks:
            car = CAR.from_bytes(commit.blocks)
            for op in commit.ops:
                if op.action in ("create", "update") and op.cid:
                    models.get_or_create(car.blocks.get(op.cid), strict=False)
                    decoded += seq is not None and seq > newest  # a replay after a reconnect is not counted
        if isinstance(seq, int):
            newest = max(newest, seq)
            if seq % 100 == 0:  # as atproto's docs say: hand the cursor back, or a reconnect rewinds
                client.update_params(models.ComAtprotoSyncSubscribeRepos.Params(cursor=seq))
        if seq == last:
            elapsed, cpu = time.perf_counter() - first, time.process_time() - first_cpu
            done.set()
            await client.stop()

    task = asyncio.create_task(client.start(on_message))
    await asyncio.wait_for(done.wait(), 900)
    await task
    return last / elapsed, last / cpu, decoded


def run(events: int = EVENTS, seed: int = 1) -> list[Row]:
    stream = build(events, seed=seed)
    proc, url = _start_server(stream)
    try:
        with tempfile.TemporaryDirectory(prefix="huddle-bench-firehose-") as tmp:
            ours, facts = asyncio.run(_huddle(url, stream, Path(tmp)))
        reference, reference_per_cpu, decoded = asyncio.run(_reference(url, len(stream.frames)))
    finally:
        proc.terminate()
        proc.join(10)
    huddle_share = sum(n for kind, n in stream.kinds.items() if kind.startswith("offer")) / events
    case = f"{events:,} events, {stream.bytes / events / 1024:.1f} KiB avg, huddle records {huddle_share:.2%}"
    return [
        row("firehose", case, "events/s: huddle firehose vs atproto full decode", ours, reference),
        row(
            "firehose",
            case,
            "events per CPU-second of the consuming process",
            facts["per_cpu_second"],
            reference_per_cpu,
        ),
        row("firehose", case, "record blocks decoded: huddle vs reference", facts["blocks"], decoded)
        | {"ratio": None},  # a count, not a speed: the point is how few
        row(
            "firehose",
            case,
            "live offers in the index vs in the stream (correctness)",
            len(facts["live_offers"] & stream.live_offers) - len(facts["live_offers"] ^ stream.live_offers),
            len(stream.live_offers),
        ),
    ]
