"""Reading a process's metrics and kept spans the way an operator does: over HTTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from models.settings import Settings
from workers.telemetry import configure_telemetry, serve_worker_metrics

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@contextmanager
def process_pages(settings: Settings) -> Iterator[str]:
    """This process's /metrics and /debug/tracez, served as a worker serves them; yields the base URL."""
    port = free_port()
    settings = settings.model_copy(update={"worker_metrics_port": port})
    server = serve_worker_metrics(configure_telemetry(settings, "test"), settings)
    assert server is not None
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def scrape(base: str) -> Samples:
    resp = httpx.get(f"{base}/metrics", timeout=10)
    assert resp.status_code == 200, resp.text
    return parse(resp.text)


def kept_spans(base: str, name: str) -> list[dict[str, Any]]:
    """The recent spans of one operation on a /debug/tracez page."""
    operations = httpx.get(f"{base}/debug/tracez", timeout=10).json()["operations"]
    return next((op["recent"] for op in operations if op["operation"] == name), [])


def trace_spans(base: str, trace_id: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{base}/debug/tracez", params={"trace": trace_id}, timeout=10).json()["spans"])
