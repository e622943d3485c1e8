"""The FastAPI app: built by a factory, with the DB engine and Temporal client opened in its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from temporalio.service import RPCError

from api.auth import ServiceAuth, XrpcError, xrpc_error_handler
from api.metrics import ServerSpans
from api.metrics import router as metrics_router
from api.ratelimit import RateLimiter
from api.routes import connectors as calendar_connectors
from api.routes import debug, health, ics, well_known
from api.routes import webhooks as calendar_webhooks
from api.state import AppState
from api.web import router as web_router
from api.xrpc import bookings as xrpc_bookings
from api.xrpc import offers as xrpc_offers
from models.db import make_engine
from models.settings import Settings, get_settings
from workers.telemetry import configure_telemetry
from workers.temporal_client import connect_temporal

log = logging.getLogger("huddle.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing connects until the lifespan starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg = settings or get_settings()
        configure_telemetry(cfg, "api")  # before the Temporal client, whose interceptor traces through it
        engine = make_engine(cfg.database_url)
        # Lazy: the API starts (and /readyz says why it is not ready) even if Temporal is still booting.
        temporal = await connect_temporal(cfg, lazy=True)
        app.state.huddle = AppState(settings=cfg, engine=engine, temporal=temporal)
        service_auth = ServiceAuth.from_settings(cfg, engine)
        app.state.service_auth = service_auth
        app.state.rate_limiter = RateLimiter.from_settings(cfg, engine)
        try:
            yield
        finally:
            await service_auth.aclose()
            engine.dispose()

    app = FastAPI(
        title="Huddle",
        version=version("huddle"),
        summary="An ATProto AppView for booking time with people.",
        lifespan=lifespan,
    )
    app.add_exception_handler(XrpcError, xrpc_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(RPCError, temporal_unavailable)  # type: ignore[arg-type]
    app.add_middleware(ServerSpans)
    app.include_router(health.router)
    app.include_router(metrics_router)
    app.include_router(debug.router)
    app.include_router(well_known.router)
    app.include_router(ics.router)
    app.include_router(xrpc_offers.router)
    app.include_router(xrpc_bookings.router)
    app.include_router(calendar_connectors.router)
    app.include_router(calendar_webhooks.router)
    # Last: the pages' catch-alls (/bookings/{id}) must not shadow the API's own routes.
    app.include_router(web_router)
    return app


async def temporal_unavailable(request: Request, exc: RPCError) -> JSONResponse:
    """Temporal could not be reached: the request was not accepted, so the caller may retry it."""
    log.warning("Temporal call failed for %s: %s", request.url.path, exc.status.name)
    return JSONResponse(
        {"error": "ServiceUnavailable", "message": "the booking service is unavailable; try again shortly"},
        status_code=503,
        headers={"Retry-After": "5"},
    )
