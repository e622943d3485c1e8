"""A worker's own endpoint: its metrics in the Prometheus format and the spans it kept of a trace."""

from __future__ import annotations

import socket
import uuid

import httpx
from opentelemetry import trace

from models.settings import Settings
from workers.telemetry import booking_transition, configure_telemetry, serve_worker_metrics


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_worker_serves_metrics_and_its_spans_of_a_trace(settings: Settings) -> None:
    settings = settings.model_copy(update={"worker_metrics_port": free_port()})
    telemetry = configure_telemetry(settings, "test")
    server = serve_worker_metrics(telemetry, settings)
    assert server is not None
    base = f"http://127.0.0.1:{settings.worker_metrics_port}"
    action = f"test-{uuid.uuid4().hex[:8]}"
    try:
        with trace.get_tracer("test").start_as_current_span("RunActivity:test_only") as span:
            booking_transition("cancelled", action)
        trace_id = format(span.get_span_context().trace_id, "032x")

        metrics = httpx.get(f"{base}/metrics")
        assert metrics.status_code == 200
        assert f'huddle_booking_transitions_total{{action="{action}",state="cancelled"}} 1.0' in metrics.text
        kept = httpx.get(f"{base}/debug/tracez", params={"trace": trace_id}).json()["spans"]
        assert [s["name"] for s in kept] == ["RunActivity:test_only"]
        # A second worker on the same port is told so and carries on.
        assert serve_worker_metrics(telemetry, settings) is None
    finally:
        server.shutdown()
        server.server_close()
