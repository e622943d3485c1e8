"""DID documents for did:plc (the configured PLC directory) and did:web, cached with a TTL."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from atproto_core.did_doc import DidDocument as AtprotoDidDocument
from pydantic import ValidationError

from clients.identity.cache import TtlCache
from clients.identity.errors import (
    DidNotFound,
    IdentityError,
    IdentityUnavailable,
    InvalidDidDocument,
)
from clients.identity.syntax import check_did, is_loopback_host, web_host

log = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 64 * 1024
_ACCEPT = "application/did+ld+json, application/json;q=0.9"


@dataclass(frozen=True)
class DidDocument:
    """The parts of a DID document Huddle uses, plus the document as served."""

    did: str
    signing_key: str | None  # the `#atproto` verification method as a `did:key:z…`
    handles: tuple[str, ...]  # from `alsoKnownAs` (`at://<handle>`), lower-cased, in order
    pds_endpoint: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def handle(self) -> str | None:
        """The handle the document claims first (not verified: see HandleResolver)."""
        return self.handles[0] if self.handles else None

    def claims_handle(self, handle: str) -> bool:
        return handle.lower() in self.handles


def parse_did_document(did: str, raw: Any) -> DidDocument:
    """Validate `raw` as the ATProto DID document of `did`; InvalidDidDocument if it is not."""
    if not isinstance(raw, dict):
        raise InvalidDidDocument(f"{did}: the DID document is not a JSON object")
    try:
        doc = AtprotoDidDocument.from_dict(raw)
    except ValidationError as exc:
        raise InvalidDidDocument(f"{did}: malformed DID document ({exc.error_count()} errors)") from exc
    if doc.id != did:
        raise InvalidDidDocument(f"{did}: the document is for {doc.id[:100]!r}")
    try:
        signing_key = doc.get_did_key()
    except Exception as exc:  # a corrupt multibase string: atproto raises several types
        raise InvalidDidDocument(f"{did}: unreadable #atproto verification method") from exc
    handles = tuple(aka[len("at://") :].lower() for aka in doc.also_known_as or () if aka.startswith("at://"))
    return DidDocument(
        did=did,
        signing_key=signing_key,
        handles=handles,
        pds_endpoint=doc.get_pds_endpoint(),
        raw=raw,
    )


async def read_limited(response: httpx.Response, limit: int) -> bytes:
    """The body of a streamed response, refusing bodies over `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise InvalidDidDocument(f"{response.url}: response larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class DidResolver:
    """Resolves did:plc and did:web to DID documents.

    Documents are cached for `ttl` seconds (bounded to `max_entries`, least recently used
    first out). When the PLC directory is unreachable, a cached document up to `max_stale`
    seconds old is served rather than locking every caller out. `force_refresh` (used after a
    signature failure, in case the key rotated) refetches unless the cached copy is younger
    than `refresh_cooldown`, so forged tokens cannot turn Huddle into a PLC hammer.
    Concurrent lookups of one DID share a single request.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        plc_url: str,
        allow_loopback: bool = False,
        ttl: float = 300.0,
        max_stale: float = 3600.0,
        max_entries: int = 10_000,
        refresh_cooldown: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._plc_url = plc_url.rstrip("/")
        self._allow_loopback = allow_loopback
        self._max_stale = max_stale
        self._refresh_cooldown = refresh_cooldown
        self._cache: TtlCache[str, DidDocument] = TtlCache(ttl, max_entries, clock=clock)
        self._inflight: dict[str, asyncio.Future[DidDocument]] = {}

    async def resolve(self, did: str, *, force_refresh: bool = False) -> DidDocument:
        """The DID document of `did`, from the cache while it is fresh."""
        check_did(did)
        entry = self._cache.entry(did)
        age = self._cache.age(entry) if entry is not None else 0.0
        if entry is not None:
            if not force_refresh and age < self._cache.ttl:
                return entry.value
            if force_refresh and age < self._refresh_cooldown:
                return entry.value
        try:
            doc = await self._fetch_shared(did)
        except IdentityUnavailable:
            if entry is not None and not force_refresh and age < self._max_stale:
                log.warning("directory unavailable: serving a %.0f s old DID document for %s", age, did)
                return entry.value
            raise
        except IdentityError:
            self._cache.discard(did)
            raise
        self._cache.put(did, doc)
        return doc

    async def get_signing_key(self, did: str, *, force_refresh: bool = False) -> str:
        """The `#atproto` signing key of `did` as a `did:key:z…` (multikey with the did:key prefix)."""
        doc = await self.resolve(did, force_refresh=force_refresh)
        if doc.signing_key is None:
            raise InvalidDidDocument(f"{did}: no #atproto verification method")
        return doc.signing_key

    def forget(self, did: str) -> None:
        """Drop `did` from the cache (for instance when the firehose says its identity changed)."""
        self._cache.discard(did)

    async def _fetch_shared(self, did: str) -> DidDocument:
        fut = self._inflight.get(did)
        if fut is None:
            fut = asyncio.ensure_future(self._fetch(did))
            self._inflight[did] = fut
            fut.add_done_callback(lambda _: self._inflight.pop(did, None))
        # Shielded: one caller giving up (a client disconnect) must not cancel the others' lookup.
        return await asyncio.shield(fut)

    def _document_url(self, did: str) -> str:
        if did.startswith("did:plc:"):
            return f"{self._plc_url}/{did}"
        host = web_host(did, allow_loopback=self._allow_loopback)
        scheme = "http" if is_loopback_host(host) else "https"
        return f"{scheme}://{host}/.well-known/did.json"

    async def _fetch(self, did: str) -> DidDocument:
        url = self._document_url(did)
        is_plc = did.startswith("did:plc:")
        try:
            async with self._http.stream("GET", url, headers={"accept": _ACCEPT}) as resp:
                status = resp.status_code
                body = await read_limited(resp, MAX_DOCUMENT_BYTES) if status == 200 else b""
        except httpx.HTTPError as exc:
            # The PLC directory is Huddle's own dependency: its outage is ours, not the caller's
            # fault. A did:web host that cannot be reached is the identity's problem.
            if is_plc:
                raise IdentityUnavailable(f"{did}: PLC directory unreachable ({type(exc).__name__})") from exc
            raise DidNotFound(f"{did}: {url} unreachable ({type(exc).__name__})") from exc
        if status in (404, 410):
            raise DidNotFound(f"{did}: not found ({status} from {'the PLC directory' if is_plc else url})")
        if status == 429 or status >= 500:
            if is_plc:
                raise IdentityUnavailable(f"{did}: PLC directory answered {status}")
            raise DidNotFound(f"{did}: {url} answered {status}")
        if status != 200:
            raise DidNotFound(f"{did}: {url} answered {status}")
        try:
            raw = json.loads(body)
        except ValueError as exc:
            raise InvalidDidDocument(f"{did}: the DID document is not JSON") from exc
        return parse_did_document(did, raw)
