"""What the web app holds for the process's life: the OAuth client, sessions, templates, one HTTP pool."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi import FastAPI
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import Engine

from api.state import AppState
from clients.calltrace import AsyncTracedTransport
from clients.identity import IdentityResolver
from clients.oauth import Discovery, OAuthClient, OAuthNotConfigured, SessionStore, client_config
from clients.secrets import KeyRing
from models.settings import Settings

log = logging.getLogger("huddle.web")
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


@dataclass
class WebState:
    settings: Settings
    engine: Engine
    identity: IdentityResolver
    http: httpx.AsyncClient
    sessions: SessionStore
    oauth: OAuthClient | None
    oauth_problem: str | None  # why sign-in is off, for the sign-in page
    templates: Environment


def make_templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


@asynccontextmanager
async def web_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs inside create_app's lifespan (the router's lifespan is nested), so app.state.huddle is set."""
    core: AppState = app.state.huddle
    settings = core.settings
    identity: IdentityResolver = app.state.service_auth.identity
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(10.0),
        follow_redirects=False,
        headers={"user-agent": "huddle-appview"},
        # OAuth with the PDS's authorization server and XRPC calls to the PDS, traced and counted.
        transport=AsyncTracedTransport(
            "pds",
            httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=50, max_keepalive_connections=20)),
        ),
    )
    oauth: OAuthClient | None = None
    problem = None
    try:
        oauth = OAuthClient(
            client_config(settings), Discovery(http, identity, dev_mode=settings.dev_mode), http
        )
    except (OAuthNotConfigured, ValueError) as exc:
        problem = str(exc)
        log.warning("web sign-in is off: %s", problem)
    app.state.web = WebState(
        settings=settings,
        engine=core.engine,
        identity=identity,
        http=http,
        sessions=SessionStore(core.engine, KeyRing.from_settings(settings), oauth),
        oauth=oauth,
        oauth_problem=problem,
        templates=make_templates(),
    )
    try:
        yield
    finally:
        await http.aclose()
