"""The firehose consumer: `com.atproto.sync.subscribeRepos` into the index, resumable and restartable.

One task reads the stream and filters it (frames.py); index writes go to a thread in batches, one
batch in flight at a time, so events are applied in stream order (per-DID order follows). The
cursor is stored with the writes every N events or T seconds, and on shutdown. Repos that need a
full read (#sync, a gap in a repo's rev chain, a new host, a relay that lost our place) go to a few
background fetchers. On any disconnect the consumer comes back after a capped, jittered backoff at
the last seq whose writes committed.

Event-stream spec cases: `#info OutdatedCursor` (the cursor was older than the relay keeps: events
were missed) → carry on, and read every known repo again. Error `FutureCursor` (the cursor is ahead
of the server: its sequence was reset, or this is another server) → forget the cursor, resume with
live events, and read every known repo again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy import Engine

from clients.repo_reader import RepoRefresher, RepoUnavailable
from models import index_store
from models.index_store import AccountUpdate, Commit, Event, IdentityUpdate, SnapshotOutcome, WriteOutcome
from models.settings import Settings
from workers.firehose import cursor_store
from workers.firehose.backoff import Backoff
from workers.firehose.frames import FrameFilter, Info, Resync, StreamError
from workers.firehose.metrics import FirehoseMetrics
from workers.firehose.transport import HandshakeError, MessageStream, StreamClosed, open_stream

log = logging.getLogger("huddle.firehose")
_tracer = trace.get_tracer("huddle.firehose")

SUBSCRIBE_REPOS = "com.atproto.sync.subscribeRepos"
_HEALTHY_SECONDS = 30.0
_RETRY_FAILED_FETCH = timedelta(minutes=5)
_KNOWN_ERRORS = frozenset({"FutureCursor", "ConsumerTooSlow"})


def subscribe_url(source: str, cursor: int | None) -> str:
    """`<source>/xrpc/com.atproto.sync.subscribeRepos[?cursor=N]` for a relay or PDS base URL."""
    parts = urlsplit(source.strip())
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/").removesuffix("/xrpc")
    query = f"cursor={cursor}" if cursor is not None else ""
    return urlunsplit((scheme, parts.netloc, f"{path}/xrpc/{SUBSCRIBE_REPOS}", query, ""))


@dataclass(frozen=True)
class ConsumerOptions:
    flush_seconds: float = 0.05
    cursor_every_events: int = 1000
    cursor_every_seconds: float = 2.0
    heartbeat_seconds: float = 10.0
    ping_seconds: float = 20.0
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 60.0
    known_refresh_seconds: float = 5.0
    resync_concurrency: int = 4
    stats_log_seconds: float = 60.0
    start_cursor: int | None = None
    max_batch: int = 2000  # events per index transaction
    max_pending: int = 20_000  # decoded events waiting while a batch is being written

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsumerOptions:
        start = settings.firehose_start_cursor
        if start is None and settings.dev_mode:
            start = 0  # a local PDS: everything it holds, so offers written before start-up show up
        if start is not None and start < 0:
            start = None  # live events only
        return cls(
            flush_seconds=settings.firehose_flush_seconds,
            cursor_every_events=settings.firehose_cursor_every_events,
            cursor_every_seconds=settings.firehose_cursor_every_seconds,
            heartbeat_seconds=settings.firehose_heartbeat_seconds,
            ping_seconds=settings.firehose_ping_seconds,
            backoff_initial_seconds=settings.firehose_backoff_initial_seconds,
            backoff_max_seconds=settings.firehose_backoff_max_seconds,
            known_refresh_seconds=settings.firehose_known_refresh_seconds,
            resync_concurrency=settings.firehose_resync_concurrency,
            stats_log_seconds=settings.firehose_stats_log_seconds,
            start_cursor=start,
        )


class FirehoseConsumer:
    """Consumes one source until `run(stop)` sees `stop`; `refresher` re-reads repos (None: never)."""

    def __init__(
        self,
        engine: Engine,
        source: str,
        options: ConsumerOptions | None = None,
        *,
        refresher: RepoRefresher | None = None,
        metrics: FirehoseMetrics | None = None,
    ) -> None:
        self.engine = engine
        self.source = source
        self.options = options or ConsumerOptions()
        self.refresher = refresher
        self.metrics = metrics or FirehoseMetrics(source)
        self.filter = FrameFilter(set())
        self.connected = asyncio.Event()
        self.stream: MessageStream | None = None
        self._local_known: set[str] = set()
        self._checked: set[str] = set()  # known people whose repo state was looked at once
        self._pending: list[Event] = []
        self._fed_seq: int | None = None  # last seq handed to the filter
        self._committed_seq: int | None = None  # last seq whose writes committed
        self._saved_seq: int | None = None  # last seq stored as the cursor
        self._stored_cursor: int | None = None
        self._cursor_loaded = False
        self._events_since_save = 0
        self._last_save = time.monotonic()
        self._last_flush = time.monotonic()
        self._inflight: asyncio.Task[None] | None = None
        self._fetch_queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        # Repo reads wait on other servers: their own threads, so index writes never queue behind them.
        self._fetch_pool = ThreadPoolExecutor(
            self.options.resync_concurrency, thread_name_prefix="repo-fetch"
        )
        self._queued: set[str] = set()
        self._fetching = 0

    # ------------------------------------------------------------ lifecycle

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, consume, reconnect with backoff, until `stop`; then flush and store the cursor."""
        opts = self.options
        self._stored_cursor = await asyncio.to_thread(cursor_store.load, self.engine, self.source)
        self._cursor_loaded = True
        await self._refresh_known(retry_after=timedelta(0))
        helpers = [
            asyncio.create_task(self._every(opts.heartbeat_seconds, self._heartbeat)),
            asyncio.create_task(self._every(opts.known_refresh_seconds, self._refresh_known)),
            asyncio.create_task(self._every(opts.stats_log_seconds, self._log_stats)),
        ]
        if self.refresher is not None:
            helpers += [asyncio.create_task(self._fetcher()) for _ in range(opts.resync_concurrency)]
        backoff = Backoff(opts.backoff_initial_seconds, opts.backoff_max_seconds)
        try:
            while not stop.is_set():
                started = time.monotonic()
                delivered = await self._session(stop)
                if stop.is_set():
                    break
                if delivered or time.monotonic() - started >= _HEALTHY_SECONDS:
                    backoff.reset()
                delay = backoff.next()
                log.info("reconnecting to %s in %.2f s", self.source, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            self._fetch_pool.shutdown(wait=False, cancel_futures=True)
            await self._shutdown()

    async def _shutdown(self) -> None:
        try:
            await self._flush(save_cursor=True)
        except Exception:
            log.exception("could not write the last events and the cursor on shutdown")
        with contextlib.suppress(Exception):
            await asyncio.to_thread(cursor_store.heartbeat, self.engine, self.source, connected=False)
        log.info("firehose consumer stopped: %s", self.metrics.summary())

    def resume_cursor(self) -> int | None:
        """Where the next connection starts: after the last committed event, else the stored cursor."""
        if self._committed_seq is not None:
            return self._committed_seq
        if self._stored_cursor is not None:
            return self._stored_cursor
        return self.options.start_cursor if self._cursor_loaded else None

    async def _session(self, stop: asyncio.Event) -> bool:
        """One connection, until it ends; True if it delivered any message."""
        url = subscribe_url(self.source, self.resume_cursor())
        delivered = False
        try:
            stream = await open_stream(url, ping_after=self.options.ping_seconds)
        except (OSError, TimeoutError, HandshakeError, StreamClosed) as exc:
            log.warning("cannot connect to %s: %s", url, exc or type(exc).__name__)
            self.metrics.reconnect("connect")
            return False
        log.info("connected to %s", url)
        self.stream = stream
        self.metrics.connected = True
        self.connected.set()
        try:
            await asyncio.to_thread(cursor_store.heartbeat, self.engine, self.source, connected=True)
            while not stop.is_set():
                frames = await stream.receive(self.options.flush_seconds)
                if frames:
                    delivered = True
                    self._consume(frames)
                await self._maybe_flush()
            stream.close()
        except StreamClosed as exc:
            if exc.reason == "FutureCursor":
                await self._future_cursor()
            else:
                log.warning("stream from %s ended: %s", self.source, exc)
            self.metrics.reconnect("closed")
        except StreamError as exc:
            stream.abort()
            if exc.error == "FutureCursor":
                await self._future_cursor()
            else:
                log.warning("%s sent an error: %s", self.source, exc)
            # A label from a fixed set: the server's error names are not ours to multiply.
            self.metrics.reconnect(exc.error if exc.error in _KNOWN_ERRORS else "error_frame")
        except Exception:
            stream.abort()
            log.exception("firehose session failed; reconnecting from seq %s", self._committed_seq)
            self.metrics.reconnect("error")
            delivered = False  # our failure (the database?): back off as if the server had failed
        finally:
            self.connected.clear()
            self.stream = None
            self.metrics.connected = False
        try:
            await self._flush(save_cursor=False)
        except Exception:
            # Dropped: the next connection resumes at the last committed seq and sees them again.
            log.exception("could not write %d decoded events", len(self._pending))
            self._pending.clear()
            self._inflight = None
        with contextlib.suppress(Exception):
            await asyncio.to_thread(cursor_store.heartbeat, self.engine, self.source, connected=False)
        return delivered

    # ------------------------------------------------------------ the hot path

    def _consume(self, frames: list[bytes]) -> None:
        pending = self._pending
        try:
            for event in self.filter.feed_all(frames):
                if isinstance(event, Commit | AccountUpdate):
                    pending.append(event)
                elif isinstance(event, IdentityUpdate):
                    pending.append(event)
                    if self.refresher is not None:
                        self.refresher.reader.forget(event.did)  # it may have moved to another PDS
                elif isinstance(event, Resync):
                    self._enqueue(event.did, event.reason)
                elif isinstance(event, Info):
                    self._info(event)
        finally:
            self._fed_seq = self.filter.seq
            self._events_since_save += len(frames)
            self._note_lag()
        if self.filter.error is not None:
            raise self.filter.error

    def _note_lag(self) -> None:
        stamp = self.filter.time
        if not stamp:
            return
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            self.metrics.lag_seconds = max(0.0, (datetime.now(UTC) - moment).total_seconds())

    def _info(self, info: Info) -> None:
        if info.name == "OutdatedCursor":
            log.warning(
                "%s: cursor older than the stream keeps (%s); events were missed: re-reading known repos",
                self.source,
                info.message,
            )
            self._fetch_all_known("outdated_cursor")
        else:
            log.info("%s says %s: %s", self.source, info.name, info.message)

    async def _future_cursor(self) -> None:
        log.error(
            "%s says cursor %s is in the future (its sequence was reset, or it is another server): "
            "resuming with live events and re-reading every known repo",
            self.source,
            self.resume_cursor(),
        )
        with contextlib.suppress(Exception):
            await self._settle()
        self._pending.clear()
        self._fed_seq = self._committed_seq = self._saved_seq = self._stored_cursor = None
        self.filter.seq = None
        self._cursor_loaded = False  # the configured start cursor would be as wrong
        await self._run_write(lambda: self._forget_cursor())
        self._fetch_all_known("future_cursor")

    def _forget_cursor(self) -> None:
        index_store.apply_events(self.engine, [], also=lambda s: cursor_store.save(s, self.source, None))

    # ------------------------------------------------------------ writes

    async def _maybe_flush(self) -> None:
        opts = self.options
        now = time.monotonic()
        cursor_due = self._fed_seq is not None and self._fed_seq != self._saved_seq
        cursor_due = cursor_due and (
            self._events_since_save >= opts.cursor_every_events
            or now - self._last_save >= opts.cursor_every_seconds
        )
        events_due = bool(self._pending) and (
            now - self._last_flush >= opts.flush_seconds or len(self._pending) >= opts.max_batch
        )
        if not (cursor_due or events_due):
            return
        if self._inflight is not None and not self._inflight.done() and len(self._pending) < opts.max_pending:
            return  # the batch in flight will be followed by this one
        await self._settle()
        self._start_flush(save_cursor=cursor_due)

    async def _flush(self, *, save_cursor: bool) -> None:
        """Write everything decoded so far (and the cursor), and wait for it."""
        await self._settle()
        if self._pending or (save_cursor and self._fed_seq is not None and self._fed_seq != self._saved_seq):
            self._start_flush(save_cursor=save_cursor)
            await self._settle()

    async def _settle(self) -> None:
        task, self._inflight = self._inflight, None
        if task is not None:
            await task

    def _start_flush(self, *, save_cursor: bool) -> None:
        batch, self._pending = self._pending, []
        seq = self._fed_seq
        now = time.monotonic()
        self._last_flush = now
        if save_cursor:
            self._events_since_save = 0
            self._last_save = now
        frames = self.filter.frames
        self.metrics.frames(self.filter.counts, frames)
        self.filter.counts.clear()
        self.filter.frames = 0
        self._inflight = asyncio.create_task(
            self._write(batch, seq, save_cursor and seq is not None, frames=frames)
        )

    async def _write(
        self, batch: list[Event], seq: int | None, save_cursor: bool, *, frames: int = 0
    ) -> None:
        def cursor(session: object) -> None:
            cursor_store.save(session, self.source, seq)  # type: ignore[arg-type]

        # One span per batch (every flush_seconds at most), never per event: the hot path stays cheap.
        with _tracer.start_as_current_span(
            "firehose batch",
            kind=SpanKind.CONSUMER,
            attributes={
                "huddle.firehose.frames": frames,
                "huddle.firehose.events": len(batch),
                "huddle.firehose.seq": seq if seq is not None else -1,
                "huddle.firehose.cursor_saved": save_cursor,
            },
        ) as span:
            outcome = await self._run_write(
                lambda: index_store.apply_events(self.engine, batch, also=cursor if save_cursor else None)
            )
            if outcome is not None:
                span.set_attribute("huddle.firehose.writes", sum(outcome.counts.values()))
                span.set_attribute("huddle.firehose.rejected", sum(outcome.rejected_reasons.values()))
                span.set_attribute("huddle.firehose.repos_to_read", len(outcome.resync))
        if seq is not None:
            self._committed_seq = seq
        if save_cursor:
            self._saved_seq = seq
            self.metrics.cursor = seq if seq is not None else -1
        self._after_write(outcome)

    async def _run_write(self, write: Callable[[], WriteOutcome | None]) -> WriteOutcome | None:
        return await asyncio.to_thread(write)

    def _after_write(self, outcome: WriteOutcome | None) -> None:
        if outcome is None:
            return
        self.metrics.writes(outcome.counts)
        if outcome.stale:
            self.metrics.writes({"stale_commit": outcome.stale})
        if outcome.rejected_reasons:
            self.metrics.rejected(outcome.rejected_reasons)
        for rejection in outcome.rejected:
            log.warning(
                "refused %s (cid %s): %s at %r: %s",
                rejection.uri,
                rejection.cid,
                rejection.reason,
                rejection.path,
                rejection.message,
            )
        for did, reason in outcome.resync.items():
            if reason == "new":
                self._local_known.add(did)
                self._add_known(did)
            self._enqueue(did, reason)

    def _add_known(self, did: str) -> None:
        self.filter.known.add(did)

    # ------------------------------------------------------------ repo fetches

    def _enqueue(self, did: str, reason: str) -> None:
        if self.refresher is None or did in self._queued:
            return
        self._queued.add(did)
        self._fetch_queue.put_nowait((did, reason))
        self.metrics.resync(reason)

    def _fetch_all_known(self, reason: str) -> None:
        for did in sorted(self.filter.known):
            self._enqueue(did, reason)

    async def _fetcher(self) -> None:
        assert self.refresher is not None
        refresher = self.refresher
        while True:
            did, reason = await self._fetch_queue.get()
            self._queued.discard(did)  # a request arriving while it is fetched queues a new read
            self._fetching += 1
            try:
                loop = asyncio.get_running_loop()
                outcome = await loop.run_in_executor(
                    self._fetch_pool, _traced_refresh, refresher, did, reason
                )
                self._after_write(outcome)
                log.debug("re-read %s (%s)", did, reason)
            except RepoUnavailable as exc:
                log.warning("could not re-read %s (%s): %s", did, reason, exc)
            except Exception:
                log.exception("re-reading %s (%s) failed", did, reason)
            finally:
                self._fetching -= 1

    def idle(self) -> bool:
        """No decoded event waiting, no write in flight, no repo fetch queued or running (for tests)."""
        return (
            not self._pending
            and (self._inflight is None or self._inflight.done())
            and self._fetch_queue.empty()
            and self._fetching == 0
        )

    # ------------------------------------------------------------ periodic helpers

    async def _every(self, seconds: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception:
                log.exception("firehose periodic job %s failed", getattr(job, "__name__", job))

    async def _heartbeat(self) -> None:
        if self.connected.is_set():
            await asyncio.to_thread(cursor_store.heartbeat, self.engine, self.source, connected=True)

    async def _refresh_known(self, retry_after: timedelta = _RETRY_FAILED_FETCH) -> None:
        """Reload who Huddle knows; a newcomer whose repo was never read gets read (failed reads are
        retried by drift repair, which also covers repos in error)."""
        known = await asyncio.to_thread(index_store.known_dids, self.engine)
        # What this process learned and the index now has, the next reload brings back anyway.
        self._local_known -= known
        self.filter.learned -= known
        self.filter.known = known | self._local_known | self.filter.learned
        newcomers = known - self._checked
        self._checked |= newcomers
        if self.refresher is not None and newcomers:
            missing = await asyncio.to_thread(index_store.repos_to_fetch, self.engine, newcomers, retry_after)
            for did in missing:
                self._enqueue(did, "backfill")

    async def _log_stats(self) -> None:
        log.info("firehose %s: %s", self.source, self.metrics.summary())


def _traced_refresh(refresher: RepoRefresher, did: str, reason: str) -> SnapshotOutcome:
    """A repo read on a fetch thread, as one span: its PDS calls become its children."""
    with _tracer.start_as_current_span("firehose repo read", attributes={"huddle.firehose.reason": reason}):
        return refresher.refresh(did)
