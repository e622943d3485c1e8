"""The FastAPI app: built by a factory, with the DB engine and Temporal client opened in its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI

from api.routes import health
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
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="Huddle",
        version=version("huddle"),
        summary="An ATProto AppView for booking time with people.",
        lifespan=lifespan,
    )
    app.include_router(health.router)
    return app
