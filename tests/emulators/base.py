"""What the Google and Graph emulators share: a lock, faults with the request log, a real server, pushes.

A subclass names its routes and its provider's error body, and says how one queued push notification
is delivered (`_deliver`); this class serves the routes behind the fault middleware, runs the thread
that delivers pushes in order, and keeps what each delivery got back in `deliveries`.
"""

from __future__ import annotations

import base64
import hashlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import BaseRoute

from tests.emulators.server import FaultMiddleware, Faults, ServerThread, TlsFiles

Push = TypeVar("Push")


class ProviderEmulator(Generic[Push]):
    def __init__(self, *, push_thread: str) -> None:
        self.lock = threading.RLock()
        self.faults = Faults()  # failures to inject, and the log of every request served
        self.deliveries: list[dict[str, Any]] = []  # pushes sent to Huddle, with what it answered
        self._outbox: queue.Queue[Push | None] = queue.Queue()
        self._deliverer = threading.Thread(target=self._deliver_loop, daemon=True, name=push_thread)
        self.server: ServerThread | None = None

    def _serve(
        self, routes: Sequence[BaseRoute], error_body: Callable[[int], Any], *, tls: TlsFiles | None = None
    ) -> None:
        """Serve `routes` on a free port (HTTPS with `tls`) and start delivering pushes."""
        app = FaultMiddleware(Starlette(routes=list(routes)), self.faults, error_body)
        certfile, keyfile = (str(tls.cert), str(tls.key)) if tls else (None, None)
        self.server = ServerThread(app, certfile=certfile, keyfile=keyfile).start()
        self._deliverer.start()

    def stop(self) -> None:
        self._outbox.put(None)
        if self.server:
            self.server.stop()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def _push(self, item: Push) -> None:
        self._outbox.put(item)

    def wait_for_deliveries(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.deliveries) >= count and self._outbox.empty():
                    return list(self.deliveries)
            time.sleep(0.02)
        raise AssertionError(f"only {len(self.deliveries)} deliveries, wanted {count}")

    def _deliver(self, http: httpx.Client, item: Push) -> dict[str, Any] | None:
        """POST one push to Huddle; what to record in `deliveries` (None: dropped, nothing sent)."""
        raise NotImplementedError

    def _deliver_loop(self) -> None:
        # One thread, so pushes arrive in the order the provider made them.
        with httpx.Client(timeout=10) as http:
            while (item := self._outbox.get()) is not None:
                delivery = self._deliver(http, item)
                if delivery is not None:
                    with self.lock:
                        self.deliveries.append(delivery)


def post_status(http: httpx.Client, url: str, **kwargs: Any) -> int | str:
    """The status Huddle answered a push with, or the error when there was no answer."""
    try:
        return http.post(url, **kwargs).status_code
    except httpx.HTTPError as exc:
        return repr(exc)


async def token_request(request: Request) -> tuple[dict[str, Any], str | None, str | None]:
    """A token request's form, client id and secret (in the form, or as HTTP Basic as RFC 6749 prefers)."""
    form = dict(await request.form())
    client_id, secret = form.get("client_id"), form.get("client_secret")
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
    return form, None if client_id is None else str(client_id), None if secret is None else str(secret)


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a code verifier (RFC 7636)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
