"""With HUDDLE_OTLP_ENDPOINT set, a process pushes its spans and metrics to the collector."""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from models.settings import REPO_ROOT

PROCESS = """
from opentelemetry import trace
from tests.conftest import make_settings
from workers.telemetry import booking_transition, configure_telemetry

settings = make_settings("sqlite://", otlp_endpoint="{endpoint}")
telemetry = configure_telemetry(settings, "worker")
with trace.get_tracer("test").start_as_current_span("RunActivity:match_and_hold"):
    booking_transition("held", "held")
telemetry.tracer_provider.shutdown()   # flushes the batch
telemetry.meter_provider.shutdown()    # exports once more on the way out
"""


def test_spans_and_metrics_reach_an_otlp_collector() -> None:
    received: list[tuple[str, str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        run = subprocess.run(
            [sys.executable, "-c", PROCESS.format(endpoint=endpoint)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert run.returncode == 0, run.stderr
    paths = {path: body for path, kind, body in received if kind == "application/x-protobuf"}
    assert {"/v1/traces", "/v1/metrics"} <= set(paths), [p for p, _, _ in received]
    assert b"RunActivity:match_and_hold" in paths["/v1/traces"]
    assert b"huddle_booking_transitions" in paths["/v1/metrics"]


CONSOLE = """
from opentelemetry import trace
from tests.conftest import make_settings
from workers.telemetry import configure_telemetry

telemetry = configure_telemetry(make_settings("sqlite://", otel_console=True), "api")
with trace.get_tracer("test").start_as_current_span("POST /xrpc/com.huddle.match"):
    pass
telemetry.tracer_provider.shutdown()
"""


def test_the_console_exporter_prints_spans_only_when_asked() -> None:
    def run(program: str) -> str:
        out = subprocess.run(
            [sys.executable, "-c", program], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert '"name": "POST /xrpc/com.huddle.match"' in run(CONSOLE)
    assert "com.huddle.match" not in run(CONSOLE.replace("otel_console=True", "otel_console=False"))
