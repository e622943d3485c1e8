"""Liveness, readiness and version."""

from __future__ import annotations

import asyncio
from importlib.metadata import version

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import StateDep
from api.readiness import check_database, check_firehose, check_pollers, check_temporal

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: StateDep) -> JSONResponse:
    """200 only when the database, Temporal, the workers and (if configured) the firehose are usable."""
    db, temporal, workers, firehose = await asyncio.gather(
        check_database(state.engine),
        check_temporal(state.temporal),
        check_pollers(state.temporal, state.settings),
        check_firehose(state.engine, state.settings),
    )
    checks = {"database": db, "temporal": temporal, "workers": workers, "firehose": firehose}
    ready = all(c.ok for c in checks.values())
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {name: {"ok": c.ok, "detail": c.detail} for name, c in checks.items()},
    }
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/version")
async def version_info(state: StateDep) -> dict[str, str]:
    """Huddle's version and the service DID it answers as."""
    return {"version": version("huddle"), "serviceDid": state.settings.service_did}
