"""Handle → DID, verified both ways (the DID document must claim the handle back), cached with a TTL."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import dns.asyncresolver
import dns.exception
import httpx

from clients.identity.cache import TtlCache
from clients.identity.did import DidResolver, read_limited
from clients.identity.errors import (
    DidNotFound,
    HandleNotFound,
    IdentityError,
    IdentityUnavailable,
    InvalidDidDocument,
)
from clients.identity.syntax import is_did, normalize_handle

log = logging.getLogger(__name__)

_TXT_PREFIX = "did="


class HandleResolver:
    """Resolves a handle the ways ATProto defines, then through trusted resolvers.

    Order: DNS TXT `_atproto.<handle>`, then `https://<handle>/.well-known/atproto-did`
    (both authoritative: if either names a DID, that DID is the answer or the handle is
    invalid), then `com.atproto.identity.resolveHandle` on each of `resolver_urls` (a PDS or
    AppView Huddle trusts; how `.test` handles of the local PDS resolve, since `.test` is
    never looked up in DNS or over HTTPS). Whatever names the DID, its document must list
    `at://<handle>` in `alsoKnownAs`.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        dids: DidResolver,
        *,
        resolver_urls: Sequence[str] = (),
        allow_test_tld: bool = False,
        ttl: float = 300.0,
        max_entries: int = 10_000,
        lookup_timeout: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._dids = dids
        self._resolver_urls = [u.rstrip("/") for u in resolver_urls if u.strip()]
        self._allow_test_tld = allow_test_tld
        self._lookup_timeout = lookup_timeout
        self._cache: TtlCache[str, str] = TtlCache(ttl, max_entries, clock=clock)
        self._dns: dns.asyncresolver.Resolver | None = None

    async def resolve(self, handle: str) -> str:
        """The DID `handle` belongs to; HandleNotFound if none does (or the link is one-way)."""
        handle = normalize_handle(handle, allow_test_tld=self._allow_test_tld)
        cached = self._cache.get(handle)
        if cached is not None:
            return cached
        did = await self._resolve_uncached(handle)
        self._cache.put(handle, did)
        return did

    def forget(self, handle: str) -> None:
        self._cache.discard(handle.lower())

    async def _resolve_uncached(self, handle: str) -> str:
        if not handle.endswith(".test"):
            for method in (self._from_dns, self._from_well_known):
                did = await method(handle)
                if did is not None:
                    # Authoritative: a DID that does not claim the handle means the handle is invalid.
                    await self._check_claims(handle, did)
                    return did
        unavailable: list[str] = []
        for url in self._resolver_urls:
            try:
                did = await self._from_resolver(url, handle)
            except IdentityUnavailable as exc:
                unavailable.append(str(exc))
                continue
            if did is not None:
                await self._check_claims(handle, did)
                return did
        if unavailable:
            raise IdentityUnavailable(f"{handle}: " + "; ".join(unavailable))
        raise HandleNotFound(f"{handle}: no DID found for this handle")

    async def _check_claims(self, handle: str, did: str) -> None:
        try:
            doc = await self._dids.resolve(did)
            if not doc.claims_handle(handle):
                # Maybe the handle changed since the document was cached.
                doc = await self._dids.resolve(did, force_refresh=True)
        except (DidNotFound, InvalidDidDocument) as exc:
            raise HandleNotFound(f"{handle}: resolves to {did}, which does not resolve: {exc}") from exc
        if not doc.claims_handle(handle):
            raise HandleNotFound(f"{handle}: resolves to {did}, whose DID document does not claim it")

    async def _from_dns(self, handle: str) -> str | None:
        if self._dns is None:
            self._dns = dns.asyncresolver.Resolver()
        try:
            answer = await self._dns.resolve(f"_atproto.{handle}", "TXT", lifetime=self._lookup_timeout)
        except dns.exception.DNSException as exc:
            log.debug("no _atproto TXT for %s: %s", handle, exc)
            return None
        found = {
            value[len(_TXT_PREFIX) :]
            for rdata in answer
            for value in (s.decode("utf-8", "replace") for s in getattr(rdata, "strings", ()))
            if value.startswith(_TXT_PREFIX)
        }
        # Several different DIDs: the spec says the handle does not resolve.
        if len(found) != 1:
            return None
        did = found.pop()
        return did if is_did(did) else None

    async def _from_well_known(self, handle: str) -> str | None:
        url = f"https://{handle}/.well-known/atproto-did"
        try:
            async with self._http.stream("GET", url, timeout=self._lookup_timeout) as resp:
                if resp.status_code != 200:
                    return None
                body = await read_limited(resp, 2048)
        except (httpx.HTTPError, IdentityError) as exc:
            log.debug("no %s: %s", url, exc)
            return None
        lines = body.decode("utf-8", "replace").strip().splitlines()
        did = lines[0].strip() if lines else ""
        return did if is_did(did) else None

    async def _from_resolver(self, base_url: str, handle: str) -> str | None:
        url = f"{base_url}/xrpc/com.atproto.identity.resolveHandle"
        try:
            resp = await self._http.get(url, params={"handle": handle}, timeout=self._lookup_timeout)
        except httpx.HTTPError as exc:
            raise IdentityUnavailable(f"{base_url} unreachable ({type(exc).__name__})") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise IdentityUnavailable(f"{base_url} answered {resp.status_code}")
        if resp.status_code != 200:
            return None  # 400 HandleNotFound / InvalidRequest
        try:
            body: Any = resp.json()
        except ValueError:
            return None
        did = body.get("did") if isinstance(body, dict) else None
        return did if isinstance(did, str) and is_did(did) else None
