"""OpenTelemetry for every Huddle process: one MeterProvider and TracerProvider, set up once.

Metrics are read three ways: `GET /metrics` on the API and `HUDDLE_WORKER_METRICS_PORT` on a
worker render the process's current values in the Prometheus text format (pull); with
`HUDDLE_OTLP_ENDPOINT` set they are also pushed to an OTLP/HTTP collector, with the spans.
`RecentSpans` keeps the latest and the slowest spans of each operation for `/debug/tracez`.

Instruments are recorded through the small functions below (`booking_transition`, `counts_holds`,
`times_match`, `rate_limit_rejected`); before `configure_telemetry` runs they record into the
OpenTelemetry API's no-op proxies, so importing this module costs nothing.
"""

from __future__ import annotations

import functools
import heapq
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qs, urlsplit

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.metrics import Counter, Histogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
    Sum,
)
from opentelemetry.sdk.metrics.export import (
    Histogram as HistogramData,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from clients.calltrace import CALL_DURATION_BUCKETS, CALL_DURATION_METRIC
from models.settings import Settings

log = logging.getLogger("huddle.telemetry")

P = ParamSpec("P")
R = TypeVar("R")

MATCH_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


# ---------------------------------------------------------------- instruments


@dataclass(frozen=True)
class Instruments:
    transitions: Counter
    hold_conflicts: Counter
    match_latency: Histogram
    rate_limit_rejections: Counter


@functools.cache
def instruments() -> Instruments:
    meter = metrics.get_meter("huddle")
    return Instruments(
        transitions=meter.create_counter(
            "huddle_booking_transitions", description="Booking state changes written, by new state and action"
        ),
        hold_conflicts=meter.create_counter(
            "huddle_hold_conflicts", description="Holds the database refused because another took the block"
        ),
        match_latency=meter.create_histogram(
            "huddle_match_latency_seconds",
            unit="s",
            description="com.huddle.match from request to held (or a terminal answer), by outcome",
        ),
        rate_limit_rejections=meter.create_counter(
            "huddle_rate_limit_rejections", description="Procedure calls refused with 429, by method"
        ),
    )


def booking_transition(state: str, action: str) -> None:
    """Count one booking state change (`apply_transition` and `place_hold` call this)."""
    instruments().transitions.add(1, {"state": state, "action": action})


def counts_holds(
    lost_race: type[Exception], action: str | None = "held"
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate `place_hold` / `move_booking`: `lost_race` counts as a conflict, and with an
    `action` a placed hold counts as a transition to held."""

    def decorate(place: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(place)
        def counted(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                placement = place(*args, **kwargs)
            except lost_race:
                instruments().hold_conflicts.add(1)
                raise
            if placement is not None and action is not None:
                booking_transition("held", action)
            return placement

        return counted

    return decorate


def times_match(run: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Decorate the match procedure: its latency by outcome (the booking's state or the error name)."""

    @functools.wraps(run)
    async def timed(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await run(*args, **kwargs)
            if isinstance(result, dict):
                outcome = str(result.get("state", "unknown"))
            return result
        except Exception as exc:
            outcome = str(getattr(exc, "error", type(exc).__name__))
            raise
        finally:
            instruments().match_latency.record(time.perf_counter() - started, {"outcome": outcome})

    return timed


def rate_limit_rejected(path: str) -> None:
    """Count a 429 from the procedure rate limit; `path` is `/xrpc/<nsid>`."""
    instruments().rate_limit_rejections.add(1, {"method": path.rsplit("/", 1)[-1]})


# ---------------------------------------------------------------- metric reading


class SnapshotReader(MetricReader):
    """A pull reader: `snapshot()` collects the process's current (cumulative) values."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._latest: MetricsData | None = None

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        self._latest = metrics_data

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None

    def snapshot(self) -> MetricsData | None:
        with self._lock:
            self.collect()
            return self._latest


class PrometheusBridge(Collector):
    """prometheus_client's view of an OpenTelemetry snapshot, so its text format is written for us."""

    def __init__(self, reader: SnapshotReader) -> None:
        self._reader = reader

    def collect(self) -> Iterator[Metric]:
        data = self._reader.snapshot()
        if data is None:
            return
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    family = _family(metric.name, metric.description or metric.name, metric.data)
                    if family is not None:
                        yield family


def _family(name: str, doc: str, data: Any) -> Metric | None:
    points = list(data.data_points)
    keys = sorted({str(k) for p in points for k in p.attributes})

    def labels(point: Any) -> list[str]:
        return [str(point.attributes.get(k, "")) for k in keys]

    if isinstance(data, Sum):
        family: Any = (
            CounterMetricFamily(name, doc, labels=keys)
            if data.is_monotonic
            else GaugeMetricFamily(name, doc, labels=keys)
        )
        for point in points:
            family.add_metric(labels(point), point.value)
        return family  # type: ignore[no-any-return]
    if isinstance(data, HistogramData):
        hist = HistogramMetricFamily(name, doc, labels=keys)
        for point in points:
            cumulative, buckets = 0, []
            for bound, count in zip(point.explicit_bounds, point.bucket_counts, strict=False):
                cumulative += count
                buckets.append((_le(bound), float(cumulative)))
            buckets.append(("+Inf", float(point.count)))
            hist.add_metric(labels(point), buckets, point.sum)
        return hist
    if hasattr(data, "data_points"):  # a gauge
        gauge = GaugeMetricFamily(name, doc, labels=keys)
        for point in points:
            gauge.add_metric(labels(point), point.value)
        return gauge
    return None


def _le(bound: float) -> str:
    return repr(float(bound))


def metric_values(reader: SnapshotReader) -> dict[str, list[dict[str, Any]]]:
    """Current values by metric name, for `/debug/metricz`."""
    out: dict[str, list[dict[str, Any]]] = {}
    data = reader.snapshot()
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                rows = out.setdefault(metric.name, [])
                for point in metric.data.data_points:
                    row: dict[str, Any] = {"attributes": dict(point.attributes or {})}
                    if isinstance(metric.data, HistogramData):
                        row |= {"count": point.count, "sum": point.sum}  # type: ignore[union-attr]
                    else:
                        row["value"] = point.value  # type: ignore[union-attr]
                    rows.append(row)
    return out


# ---------------------------------------------------------------- spans kept for /debug/tracez


@dataclass(frozen=True)
class SpanSummary:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    kind: str
    start_ns: int
    duration_ms: float
    status: str
    attributes: dict[str, Any]

    @classmethod
    def of(cls, span: ReadableSpan) -> SpanSummary:
        ctx = span.get_span_context()
        start, end = span.start_time or 0, span.end_time or span.start_time or 0
        return cls(
            name=span.name,
            trace_id=format(ctx.trace_id if ctx else 0, "032x"),
            span_id=format(ctx.span_id if ctx else 0, "016x"),
            parent_span_id=format(span.parent.span_id, "016x") if span.parent else None,
            kind=span.kind.name,
            start_ns=start,
            duration_ms=(end - start) / 1e6,
            status=span.status.status_code.name,
            attributes={k: v for k, v in (span.attributes or {}).items() if isinstance(v, str | int | float)},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "traceId": self.trace_id,
            "spanId": self.span_id,
            "parentSpanId": self.parent_span_id,
            "kind": self.kind,
            "startUnixNano": self.start_ns,
            "durationMs": round(self.duration_ms, 3),
            "status": self.status,
            "attributes": self.attributes,
        }


class RecentSpans(SpanProcessor):
    """The latest `keep` spans of each operation, the `keep` slowest, and the errors."""

    def __init__(self, keep: int = 20, slow_ms: float = 500.0, max_operations: int = 500) -> None:
        self.keep = keep
        self.slow_ms = slow_ms
        self._max_operations = max_operations
        self._lock = threading.Lock()
        self._recent: dict[str, deque[SpanSummary]] = {}
        self._slowest: dict[str, list[tuple[float, int, SpanSummary]]] = {}
        self._errors: dict[str, deque[SpanSummary]] = {}
        self._counts: dict[str, int] = {}
        self._seq = 0

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        summary = SpanSummary.of(span)
        with self._lock:
            if summary.name not in self._recent and len(self._recent) >= self._max_operations:
                return  # an unbounded set of span names would be a memory leak, not a zPage
            self._seq += 1
            self._counts[summary.name] = self._counts.get(summary.name, 0) + 1
            self._recent.setdefault(summary.name, deque(maxlen=self.keep)).append(summary)
            slowest = self._slowest.setdefault(summary.name, [])
            entry = (summary.duration_ms, self._seq, summary)
            if len(slowest) < self.keep:
                heapq.heappush(slowest, entry)
            else:
                heapq.heappushpop(slowest, entry)
            if summary.status == "ERROR":
                self._errors.setdefault(summary.name, deque(maxlen=self.keep)).append(summary)

    def operations(self) -> list[dict[str, Any]]:
        """Per operation: how many ended, the latest, the slowest (over `slow_ms` flagged) and errors."""
        with self._lock:
            return [
                {
                    "operation": name,
                    "count": self._counts[name],
                    "recent": [s.to_json() for s in reversed(recent)],
                    "slowest": [
                        s.to_json() | {"slow": s.duration_ms >= self.slow_ms}
                        for _, _, s in sorted(self._slowest[name], reverse=True)
                    ],
                    "errors": [s.to_json() for s in reversed(self._errors.get(name, ()))],
                }
                for name, recent in sorted(self._recent.items())
            ]

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        """Every kept span of one trace, oldest first."""
        with self._lock:
            kept = [s for recent in self._recent.values() for s in recent]
            kept += [s for heap in self._slowest.values() for _, _, s in heap]
        found = {s.span_id: s for s in kept if s.trace_id == trace_id}
        return [s.to_json() for s in sorted(found.values(), key=lambda s: s.start_ns)]

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


# ---------------------------------------------------------------- the process's providers


@dataclass
class Telemetry:
    service: str
    meter_provider: MeterProvider
    tracer_provider: TracerProvider
    reader: SnapshotReader
    spans: RecentSpans
    exporters: list[str]

    def registry(self, *extra: Collector) -> CollectorRegistry:
        """A Prometheus registry over this process's metrics (and `extra` collectors)."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(PrometheusBridge(self.reader))
        for collector in extra:
            registry.register(collector)
        return registry


_telemetry: Telemetry | None = None
_configure_lock = threading.Lock()


def configure_telemetry(settings: Settings, service: str) -> Telemetry:
    """Install the process's providers on first call; later calls return the same ones."""
    global _telemetry
    with _configure_lock:
        if _telemetry is not None:
            return _telemetry
        resource = Resource.create(
            {"service.name": f"huddle-{service}", "service.version": version("huddle")}
        )
        reader = SnapshotReader()
        readers: list[MetricReader] = [reader]
        spans = RecentSpans(slow_ms=settings.trace_slow_ms)
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(spans)
        exporters = ["prometheus-text"]
        endpoint = settings.otlp_endpoint.rstrip("/")
        if endpoint:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            readers.append(
                PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics"))
            )
            tracer_provider.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"))
            )
            exporters.append(f"otlp:{endpoint}")
        if settings.otel_console:
            readers.append(
                PeriodicExportingMetricReader(ConsoleMetricExporter(), export_interval_millis=60_000)
            )
            tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
            exporters.append("console")
        meter_provider = MeterProvider(
            resource=resource,
            metric_readers=readers,
            views=[
                View(
                    instrument_name="huddle_match_latency_seconds",
                    aggregation=ExplicitBucketHistogramAggregation(MATCH_LATENCY_BUCKETS),
                ),
                View(
                    instrument_name=CALL_DURATION_METRIC,
                    aggregation=ExplicitBucketHistogramAggregation(CALL_DURATION_BUCKETS),
                ),
            ],
        )
        metrics.set_meter_provider(meter_provider)
        trace.set_tracer_provider(tracer_provider)
        if (
            metrics.get_meter_provider() is not meter_provider
            or trace.get_tracer_provider() is not tracer_provider
        ):
            log.warning("another OpenTelemetry provider was installed first; Huddle's metrics may be missing")
        _telemetry = Telemetry(service, meter_provider, tracer_provider, reader, spans, exporters)
        log.info("telemetry for %s: %s", service, ", ".join(exporters))
        return _telemetry


def current_telemetry() -> Telemetry | None:
    return _telemetry


DEV_WORKER_METRICS_PORT = 9464
DEV_FIREHOSE_METRICS_PORT = 9465


def worker_metrics_port(settings: Settings) -> int:
    """The worker's metrics port: the setting, or 9464 in dev mode so `make dev` shows one trace."""
    if settings.worker_metrics_port is not None:
        return settings.worker_metrics_port
    return DEV_WORKER_METRICS_PORT if settings.dev_mode else 0


def firehose_metrics_port(settings: Settings) -> int:
    """The firehose consumer's metrics port: the setting, or 9465 in dev mode (beside the worker's)."""
    if settings.firehose_metrics_port is not None:
        return settings.firehose_metrics_port
    return DEV_FIREHOSE_METRICS_PORT if settings.dev_mode else 0


def debug_peers(settings: Settings) -> list[str]:
    """Worker and firehose debug endpoints whose spans the API's `/debug/tracez?trace=` adds."""
    peers = [u.strip().rstrip("/") for u in settings.debug_peer_urls.split(",") if u.strip()]
    if not peers and settings.dev_mode:
        ports = (worker_metrics_port(settings), firehose_metrics_port(settings))
        peers = [f"http://{settings.worker_metrics_host}:{port}" for port in ports if port]
    return peers


def serve_worker_metrics(
    telemetry: Telemetry, settings: Settings, port: int | None = None
) -> ThreadingHTTPServer | None:
    """`/metrics` and `/debug/tracez` of a worker (or of `port`, e.g. the firehose consumer's) on
    `worker_metrics_host`; a taken port is only logged."""
    port = worker_metrics_port(settings) if port is None else port
    if not port:
        return None
    registry = telemetry.registry()

    class Pages(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/metrics":
                self._answer(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif url.path == "/debug/tracez":
                trace_id = parse_qs(url.query).get("trace", [""])[0].lower()
                found: Any = (
                    {"traceId": trace_id, "spans": telemetry.spans.trace(trace_id)}
                    if trace_id
                    else {"slowMs": telemetry.spans.slow_ms, "operations": telemetry.spans.operations()}
                )
                self._answer(200, "application/json", json.dumps(found).encode())
            else:
                self._answer(404, "text/plain", b"not found\n")

        def _answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None  # scrapes are not news

    try:
        server = ThreadingHTTPServer((settings.worker_metrics_host, port), Pages)
    except OSError as exc:
        log.warning("worker metrics not served on port %s: %s", port, exc)
        return None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="huddle-metrics", daemon=True).start()
    log.info("%s metrics on http://%s:%s/metrics", telemetry.service, settings.worker_metrics_host, port)
    return server
