"""zPages at /debug/: recent and slow spans per operation, current metric values, build and config.

Open in dev mode; otherwise only for HUDDLE_ADMIN_DIDS, signed in to the web app or calling with a
service-auth token whose `lxm` is `com.huddle.debug`.
"""

from __future__ import annotations

import os
import platform
import time
from importlib.metadata import version
from typing import Any

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from api.auth import XrpcError, caller_for
from api.deps import StateDep
from models.settings import Settings
from workers.logs import redact
from workers.telemetry import Telemetry, configure_telemetry, debug_peers, metric_values

DEBUG_NSID = "com.huddle.debug"
_STARTED = time.time()
# Settings whose whole value is a secret; URLs elsewhere only lose their password (workers.logs.redact).
_SECRET_WORDS = ("secret", "password")
_SECRET_SUFFIXES = ("_key", "_keys")


async def require_operator(request: Request, state: StateDep) -> None:
    """Anyone in dev mode; otherwise an admin DID, or 401/403."""
    if state.settings.dev_mode:
        return
    caller = await caller_for(DEBUG_NSID)(request)
    if caller.did not in state.settings.admin_did_list:
        raise XrpcError(403, "Forbidden", "the debug pages are for the DIDs in HUDDLE_ADMIN_DIDS")


router = APIRouter(
    prefix="/debug", tags=["operations"], dependencies=[Depends(require_operator)], include_in_schema=False
)


def _telemetry(settings: Settings) -> Telemetry:
    return configure_telemetry(settings, "api")


@router.get("/")
async def index() -> dict[str, Any]:
    """What the debug pages are."""
    return {
        "tracez": "/debug/tracez (?trace=<trace id>: one trace, with the workers' spans of it)",
        "metricz": "/debug/metricz",
        "configz": "/debug/configz",
        "metrics": "/metrics (Prometheus text)",
    }


@router.get("/tracez")
async def tracez(state: StateDep, trace: str | None = None) -> dict[str, Any]:
    """Recent, slowest and failed spans per operation, or every kept span of one trace."""
    spans = _telemetry(state.settings).spans
    if trace is not None:
        found, peers = await _peer_spans(debug_peers(state.settings), trace.lower())
        found += spans.trace(trace.lower())
        merged = {s["spanId"]: s for s in found}.values()
        ordered = sorted(merged, key=lambda s: s["startUnixNano"])
        return {"traceId": trace, "spans": ordered, "peers": peers}
    return {"slowMs": spans.slow_ms, "operations": spans.operations()}


@router.get("/metricz")
async def metricz(state: StateDep) -> dict[str, Any]:
    """This process's metric values now."""
    return {"metrics": await run_in_threadpool(metric_values, _telemetry(state.settings).reader)}


@router.get("/configz")
async def configz(state: StateDep) -> dict[str, Any]:
    """Build and configuration, secrets redacted."""
    telemetry = _telemetry(state.settings)
    return {
        "build": {
            "huddle": version("huddle"),
            "python": platform.python_version(),
            "temporalio": version("temporalio"),
            "fastapi": version("fastapi"),
            "opentelemetry-sdk": version("opentelemetry-sdk"),
            "pid": os.getpid(),
            "uptimeSeconds": round(time.time() - _STARTED, 1),
            "exporters": telemetry.exporters,
        },
        "settings": redacted_settings(state.settings),
    }


async def _peer_spans(peers: list[str], trace: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The spans other processes (workers) kept of `trace`, and how each peer answered."""
    spans: list[dict[str, Any]] = []
    answers: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=2.0) as http:
        for peer in peers:
            try:
                resp = await http.get(f"{peer}/debug/tracez", params={"trace": trace})
                resp.raise_for_status()
                spans += resp.json()["spans"]
                answers[peer] = "ok"
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                answers[peer] = f"unreachable: {type(exc).__name__}"
    return spans, answers


def redacted_settings(settings: Settings) -> dict[str, Any]:
    """Every setting; secrets replaced by whether they are set, passwords cut out of URLs."""
    out: dict[str, Any] = {}
    for name, value in settings.model_dump().items():
        if any(word in name for word in _SECRET_WORDS) or name.endswith(_SECRET_SUFFIXES):
            out[name] = "[set]" if value else "[empty]"
        elif isinstance(value, str):
            out[name] = redact(value)
        else:
            out[name] = value
    return out
