"""Running an ASGI app as a real local HTTP(S) server in a thread, and injecting faults into it."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """uvicorn serving `app` on 127.0.0.1 in a daemon thread (TLS when given a cert and key)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        port: int | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
    ) -> None:
        self.port = port or free_port()
        scheme = "https" if certfile else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True, name=f"server-{self.port}")

    def start(self, timeout: float = 30.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@dataclass
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def make_tls(directory: Path) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost, signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Huddle test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


@dataclass
class Fault:
    """What to do to matching requests, `times` times (None: until cleared).

    `status` answers with that status (and `headers`, `body`) instead of serving the request;
    `lose_response` serves it, then holds the answer for that many seconds, so the client times
    out although the work was done (a response lost on the way back).
    """

    method: str
    path: str  # a regular expression, searched in the path
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    lose_response: float | None = None
    times: int | None = 1
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method)) and re.search(self.path, path) is not None


class Faults:
    """Faults to inject, shared between the test thread and the server thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.log: list[tuple[str, str, int, float]] = []  # (method, path, status, monotonic time)

    def add(self, method: str, path: str, **kwargs: Any) -> Fault:
        fault = Fault(method=method, path=path, **kwargs)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.log.clear()

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path) and (fault.times is None or fault.hits < fault.times):
                    fault.hits += 1
                    return fault
        return None

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for m, p, _, _ in self.log if m == method and re.search(path, p))

    def served(self, method: str, path: str) -> list[tuple[int, float]]:
        """(status, time) of the requests matching, in order."""
        with self._lock:
            return [(s, t) for m, p, s, t in self.log if m == method and re.search(path, p)]

    def record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.log.append((method, path, status, time.monotonic()))


class FaultMiddleware:
    """Applies `Faults` around an app; `error_body(status)` shapes the provider's error JSON."""

    def __init__(self, app: ASGIApp, faults: Faults, error_body: Callable[[int], Any]) -> None:
        self.app = app
        self.faults = faults
        self.error_body = error_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        method, path = request.method, request.url.path
        fault = self.faults.take(method, path)
        if fault is not None and fault.status is not None:
            body = fault.body if fault.body is not None else self.error_body(fault.status)
            response: Response = (
                JSONResponse(body, status_code=fault.status, headers=fault.headers)
                if not isinstance(body, str | bytes)
                else Response(body, status_code=fault.status, headers=fault.headers)
            )
            self.faults.record(method, path, fault.status)
            await response(scope, receive, send)
            return

        async def record_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                # Logged before the client can see the answer, so a test reading the log never lags.
                self.faults.record(method, path, message["status"])
                if fault is not None and fault.lose_response:
                    # The work is done; the answer is held back until the client has given up.
                    await asyncio.sleep(fault.lose_response)
            await send(message)

        await self.app(scope, receive, record_send)
