"""The WebSocket client and the consumer against a scripted relay: the event-stream spec's cases."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import Engine
from sqlmodel import Session

from bench.firehose.stream import Op, ReplayServer, Reply, commit, error_frame, message, ws_frame
from clients.repo_reader import RepoReader, RepoRefresher
from models.index_store import SnapshotOutcome
from models.tables import FirehoseCursor, OfferIndex, User
from workers.firehose import cursor_store
from workers.firehose.consumer import ConsumerOptions, FirehoseConsumer, subscribe_url
from workers.firehose.transport import StreamClosed, open_stream

HOST = "did:plc:hosthosthosthosthosthost"
OFFER = {
    "$type": "com.huddle.slotOffer",
    "title": "Office hours",
    "timezone": "UTC",
    "windows": [{"days": ["mon"], "start": "09:00", "end": "10:00"}],
    "durations": [30],
    "createdAt": "2026-01-01T00:00:00Z",
}
FAST = ConsumerOptions(
    flush_seconds=0.01,
    cursor_every_seconds=0.05,
    backoff_initial_seconds=0.01,
    backoff_max_seconds=0.05,
    known_refresh_seconds=0.1,
    heartbeat_seconds=0.2,
)


def offers(first_seq: int, n: int, rev_base: int = 100) -> list[bytes]:
    frames = []
    for i in range(n):
        rev, since = f"3k{rev_base + i}", (f"3k{rev_base + i - 1}" if i else None)
        ops = [Op("create", f"com.huddle.slotOffer/o{rev_base + i}", {**OFFER, "title": f"t{i}"})]
        frames.append(commit(first_seq + i, HOST, rev, since, ops))
    return frames


class RecordingRefresher(RepoRefresher):
    """Records which repos the consumer asks to re-read; reads nothing."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, RepoReader(plc_url="http://127.0.0.1:9"))
        self.asked: list[str] = []

    def refresh(self, did: str) -> SnapshotOutcome:
        self.asked.append(did)
        return SnapshotOutcome(applied=True)


@pytest_asyncio.fixture
async def server() -> AsyncIterator[ReplayServer]:
    srv = ReplayServer(script=lambda cursor: Reply())
    await srv.start()
    yield srv
    await srv.close()


async def _run(consumer: FirehoseConsumer, until: object, within: float = 10.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + within
        while not until():  # type: ignore[operator]
            if task.done():
                task.result()
            assert asyncio.get_running_loop().time() < deadline, "condition not reached"
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await task


def _stored(engine: Engine, source: str) -> FirehoseCursor | None:
    with Session(engine) as session:
        return session.get(FirehoseCursor, source)


# ---------------------------------------------------------------- the client


async def test_the_client_reassembles_fragments_answers_pings_and_reports_the_close_reason(
    server: ReplayServer,
) -> None:
    fragmented = bytes([0x02, 3]) + b"hel" + bytes([0x80, 2]) + b"lo"  # binary without FIN, continuation
    server.script = lambda cursor: Reply(
        frames=[b"one"],
        raw=fragmented + ws_frame(b"ping!", opcode=9) + ws_frame(b"two"),
        close_code=1008,
        close_reason="FutureCursor",
    )
    stream = await open_stream(server.url + "/xrpc/x")
    got: list[bytes] = []
    with pytest.raises(StreamClosed) as closed:
        while True:
            got += await stream.receive(1.0)
    assert got == [b"one", b"hello", b"two"]
    assert closed.value.code == 1008 and closed.value.reason == "FutureCursor"
    # The client answered the ping with a masked pong carrying the same payload.
    deadline = asyncio.get_running_loop().time() + 5.0
    while len(server.received) < 11:  # header, length, mask, five payload bytes
        assert asyncio.get_running_loop().time() < deadline, "no pong reached the server"
        await asyncio.sleep(0.01)
    head, length = server.received[0], server.received[1]
    assert head == 0x8A and length == 0x80 | 5
    mask, payload = server.received[2:6], server.received[6:11]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) == b"ping!"


async def test_a_silent_connection_is_pinged_then_dropped(server: ReplayServer) -> None:
    server.script = lambda cursor: Reply()
    stream = await open_stream(server.url + "/x", ping_after=0.1)
    with pytest.raises(StreamClosed, match="no answer"):
        for _ in range(100):
            await stream.receive(0.05)
    assert server.received[0] == 0x89  # the ping it sent


async def test_an_oversized_message_ends_the_stream(server: ReplayServer) -> None:
    server.script = lambda cursor: Reply(raw=bytes([0x82, 127]) + struct.pack("!Q", 10**9))
    stream = await open_stream(server.url + "/x", max_message=1024)
    with pytest.raises(StreamClosed, match="limit"):
        await stream.receive(1.0)


def test_subscribe_url() -> None:
    assert (
        subscribe_url("wss://bsky.network", None) == "wss://bsky.network/xrpc/com.atproto.sync.subscribeRepos"
    )
    assert (
        subscribe_url("ws://127.0.0.1:2583/xrpc/", 42)
        == "ws://127.0.0.1:2583/xrpc/com.atproto.sync.subscribeRepos?cursor=42"
    )
    assert subscribe_url("https://relay.example", 0).startswith("wss://relay.example/xrpc/")


# ---------------------------------------------------------------- the consumer


async def test_outdated_cursor_carries_on_and_rereads_known_repos(
    sqlite_engine: Engine, server: ReplayServer
) -> None:
    with Session(sqlite_engine) as session:
        session.add(User(did=HOST))
        session.add(FirehoseCursor(source=server.url, cursor=5))
        session.commit()
    frames = offers(1000, 3)
    server.script = lambda cursor: Reply(
        frames=[message("#info", {"name": "OutdatedCursor", "message": "too old"}), *frames]
    )
    refresher = RecordingRefresher(sqlite_engine)
    consumer = FirehoseConsumer(sqlite_engine, server.url, FAST, refresher=refresher)
    await _run(consumer, lambda: consumer.resume_cursor() == 1002 and HOST in refresher.asked)
    assert server.cursors[0] == 5
    assert consumer.metrics.totals["repo_fetches.outdated_cursor"] >= 1
    with Session(sqlite_engine) as session:
        assert session.get(OfferIndex, f"at://{HOST}/com.huddle.slotOffer/o102") is not None
    stored = _stored(sqlite_engine, server.url)
    assert stored is not None and stored.cursor == 1002 and stored.connected is False  # saved on shutdown


@pytest.mark.parametrize("how", ["error frame", "close reason"])
async def test_future_cursor_forgets_the_cursor_resumes_live_and_rereads_known_repos(
    sqlite_engine: Engine, server: ReplayServer, how: str
) -> None:
    with Session(sqlite_engine) as session:
        session.add(User(did=HOST))
        session.add(FirehoseCursor(source=server.url, cursor=999_999))
        session.commit()

    def script(cursor: int | None) -> Reply:
        if cursor is not None and cursor > 2000:
            if how == "error frame":
                return Reply(frames=[error_frame("FutureCursor", "Cursor in the future.")], close_code=1008)
            return Reply(close_code=1008, close_reason="FutureCursor")
        return Reply(frames=offers(1, 2))

    server.script = script
    refresher = RecordingRefresher(sqlite_engine)
    consumer = FirehoseConsumer(sqlite_engine, server.url, FAST, refresher=refresher)
    await _run(consumer, lambda: consumer.resume_cursor() == 2 and HOST in refresher.asked)
    assert server.cursors[:2] == [999_999, None]
    stored = _stored(sqlite_engine, server.url)
    assert stored is not None and stored.cursor == 2


async def test_reconnects_resume_after_the_last_written_event(
    sqlite_engine: Engine, server: ReplayServer
) -> None:
    frames = offers(1, 30)

    def script(cursor: int | None) -> Reply:
        start = cursor or 0
        if start >= len(frames):
            return Reply()  # nothing more: the connection stays open until the consumer stops
        return Reply(frames=frames[start : start + 7], close_code=1011, close_reason="ConsumerTooSlow")

    server.script = script
    consumer = FirehoseConsumer(sqlite_engine, server.url, FAST, refresher=RecordingRefresher(sqlite_engine))
    # Stopped once it has come back after the last event: that connection is never closed by the
    # server, so nothing can reconnect (or count a reconnect) after the condition is seen.
    await _run(consumer, lambda: server.cursors[-1:] == [30])
    assert server.cursors == [None, 7, 14, 21, 28, 30]
    assert consumer.resume_cursor() == 30
    with Session(sqlite_engine) as session:
        assert len(session.exec(OfferIndex.__table__.select()).all()) == 30  # type: ignore[attr-defined]
    assert consumer.metrics.totals["reconnects"] == 5


async def test_the_cursor_is_stored_every_n_events(sqlite_engine: Engine, server: ReplayServer) -> None:
    server.script = lambda cursor: Reply(frames=offers(1, 25))
    options = ConsumerOptions(flush_seconds=0.01, cursor_every_events=10, cursor_every_seconds=3600)
    consumer = FirehoseConsumer(sqlite_engine, server.url, options)
    # Stored long before the hour is up: because of the event count.
    await _run(consumer, lambda: cursor_store.load(sqlite_engine, server.url) is not None)
    stored = cursor_store.load(sqlite_engine, server.url)
    assert stored is not None and 10 <= stored <= 25
    with Session(sqlite_engine) as session:  # written in the same transaction as the events up to it
        assert session.get(OfferIndex, f"at://{HOST}/com.huddle.slotOffer/o{100 + stored - 1}") is not None
