"""Helpers for the firehose tests: a consumer run as a task, a TCP proxy that cuts connections,
slotOffer records, and the index and PDS states to compare."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from clients.repo_reader import RepoReader, RepoRefresher
from models.index_store import FOLLOW_NSID, OFFER_NSID
from models.settings import Settings
from models.tables import GraphEdge, OfferIndex
from tests.peers.pds_peer import Account, PdsPeer
from workers.firehose.consumer import ConsumerOptions, FirehoseConsumer


def offer_record(title: str = "Office hours", **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "title": title,
        "timezone": "Europe/Berlin",
        "windows": [{"days": ["mon", "wed"], "start": "09:00", "end": "12:00"}],
        "durations": [30, 60],
        "createdAt": "2026-01-05T10:00:00.000Z",
    }
    record.update(overrides)
    return record


async def wait_until(check: Callable[[], bool], within: float, *, what: str = "condition") -> float:
    """Poll `check` (run in a thread: it reads the database) until true; the seconds it took."""
    start = time.monotonic()
    while True:
        if await asyncio.to_thread(check):
            return time.monotonic() - start
        if time.monotonic() - start > within:
            raise AssertionError(f"{what} not reached within {within} s")
        await asyncio.sleep(0.01)


def reader_for(settings: Settings) -> RepoReader:
    return RepoReader(plc_url=settings.plc_url, dev_mode=True, timeout=10)


class RunningConsumer:
    """A FirehoseConsumer run as a task, as `huddle firehose` runs it."""

    def __init__(self, engine: Engine, settings: Settings, source: str | None = None) -> None:
        self.reader = reader_for(settings)
        self.consumer = FirehoseConsumer(
            engine,
            source or settings.relay_url,
            ConsumerOptions.from_settings(settings),
            refresher=RepoRefresher(engine, self.reader),
        )
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> FirehoseConsumer:
        self._task = asyncio.create_task(self.consumer.run(self._stop))
        waiter = asyncio.create_task(self.consumer.connected.wait())
        done, _ = await asyncio.wait({self._task, waiter}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            if self._task in done:
                self._task.result()
            raise AssertionError("the consumer did not connect")
        return self.consumer

    async def settle(self, within: float = 10.0) -> None:
        """Wait until every event received so far is written and no repo fetch is pending."""
        deadline = time.monotonic() + within
        while not self.consumer.idle() or self.consumer._pending:
            if time.monotonic() > deadline:
                raise AssertionError("the consumer did not settle")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._stop.set()
        task, self._task = self._task, None
        await task
        self.reader.close()

    def kill(self) -> None:
        """Cancel without the graceful shutdown (no last flush, no cursor save)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self.consumer.stream is not None:
            self.consumer.stream.abort()


class TcpProxy:
    """Forwards connections to host:port; `cut()` aborts every connection through it."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Transport] = set()
        self.port = 0
        self.cuts = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer.transport, up_writer.transport)
        self._links.update(pair)  # type: ignore[arg-type]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._links.difference_update(pair)  # type: ignore[arg-type]

    def cut(self) -> bool:
        """Abort every connection; True (and counted) if there was one."""
        links = list(self._links)
        for transport in links:
            transport.abort()
        self.cuts += bool(links)
        return bool(links)

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


# ---------------------------------------------------------------- states to compare


def indexed_offers(engine: Engine, dids: list[str]) -> dict[str, str]:
    """Live offers of `dids` in the index: uri → cid."""
    with Session(engine) as session:
        rows = session.exec(
            select(OfferIndex.uri, OfferIndex.cid).where(
                col(OfferIndex.did).in_(dids), col(OfferIndex.deleted).is_(False)
            )
        )
        return dict(rows.all())


def indexed_follows(engine: Engine, authors: list[str]) -> dict[str, str]:
    """Edges authored by `authors`: uri → subject."""
    with Session(engine) as session:
        rows = session.exec(
            select(GraphEdge.uri, GraphEdge.subject_did).where(col(GraphEdge.author_did).in_(authors))
        )
        return dict(rows.all())


def pds_offers(peer: PdsPeer, accounts: list[Account]) -> dict[str, str]:
    return {r["uri"]: r["cid"] for a in accounts for r in peer.list_records(a.did, OFFER_NSID)}


def pds_follows(peer: PdsPeer, accounts: list[Account]) -> dict[str, str]:
    return {r["uri"]: r["value"]["subject"] for a in accounts for r in peer.list_records(a.did, FOLLOW_NSID)}


async def converges(
    engine: Engine, peer: PdsPeer, accounts: list[Account], within: float = 15.0
) -> tuple[dict[str, str], dict[str, str]]:
    """Wait until the index holds exactly the accounts' offers and follows on the PDS; return them."""
    dids = [a.did for a in accounts]
    offers = await asyncio.to_thread(pds_offers, peer, accounts)
    follows = await asyncio.to_thread(pds_follows, peer, accounts)

    def same() -> bool:
        return indexed_offers(engine, dids) == offers and indexed_follows(engine, dids) == follows

    try:
        await wait_until(same, within, what="index == PDS")
    except AssertionError as exc:
        for name, want, got in (
            ("offers", offers, indexed_offers(engine, dids)),
            ("follows", follows, indexed_follows(engine, dids)),
        ):
            missing = {k: v for k, v in want.items() if got.get(k) != v}
            extra = {k: v for k, v in got.items() if want.get(k) != v}
            if missing or extra:
                raise AssertionError(f"{name}: missing {missing}, extra {extra}") from exc
        raise
    return offers, follows


async def run_in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


Step = Callable[[], Awaitable[None]]
