"""Test peers for identity: did:web hosts on 127.0.0.1 with keys we hold, and a tiny protected app."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any

import httpx
from atproto_crypto.consts import P256_CURVE_ORDER, SECP256K1_CURVE_ORDER
from atproto_crypto.did import format_multikey
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fastapi import Depends, FastAPI, Request
from sqlalchemy import Engine

from api.auth import (
    Caller,
    CallerIdentity,
    OptionalCaller,
    ServiceAuth,
    XrpcError,
    caller_for,
    xrpc_error_handler,
)
from api.ratelimit import BucketPolicy, RateLimited, RateLimiter
from api.routes import well_known
from api.state import AppState
from clients.identity import IdentityResolver, ServiceAuthVerifier, StoredReplayGuard
from models.settings import Settings

SERVICE_DID = "did:web:api.huddle.test"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TestKey:
    """A signing key we hold: secp256k1 (ES256K) or P-256 (ES256)."""

    __test__ = False  # not a test class, whatever its name says

    alg: str = "ES256K"
    private: ec.EllipticCurvePrivateKey = field(init=False)

    def __post_init__(self) -> None:
        curve = ec.SECP256K1() if self.alg == "ES256K" else ec.SECP256R1()
        self.private = ec.generate_private_key(curve)

    @property
    def multikey(self) -> str:
        raw = self.private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return format_multikey(self.alg, raw)

    def sign_jwt(self, payload: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        head = header or {"typ": "JWT", "alg": self.alg}
        signing_input = f"{b64url(json.dumps(head).encode())}.{b64url(json.dumps(payload).encode())}"
        r, s = decode_dss_signature(self.private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        order = SECP256K1_CURVE_ORDER if self.alg == "ES256K" else P256_CURVE_ORDER
        if s > order // 2:
            s = order - s
        return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def did_document(did: str, key: TestKey | None, handle: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"@context": ["https://www.w3.org/ns/did/v1"], "id": did}
    if handle:
        doc["alsoKnownAs"] = [f"at://{handle}"]
    if key is not None:
        doc["verificationMethod"] = [
            {
                "id": f"{did}#atproto",
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": key.multikey,
            }
        ]
    return doc


class DidWebHost:
    """`did:web:localhost%3A<port>`: an HTTP server on 127.0.0.1 serving one DID document we control."""

    def __init__(self, key: TestKey | None = None) -> None:
        self.key = key or TestKey()
        self.hits = 0
        self.status = 200
        self.handle_dids: dict[str, str] = {}  # for /xrpc/com.atproto.identity.resolveHandle
        self.plc_docs: dict[str, dict[str, Any]] = {}  # for /<did:plc:…>, a PLC-shaped endpoint
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/did.json":
                    host.hits += 1
                    body, status = json.dumps(host.document).encode(), host.status
                elif self.path.startswith("/did:plc:"):
                    host.hits += 1
                    doc = host.plc_docs.get(self.path[1:])
                    body = json.dumps(doc or {"message": "DID not registered"}).encode()
                    status = host.status if doc else 404
                elif self.path.startswith("/xrpc/com.atproto.identity.resolveHandle?handle="):
                    did = host.handle_dids.get(self.path.split("=", 1)[1])
                    status = 200 if did else 400
                    body = json.dumps({"did": did} if did else {"error": "HandleNotFound"}).encode()
                else:
                    body, status = b"{}", 404
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.did = f"did:web:localhost%3A{self.port}"
        self.url = f"http://127.0.0.1:{self.port}"
        self.document: dict[str, Any] = did_document(self.did, self.key)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def rotate(self, key: TestKey | None = None) -> TestKey:
        self.key = key or TestKey()
        self.document = did_document(self.did, self.key)
        return self.key

    def token(
        self, lxm: str | None, *, aud: str = SERVICE_DID, key: TestKey | None = None, **claims: Any
    ) -> str:
        """A service-auth JWT from this identity (signed with its current key unless `key`)."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iat": now,
            "iss": self.did,
            "aud": aud,
            "exp": now + 60,
            "lxm": lxm,
            "jti": secrets.token_hex(16),
        }
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return (key or self.key).sign_jwt(payload)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def make_identity(plc_url: str, **kwargs: Any) -> IdentityResolver:
    kwargs.setdefault("dev_mode", True)
    return IdentityResolver(plc_url=plc_url, **kwargs)


async def _json_input(request: Request, caller: Caller) -> Any:
    """A procedure body read only after the caller is authenticated (the pattern routes should use)."""
    try:
        return await request.json()
    except ValueError as exc:
        raise XrpcError(400, "InvalidRequest", "body is not JSON") from exc


def build_app(
    settings: Settings,
    engine: Engine,
    identity: IdentityResolver,
    *,
    limiter: RateLimiter | None = None,
    verifier: ServiceAuthVerifier | None = None,
) -> FastAPI:
    """A tiny app wired the way create_app should be, with one route per dependency style."""
    app = FastAPI()
    app.add_exception_handler(XrpcError, xrpc_error_handler)
    app.state.huddle = AppState(settings=settings, engine=engine, temporal=None)  # type: ignore[arg-type]
    app.state.service_auth = ServiceAuth(
        identity=identity,
        verifier=verifier
        or ServiceAuthVerifier(
            identity, service_did=settings.service_did, replay_guard=StoredReplayGuard(engine)
        ),
    )
    app.state.rate_limiter = limiter or RateLimiter(
        engine, per_caller=BucketPolicy(1000, 100.0), per_ip=BucketPolicy(1000, 100.0)
    )
    app.include_router(well_known.router)

    @app.get("/xrpc/com.huddle.getBooking")
    async def get_booking(caller: Caller) -> dict[str, str]:
        return {"did": caller.did, "via": caller.via}

    @app.get("/xrpc/com.huddle.listOffers")
    async def list_offers(caller: OptionalCaller) -> dict[str, str | None]:
        return {"did": caller.did if caller else None}

    @app.post("/xrpc/com.huddle.match", dependencies=[RateLimited])
    async def match(caller: Caller, body: Any = Depends(_json_input)) -> dict[str, Any]:
        return {"did": caller.did, "body": body}

    @app.post("/hooks/cancel")
    async def cancel(
        caller: Annotated[CallerIdentity, Depends(caller_for("com.huddle.cancel"))],
    ) -> dict[str, str]:
        return {"did": caller.did}

    return app


@asynccontextmanager
async def client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://huddle.test") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
