"""One object for everything identity: DIDs, handles, signing keys, over one HTTP connection pool."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self

import httpx

from clients.calltrace import AsyncTracedTransport
from clients.identity.did import DidDocument, DidResolver
from clients.identity.errors import HandleNotFound, InvalidIdentifier
from clients.identity.handle import HandleResolver
from clients.identity.syntax import check_did, normalize_handle


class IdentityResolver:
    """DID documents (did:plc via `plc_url`, did:web), handles and actors, cached with a TTL.

    `dev_mode` allows `http://` did:web documents on localhost/127.0.0.1 and `.test` handles.
    Pass `http` to share a client (it is then not closed by `aclose`).
    """

    def __init__(
        self,
        *,
        plc_url: str,
        dev_mode: bool = False,
        handle_resolver_urls: Sequence[str] = (),
        cache_ttl: float = 300.0,
        cache_max_entries: int = 10_000,
        refresh_cooldown: float = 5.0,
        timeout: float = 5.0,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._owns_http = http is None
        self.http = http or httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            headers={"user-agent": "huddle-appview"},
            transport=AsyncTracedTransport(
                "identity",
                httpx.AsyncHTTPTransport(
                    limits=httpx.Limits(max_connections=50, max_keepalive_connections=20)
                ),
            ),
        )
        self.dids = DidResolver(
            self.http,
            plc_url=plc_url,
            allow_loopback=dev_mode,
            ttl=cache_ttl,
            max_entries=cache_max_entries,
            refresh_cooldown=refresh_cooldown,
            clock=clock,
        )
        self.handles = HandleResolver(
            self.http,
            self.dids,
            resolver_urls=handle_resolver_urls,
            allow_test_tld=dev_mode,
            ttl=cache_ttl,
            max_entries=cache_max_entries,
            clock=clock,
        )
        self._dev_mode = dev_mode

    async def resolve_did(self, did: str, *, force_refresh: bool = False) -> DidDocument:
        return await self.dids.resolve(did, force_refresh=force_refresh)

    async def get_signing_key(self, did: str, *, force_refresh: bool = False) -> str:
        """The `#atproto` key of `did` as `did:key:z…`."""
        return await self.dids.get_signing_key(did, force_refresh=force_refresh)

    async def resolve_handle(self, handle: str) -> str:
        """The DID of `handle`, verified both ways."""
        return await self.handles.resolve(handle)

    async def resolve_actor(self, did_or_handle: str) -> str:
        """A DID for an input that may be a DID or a handle (`@alice.test`, `at://alice.test` too).

        A DID is checked for syntax and supported method only (no network): whether it exists
        is for the caller to find out when it matters.
        """
        value = did_or_handle.strip()
        if value.startswith("did:"):
            return check_did(value)
        return await self.resolve_handle(value)

    async def verified_handle(self, did: str) -> str | None:
        """The handle `did` claims, if that handle resolves back to `did`; None otherwise.

        IdentityUnavailable still propagates: "no handle" and "could not check" differ.
        """
        doc = await self.dids.resolve(did)
        if doc.handle is None:
            return None
        try:
            handle = normalize_handle(doc.handle, allow_test_tld=self._dev_mode)
            resolved = await self.handles.resolve(handle)
        except (HandleNotFound, InvalidIdentifier):
            return None
        return handle if resolved == did else None

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
