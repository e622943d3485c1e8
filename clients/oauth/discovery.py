"""From what a user types (a handle, a DID or a server URL) to the authorization server to send them to.

handle → DID (verified both ways) → DID document → PDS → its protected-resource metadata → the
authorization server → its metadata. After the login the same chain is walked again from the
token's `sub`, so an authorization server can only ever speak for accounts whose PDS names it.
"""

from __future__ import annotations

import ipaddress
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from clients.identity import IdentityError, IdentityResolver
from clients.identity.did import read_limited
from clients.identity.errors import InvalidDidDocument
from clients.identity.syntax import is_did
from clients.oauth.errors import DiscoveryError

MAX_METADATA_BYTES = 64 * 1024
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "[::1]", "::1"}


@dataclass(frozen=True)
class AuthServer:
    """The parts of an authorization server's metadata a client needs (RFC 8414 + ATProto)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    par_endpoint: str
    revocation_endpoint: str | None
    scopes_supported: tuple[str, ...]
    raw: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class LoginTarget:
    """Where a login goes: the account (when the user named one) and its authorization server."""

    server: AuthServer
    pds_url: str | None
    did: str | None = None
    handle: str | None = None

    @property
    def login_hint(self) -> str | None:
        return self.handle or self.did


def check_server_url(url: str, *, allow_loopback: bool) -> str:
    """A URL Huddle may fetch server metadata from: https on a public name, or http on loopback in dev."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.username or parts.password or parts.fragment or not host:
        raise DiscoveryError(f"not a usable server URL: {url[:200]}")
    loopback = host in _LOOPBACK_NAMES
    if loopback:
        if not allow_loopback:
            raise DiscoveryError(f"{url[:200]}: a loopback server is only allowed in development mode")
        if parts.scheme not in ("http", "https"):
            raise DiscoveryError(f"{url[:200]}: not an http(s) URL")
        return url
    if parts.scheme != "https":
        raise DiscoveryError(f"{url[:200]}: servers must use https")
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return url
    if not address.is_global and not allow_loopback:
        raise DiscoveryError(f"{url[:200]}: not a public address")
    return url


class Discovery:
    """Resolves login targets; authorization-server metadata is cached for `ttl` seconds."""

    def __init__(
        self, http: httpx.AsyncClient, identity: IdentityResolver, *, dev_mode: bool, ttl: float = 600.0
    ) -> None:
        self._http = http
        self._identity = identity
        self._dev = dev_mode
        self._ttl = ttl
        self._servers: dict[str, tuple[float, AuthServer]] = {}

    async def login_target(self, identifier: str) -> LoginTarget:
        """What the user typed: `alice.example.com`, `@alice…`, `did:plc:…`, or `https://pds.example`."""
        value = identifier.strip()
        if not value:
            raise DiscoveryError("enter your handle, for example alice.bsky.social")
        if value.startswith(("https://", "http://")):
            server = await self.server_for_pds(value.rstrip("/"))
            return LoginTarget(server=server, pds_url=value.rstrip("/"))
        try:
            did = await self._identity.resolve_actor(value)
            handle = None if is_did(value) else await self._identity.verified_handle(did)
        except IdentityError as exc:
            raise DiscoveryError(f"we could not find the account {value[:100]!r}: {exc}") from exc
        pds_url = await self.pds_of(did)
        server = await self.server_for_pds(pds_url)
        return LoginTarget(server=server, pds_url=pds_url, did=did, handle=handle)

    async def pds_of(self, did: str, *, force_refresh: bool = False) -> str:
        try:
            doc = await self._identity.resolve_did(did, force_refresh=force_refresh)
        except IdentityError as exc:
            raise DiscoveryError(f"{did}: {exc}") from exc
        if not doc.pds_endpoint:
            raise DiscoveryError(f"{did} names no PDS in its DID document")
        return check_server_url(doc.pds_endpoint.rstrip("/"), allow_loopback=self._dev)

    async def server_for_pds(self, pds_url: str) -> AuthServer:
        """The authorization server a PDS delegates to (its protected-resource metadata)."""
        meta = await self._get_json(f"{pds_url}/.well-known/oauth-protected-resource")
        servers = meta.get("authorization_servers")
        if not isinstance(servers, list) or len(servers) != 1 or not isinstance(servers[0], str):
            raise DiscoveryError(f"{pds_url} does not name exactly one authorization server")
        return await self.auth_server(servers[0].rstrip("/"))

    async def auth_server(self, issuer: str) -> AuthServer:
        cached = self._servers.get(issuer)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        raw = await self._get_json(f"{issuer}/.well-known/oauth-authorization-server")
        server = self._parse_server(issuer, raw)
        self._servers[issuer] = (time.monotonic(), server)
        return server

    async def check_subject(self, did: str, issuer: str) -> str:
        """The PDS of `did`, after checking that it delegates to `issuer` (a fresh DID document)."""
        pds_url = await self.pds_of(did, force_refresh=True)
        server = await self.server_for_pds(pds_url)
        if server.issuer != issuer:
            raise DiscoveryError(f"{did}'s PDS does not use {issuer} as its authorization server")
        return pds_url

    def _parse_server(self, issuer: str, raw: dict[str, Any]) -> AuthServer:
        if raw.get("issuer") != issuer:
            raise DiscoveryError(f"{issuer}: its metadata names another issuer")

        def endpoint(name: str, required: bool = True) -> str | None:
            value = raw.get(name)
            if value is None and not required:
                return None
            if not isinstance(value, str):
                raise DiscoveryError(f"{issuer}: metadata has no {name}")
            return check_server_url(value, allow_loopback=self._dev)

        for name, needed in (
            ("code_challenge_methods_supported", "S256"),
            ("dpop_signing_alg_values_supported", "ES256"),
            ("response_types_supported", "code"),
            ("scopes_supported", "atproto"),
        ):
            values = raw.get(name)
            if not isinstance(values, list) or needed not in values:
                raise DiscoveryError(f"{issuer}: {name} lacks {needed!r}")
        if raw.get("authorization_response_iss_parameter_supported") is not True:
            raise DiscoveryError(f"{issuer}: does not send the iss parameter back")
        authorize = endpoint("authorization_endpoint")
        token = endpoint("token_endpoint")
        par = endpoint("pushed_authorization_request_endpoint")
        assert authorize is not None and token is not None and par is not None
        return AuthServer(
            issuer=issuer,
            authorization_endpoint=authorize,
            token_endpoint=token,
            par_endpoint=par,
            revocation_endpoint=endpoint("revocation_endpoint", required=False),
            scopes_supported=tuple(str(s) for s in raw.get("scopes_supported", ())),
            raw=raw,
        )

    async def _get_json(self, url: str) -> dict[str, Any]:
        check_server_url(url, allow_loopback=self._dev)
        try:
            async with self._http.stream("GET", url, headers={"accept": "application/json"}) as resp:
                if resp.status_code != 200:
                    raise DiscoveryError(f"{url} answered {resp.status_code}")
                body = await read_limited(resp, MAX_METADATA_BYTES)
        except httpx.HTTPError as exc:
            raise DiscoveryError(f"{url} could not be reached ({type(exc).__name__})") from exc
        except InvalidDidDocument as exc:  # read_limited's "too large"
            raise DiscoveryError(f"{url}: response too large") from exc
        try:
            value = json.loads(body)
        except ValueError as exc:
            raise DiscoveryError(f"{url} did not answer JSON") from exc
        if not isinstance(value, dict):
            raise DiscoveryError(f"{url} did not answer a JSON object")
        return value
