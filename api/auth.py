"""Who is calling: ATProto service-auth on XRPC requests, as FastAPI dependencies, and XRPC errors.

Wiring (in create_app and its lifespan):

    app.add_exception_handler(XrpcError, xrpc_error_handler)
    app.state.service_auth = ServiceAuth.from_settings(cfg, engine)   # lifespan start
    await app.state.service_auth.aclose()                              # lifespan end

Routes ask for `Caller` (the NSID is read from the `/xrpc/<nsid>` path) or
`Annotated[CallerIdentity, Depends(caller_for("com.huddle.match"))]`. Whatever depends on the
caller runs after it; the verification runs once per request even if several dependencies ask.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from starlette.responses import Response

from api.sessions import CSRF_HEADER, csrf_ok, has_session_cookie, session_did
from clients.identity import (
    IdentityResolver,
    IdentityUnavailable,
    ServiceAuthError,
    ServiceAuthVerifier,
    StoredReplayGuard,
)
from models.settings import Settings

_NSID_RE = re.compile(
    r"[a-zA-Z][a-zA-Z0-9-]{0,62}(\.[a-zA-Z0-9][a-zA-Z0-9-]{0,62})+\.[a-zA-Z][a-zA-Z0-9]{0,62}"
)
_CALLER_STATE = "huddle_caller"


class XrpcError(Exception):
    """An XRPC error answer: `status`, and a body `{"error": error, "message": message}`."""

    def __init__(self, status: int, error: str, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(f"{status} {error}: {message}")
        self.status = status
        self.error = error
        self.message = message
        self.headers = dict(headers or {})


async def xrpc_error_handler(request: Request, exc: Exception) -> Response:
    """Render an XrpcError; register with `app.add_exception_handler(XrpcError, xrpc_error_handler)`."""
    if not isinstance(exc, XrpcError):  # registered for XrpcError only; this keeps the signature general
        raise exc
    return JSONResponse({"error": exc.error, "message": exc.message}, exc.status, headers=exc.headers)


@dataclass(frozen=True)
class CallerIdentity:
    """An authenticated caller: a DID, and how it proved it (a service-auth token or a web session cookie)."""

    did: str
    via: Literal["service-auth", "session"]


@dataclass
class ServiceAuth:
    """What the API process holds for identity: the resolver (with its caches) and the verifier."""

    identity: IdentityResolver
    verifier: ServiceAuthVerifier

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> ServiceAuth:
        urls = settings.handle_resolver_urls
        identity = IdentityResolver(
            plc_url=settings.plc_url,
            dev_mode=settings.dev_mode,
            handle_resolver_urls=[u.strip() for u in urls.split(",") if u.strip()],
            cache_ttl=settings.identity_cache_ttl_seconds,
            cache_max_entries=settings.identity_cache_max_entries,
            refresh_cooldown=settings.identity_refresh_cooldown_seconds,
        )
        replay = StoredReplayGuard(engine) if settings.service_auth_replay_check else None
        verifier = ServiceAuthVerifier(
            identity,
            service_did=settings.service_did,
            replay_guard=replay,
            leeway=settings.service_auth_leeway_seconds,
        )
        return cls(identity=identity, verifier=verifier)

    async def aclose(self) -> None:
        await self.identity.aclose()


def get_service_auth(request: Request) -> ServiceAuth:
    found = getattr(request.app.state, "service_auth", None)
    if not isinstance(found, ServiceAuth):
        raise RuntimeError(
            "app.state.service_auth is not set: create_app's lifespan must install ServiceAuth"
        )
    return found


def get_identity(request: Request) -> IdentityResolver:
    return get_service_auth(request).identity


Identity = Annotated[IdentityResolver, Depends(get_identity)]


def nsid_from_path(path: str) -> str | None:
    """`com.huddle.match` for `/xrpc/com.huddle.match` (also under a mount prefix); None otherwise."""
    _, sep, rest = path.rpartition("/xrpc/")
    nsid = rest.split("/", 1)[0]
    return nsid if sep and len(nsid) <= 317 and _NSID_RE.fullmatch(nsid) else None


def _unauthorized(error: str, message: str) -> XrpcError:
    return XrpcError(401, error, message, headers={"WWW-Authenticate": "Bearer"})


def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if header is None:
        raise _unauthorized("AuthMissing", "Authentication Required")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise _unauthorized("InvalidToken", "Unexpected authorization type")
    token = token.strip()
    if not token:
        raise _unauthorized("MissingJwt", "missing jwt")
    return token


async def authenticate(request: Request, nsid: str) -> CallerIdentity:
    """The caller of `nsid`, from its service-auth token; XrpcError 401 (502 if the PLC is down)."""
    cached = getattr(request.state, _CALLER_STATE, None)
    if cached is not None and cached[0] == nsid:
        caller: CallerIdentity = cached[1]
        return caller
    if "authorization" not in request.headers:
        session_caller = await _session_caller(request)
        if session_caller is not None:
            setattr(request.state, _CALLER_STATE, (nsid, session_caller))
            return session_caller
    token = _bearer_token(request)
    try:
        claims = await get_service_auth(request).verifier.verify(token, nsid)
    except ServiceAuthError as exc:
        raise _unauthorized(exc.name, exc.message) from exc
    except IdentityUnavailable as exc:
        raise XrpcError(502, "UpstreamFailure", f"could not resolve the caller's identity: {exc}") from exc
    caller = CallerIdentity(did=claims.did, via="service-auth")
    setattr(request.state, _CALLER_STATE, (nsid, caller))
    return caller


async def _session_caller(request: Request) -> CallerIdentity | None:
    """A browser signed in to Huddle's web app (its session cookie); writes must carry its CSRF token."""
    if not has_session_cookie(request):
        return None
    did = await run_in_threadpool(session_did, request)
    if did is None:
        return None
    if request.method not in ("GET", "HEAD", "OPTIONS") and not csrf_ok(
        request, request.headers.get(CSRF_HEADER)
    ):
        raise XrpcError(403, "InvalidCsrfToken", f"a signed-in browser must send its {CSRF_HEADER} header")
    return CallerIdentity(did=did, via="session")


async def require_caller(request: Request) -> CallerIdentity:
    """The authenticated caller of the XRPC method named by the request path."""
    nsid = nsid_from_path(request.url.path)
    if nsid is None:
        raise RuntimeError(f"{request.url.path} is not an /xrpc/<nsid> path: use caller_for(nsid)")
    return await authenticate(request, nsid)


async def optional_caller(request: Request) -> CallerIdentity | None:
    """None without a token or session; one that is given must be valid (as the reference PDS does)."""
    if "authorization" not in request.headers and await _session_caller(request) is None:
        return None
    return await require_caller(request)


@functools.cache
def caller_for(nsid: str) -> Callable[[Request], Awaitable[CallerIdentity]]:
    """A dependency authenticating calls of `nsid`, for routes whose path does not name it.

    Memoized: the same NSID gives the same callable, so FastAPI's per-request dependency cache
    (and the jti replay guard) see one verification, not two.
    """
    if _NSID_RE.fullmatch(nsid) is None:
        raise ValueError(f"not an NSID: {nsid!r}")

    async def caller(request: Request) -> CallerIdentity:
        return await authenticate(request, nsid)

    caller.__name__ = f"caller_for_{nsid.replace('.', '_').replace('-', '_')}"
    return caller


Caller = Annotated[CallerIdentity, Depends(require_caller)]
OptionalCaller = Annotated[CallerIdentity | None, Depends(optional_caller)]
