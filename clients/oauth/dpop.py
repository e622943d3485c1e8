"""DPoP (RFC 9449) proofs and the servers' nonces.

Each login gets its own key; every request to the authorization server or the PDS carries a fresh
proof signed with it. Servers hand out nonces (`DPoP-Nonce`) and refuse proofs without a current
one (`use_dpop_nonce`); the last nonce of each origin is remembered here so the next request does
not pay a round trip. Remembering is only an optimization: a stale or missing nonce costs one
retry, so separate processes (API replicas) need not share it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from urllib.parse import urlsplit, urlunsplit

from clients.oauth.jwt import SigningKey, random_token, sha256_b64url

NONCE_HEADER = "DPoP-Nonce"


def htu(url: str) -> str:
    """The `htu` claim: the request URL without query or fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def make_proof(
    key: SigningKey,
    method: str,
    url: str,
    *,
    nonce: str | None = None,
    access_token: str | None = None,
    now: float | None = None,
) -> str:
    """A DPoP proof for one request; `access_token` binds it to a token (the `ath` claim)."""
    claims: dict[str, object] = {
        "jti": random_token(16),
        "htm": method.upper(),
        "htu": htu(url),
        "iat": int(now if now is not None else time.time()),
    }
    if nonce is not None:
        claims["nonce"] = nonce
    if access_token is not None:
        claims["ath"] = sha256_b64url(access_token)
    public = SigningKey(key.private).public_jwk()  # the bare public key, no kid
    return key.sign_jwt({"typ": "dpop+jwt", "jwk": public}, claims)


class NonceCache:
    """The last DPoP nonce seen from each origin (bounded, least recently used evicted)."""

    def __init__(self, max_entries: int = 1000) -> None:
        self._nonces: OrderedDict[str, str] = OrderedDict()
        self._max = max_entries

    def get(self, url: str) -> str | None:
        key = origin(url)
        nonce = self._nonces.get(key)
        if nonce is not None:
            self._nonces.move_to_end(key)
        return nonce

    def remember(self, url: str, nonce: str | None) -> None:
        if not nonce:
            return
        key = origin(url)
        self._nonces[key] = nonce
        self._nonces.move_to_end(key)
        while len(self._nonces) > self._max:
            self._nonces.popitem(last=False)
