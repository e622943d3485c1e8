"""Outgoing calls to calendar providers, PDSes, identity services and SMTP relays: traced and counted.

Each call is one CLIENT span named `<provider> <operation>` (`google calendar.events.insert`,
`pds com.atproto.sync.getRepo`, `caldav REPORT`, `smtp send`) and one count in
`huddle_provider_calls_total{provider, status}`, where status is the answer's code (HTTP status,
SMTP reply) or, when no answer came, an error class: `timeout`, `connection`, `tls`, `cancelled`,
`error`. `huddle_provider_call_duration_seconds{provider}` times them.

Hooked in at the transport (an httpx transport, an httplib2-like wrapper for googleapiclient, a
wrapped `request` for requests-style sessions), so the clients' logic is untouched. Spans carry
the server's host and port, never the path or query: paths name calendars by email and queries can
carry tokens. Exception messages are not recorded for the same reason, only their class.
"""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from opentelemetry import metrics, trace
from opentelemetry.metrics import Counter, Histogram
from opentelemetry.trace import SpanKind, Status, StatusCode

CALL_DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CALL_DURATION_METRIC = "huddle_provider_call_duration_seconds"

# Set by a client that knows which API method it calls (googleapiclient's methodId), read below.
_operation: ContextVar[str | None] = ContextVar("huddle_call_operation", default=None)


@dataclass(frozen=True)
class _Instruments:
    calls: Counter
    duration: Histogram


@functools.cache
def _instruments() -> _Instruments:
    meter = metrics.get_meter("huddle.clients")
    return _Instruments(
        calls=meter.create_counter(
            "huddle_provider_calls",
            description="Calls to providers, PDSes and relays, by provider and status (code or error class)",
        ),
        duration=meter.create_histogram(
            CALL_DURATION_METRIC, unit="s", description="Time to the answer of a provider call, by provider"
        ),
    )


@dataclass
class CallRecord:
    """What one call ended with; the transport sets `status` from the answer."""

    status: str | None = None

    def answered(self, status: int | str) -> None:
        self.status = str(status)


@contextmanager
def operation(name: str | None) -> Iterator[None]:
    """Name the calls made inside (e.g. the API method), for their span names."""
    token = _operation.set(name)
    try:
        yield
    finally:
        _operation.reset(token)


@contextmanager
def provider_call(
    provider: str,
    operation_name: str,
    *,
    method: str | None = None,
    url: str | httpx.URL | None = None,
    server: tuple[str, int | None] | None = None,
) -> Iterator[CallRecord]:
    """One outgoing call: a CLIENT span around it, counted and timed when it ends."""
    attributes: dict[str, Any] = {"huddle.provider": provider}
    if method:
        attributes["http.request.method"] = method
    host, port = server or _server(url)
    if host:
        attributes["server.address"] = host
    if port:
        attributes["server.port"] = port
    record = CallRecord()
    started = time.perf_counter()
    tracer = trace.get_tracer("huddle.clients")
    with tracer.start_as_current_span(
        f"{provider} {operation_name}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,  # messages may hold URLs with emails or tokens
        set_status_on_exception=False,
    ) as span:
        try:
            yield record
        except BaseException as exc:
            if record.status is None:
                record.status = error_class(exc)
            raise
        finally:
            status = record.status or "error"
            span.set_attribute("huddle.provider.status", status)
            if status.isdigit():
                if method:
                    span.set_attribute("http.response.status_code", int(status))
                failed = int(status) >= 400
            else:
                failed = True
            if failed:
                span.set_attribute("error.type", status)
                span.set_status(Status(StatusCode.ERROR))
            found = _instruments()
            found.calls.add(1, {"provider": provider, "status": status})
            found.duration.record(time.perf_counter() - started, {"provider": provider})


def error_class(exc: BaseException) -> str:
    """A fixed label for a call that got no answer (the exception, or what it was raised from)."""
    seen: BaseException | None = exc
    for _ in range(5):  # a short chain: TransientMailError from OSError, ProviderUnavailable from …
        if seen is None:
            break
        code = getattr(seen, "smtp_code", None)
        if isinstance(code, int) and code > 0:
            return str(code)
        names = {cls.__name__ for cls in type(seen).__mro__}
        if isinstance(seen, TimeoutError) or any("Timeout" in n for n in names):
            return "timeout"
        if isinstance(seen, ssl.SSLError | ssl.CertificateError) or names & {"SSLError", "CertificateError"}:
            return "tls"
        if isinstance(seen, OSError) or any(
            "Connect" in n or "Disconnect" in n or n in _CONNECTION_ERRORS for n in names
        ):
            return "connection"
        if not isinstance(seen, Exception):
            return "cancelled"
        seen = seen.__cause__
    return "error"


_CONNECTION_ERRORS = frozenset({"ServerNotFoundError", "RemoteProtocolError", "NetworkError", "ProxyError"})


def _server(url: str | httpx.URL | None) -> tuple[str | None, int | None]:
    if url is None:
        return None, None
    parts = urlsplit(str(url))
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        port = None
    return parts.hostname, port


def _xrpc_method(path: str) -> str | None:
    """The NSID of an XRPC path (`/xrpc/com.atproto.repo.listRecords`): names the call, names no one."""
    if path.startswith("/xrpc/"):
        return path[len("/xrpc/") :].split("/", 1)[0][:128] or None
    return None


# ---------------------------------------------------------------- httpx


class TracedTransport(httpx.BaseTransport):
    """An httpx transport that traces and counts every request it sends through `inner`."""

    def __init__(self, provider: str, inner: httpx.BaseTransport | None = None) -> None:
        self.provider = provider
        self._inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        name = _operation.get() or _xrpc_method(request.url.path) or request.method
        with provider_call(self.provider, name, method=request.method, url=request.url) as call:
            response = self._inner.handle_request(request)
            call.answered(response.status_code)
            return response

    def close(self) -> None:
        self._inner.close()


class AsyncTracedTransport(httpx.AsyncBaseTransport):
    """The async twin of `TracedTransport`."""

    def __init__(self, provider: str, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.provider = provider
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        name = _operation.get() or _xrpc_method(request.url.path) or request.method
        with provider_call(self.provider, name, method=request.method, url=request.url) as call:
            response = await self._inner.handle_async_request(request)
            call.answered(response.status_code)
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()


# ---------------------------------------------------------------- httplib2 (googleapiclient)


class TracedHttp:
    """Wraps an httplib2-style `http` (googleapiclient's, `AuthorizedHttp`): each request traced."""

    def __init__(self, provider: str, http: Any) -> None:
        self.provider = provider
        self._http = http

    def request(self, uri: str, method: str = "GET", *args: Any, **kwargs: Any) -> tuple[Any, bytes]:
        with provider_call(self.provider, _operation.get() or method, method=method, url=uri) as call:
            resp, content = self._http.request(uri, method, *args, **kwargs)
            call.answered(int(resp.status))
            return resp, content

    def __getattr__(self, name: str) -> Any:
        return getattr(self._http, name)  # close(), timeout, credentials: the wrapped object's


# ---------------------------------------------------------------- requests-style sessions


def trace_session(session: Any, provider: str, operation_name: str | None = None) -> Any:
    """Trace every `session.request` (requests, niquests, authlib's and MSAL's sessions); returns it.

    `get`/`post` go through `request`, so wrapping the instance's `request` catches them all.
    """
    inner: Callable[..., Any] = session.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        name = operation_name or _operation.get() or method.upper()
        with provider_call(provider, name, method=method.upper(), url=url) as call:
            response = inner(method, url, *args, **kwargs)
            call.answered(int(response.status_code))
            return response

    session.request = request
    return session
