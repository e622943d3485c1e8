"""The FastAPI app: built by a factory, with the DB engine and Temporal client opened in its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI

from api.auth import ServiceAuth, XrpcError, xrpc_error_handler
from api.ratelimit import RateLimiter
from api.routes import health, well_known
from api.state import AppState
from models.db import make_engine
from models.settings import Settings, get_settings
from workers.temporal_client import connect_temporal


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing connects until the lifespan starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg = settings or get_settings()
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
    app.include_router(health.router)
    app.include_router(well_known.router)
    return app
