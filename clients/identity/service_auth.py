"""ATProto service-auth JWTs (`iss` = caller DID, `aud` = Huddle, `lxm` = method), verified.

Error names follow the reference implementation (`@atproto/xrpc-server` `verifyJwt` and the
PDS/AppView auth verifiers) where it has one; `JwtReplayed` is Huddle's own.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from atproto_crypto.did import parse_did_key
from atproto_crypto.verify import verify_signature
from atproto_server.auth.jwt import decode_jwt_payload, parse_jwt
from atproto_server.exceptions import TokenDecodeError

from clients.identity.errors import DidNotFound, InvalidDidDocument, InvalidIdentifier
from clients.identity.syntax import check_did

log = logging.getLogger(__name__)

MAX_TOKEN_LENGTH = 8192
MAX_LEEWAY_SECONDS = 10
# getServiceAuth refuses to mint tokens living longer than an hour; neither do we accept them.
MAX_LIFETIME_SECONDS = 3600
_REFUSED_TYPES = frozenset({"at+jwt", "refresh+jwt", "dpop+jwt"})


class ServiceAuthError(Exception):
    """The token is not acceptable; `name` is the XRPC error name (always answered with 401)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


class ReplayGuard(Protocol):
    """Remembers (issuer, jti) pairs until they expire; shared by every API replica."""

    async def claim(self, iss: str, jti: str, expires_at: float) -> bool:
        """True the first time the pair is seen before `expires_at` (epoch seconds); False for a replay."""
        ...


class SigningKeys(Protocol):
    async def get_signing_key(self, did: str, *, force_refresh: bool = False) -> str: ...


@dataclass(frozen=True)
class ServiceAuthClaims:
    """What a verified token says."""

    did: str  # the issuer DID, without any `#service` fragment
    iss: str  # as written in the token
    aud: str
    lxm: str
    exp: int
    iat: int | None
    jti: str | None


@functools.lru_cache(maxsize=4096)
def _key_alg(did_key: str) -> str:
    return parse_did_key(did_key).jwt_alg


def _signature_ok(did_key: str, alg: str, signing_input: bytes, signature: bytes) -> bool:
    try:
        if _key_alg(did_key) != alg:
            return False
        return verify_signature(did_key, signing_input, signature)
    except Exception:  # an unreadable key or signature: atproto raises several types
        return False


def _int_claim(payload: dict[str, Any], name: str, *, required: bool) -> int | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    # bool is an int in Python; JSON `true` is not a time.
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ServiceAuthError("BadJwt", f"poorly formatted jwt: {name} must be a number")
    return int(value)


def _str_claim(payload: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ServiceAuthError("BadJwt", f"poorly formatted jwt: {name} must be a string")
    return value


class ServiceAuthVerifier:
    """Checks a service-auth JWT for `service_did` and one method, in the reference order.

    Shape, type, `exp` (with `leeway`, at most 10 s), `iat` not in the future, lifetime at most
    an hour, `aud`, `lxm`, `iss`, then the signature against the issuer's `#atproto` key
    (refetching the DID document once if it fails: the key may have rotated), then the `jti`
    against replays. Everything before the signature is free of I/O; with a warm DID cache the
    only I/O is the `jti` claim.
    """

    def __init__(
        self,
        keys: SigningKeys,
        *,
        service_did: str,
        replay_guard: ReplayGuard | None,
        leeway: int = MAX_LEEWAY_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 <= leeway <= MAX_LEEWAY_SECONDS:
            raise ValueError(f"leeway must be 0-{MAX_LEEWAY_SECONDS} s")
        self._keys = keys
        self.service_did = service_did
        self._replay_guard = replay_guard
        self._leeway = leeway
        self._clock = clock

    async def verify(self, token: str, lxm: str) -> ServiceAuthClaims:
        """The token's claims if it is valid for calling `lxm` on this service; ServiceAuthError if not.

        IdentityUnavailable propagates when the issuer's DID document cannot be fetched for a
        reason on Huddle's side (the PLC directory is down).
        """
        if len(token) > MAX_TOKEN_LENGTH:
            raise ServiceAuthError("BadJwt", "poorly formatted jwt: too long")
        try:
            raw_payload, signing_input, header, signature = parse_jwt(token)
            payload = decode_jwt_payload(raw_payload).model_dump(exclude_none=True)
        except TokenDecodeError as exc:
            raise ServiceAuthError("BadJwt", "poorly formatted jwt") from exc
        alg = header.get("alg")
        if not isinstance(alg, str):
            raise ServiceAuthError("BadJwt", "poorly formatted jwt: no alg")
        if header.get("typ") in _REFUSED_TYPES:
            raise ServiceAuthError("BadJwtType", f'Invalid jwt type "{header["typ"]}"')

        iss = _str_claim(payload, "iss", required=True)
        aud = _str_claim(payload, "aud", required=True)
        exp = _int_claim(payload, "exp", required=True)
        iat = _int_claim(payload, "iat", required=False)
        token_lxm = _str_claim(payload, "lxm", required=False)
        jti = _str_claim(payload, "jti", required=False)
        assert iss is not None and aud is not None and exp is not None

        now = self._clock()
        if now > exp + self._leeway:
            raise ServiceAuthError("JwtExpired", "jwt expired")
        if iat is not None and iat > now + self._leeway:
            raise ServiceAuthError("BadJwt", "jwt issued in the future (iat)")
        if exp - now > MAX_LIFETIME_SECONDS + self._leeway:
            raise ServiceAuthError("BadJwt", f"jwt expires more than {MAX_LIFETIME_SECONDS} s ahead")
        if aud != self.service_did:
            raise ServiceAuthError("BadJwtAudience", "jwt audience does not match service did")
        if token_lxm != lxm:
            which = "bad" if token_lxm is not None else "missing"
            raise ServiceAuthError(
                "BadJwtLexiconMethod", f'{which} jwt lexicon method ("lxm"). must match: {lxm}'
            )
        did = self._issuer_did(iss)

        key = await self._signing_key(did, force_refresh=False)
        if not _signature_ok(key, alg, signing_input, signature):
            fresh = await self._signing_key(did, force_refresh=True)
            if fresh == key or not _signature_ok(fresh, alg, signing_input, signature):
                raise ServiceAuthError("BadJwtSignature", "jwt signature does not match jwt issuer")

        # Only now: a forged token must not be able to burn someone else's jti.
        if jti is not None and self._replay_guard is not None:
            if len(jti) > 256:
                raise ServiceAuthError("BadJwt", "poorly formatted jwt: jti too long")
            if not await self._replay_guard.claim(did, jti, float(exp + self._leeway)):
                raise ServiceAuthError("JwtReplayed", "jwt already used (jti seen before)")
        return ServiceAuthClaims(did=did, iss=iss, aud=aud, lxm=lxm, exp=exp, iat=iat, jti=jti)

    @staticmethod
    def _issuer_did(iss: str) -> str:
        did, sep, fragment = iss.partition("#")
        if sep and (not fragment or "#" in fragment):
            raise ServiceAuthError("BadJwtIss", "jwt iss is not a valid did")
        try:
            return check_did(did)
        except InvalidIdentifier as exc:
            raise ServiceAuthError("BadJwtIss", "jwt iss is not a valid did") from exc

    async def _signing_key(self, did: str, *, force_refresh: bool) -> str:
        try:
            return await self._keys.get_signing_key(did, force_refresh=force_refresh)
        except DidNotFound as exc:
            raise ServiceAuthError("AuthenticationRequired", f"could not resolve iss did: {exc}") from exc
        except (InvalidDidDocument, InvalidIdentifier) as exc:
            raise ServiceAuthError("AuthenticationRequired", f"missing or bad key in did doc: {exc}") from exc
