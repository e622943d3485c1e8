"""Huddle's did:web document: what a PDS reads to proxy `atproto-proxy: <did>#huddle_appview` calls."""

from __future__ import annotations

import httpx
from atproto_core.did_doc import DidDocument
from sqlalchemy import Engine

from clients.identity import IdentityResolver
from tests.conftest import make_settings
from tests.identity.helpers import build_app, client_for


async def test_did_json_names_the_appview_endpoint(sqlite_engine: Engine) -> None:
    settings = make_settings(
        str(sqlite_engine.url), hostname="huddle.example.com", public_url="https://huddle.example.com/"
    )
    async with IdentityResolver(plc_url="http://127.0.0.1:9") as identity:
        app = build_app(settings, sqlite_engine, identity)
        async with client_for(app) as client:
            resp = await client.get("/.well-known/did.json")
        assert resp.status_code == 200
        doc = DidDocument.from_dict(resp.json())
        assert doc.id == "did:web:huddle.example.com"
        endpoint = doc.get_service_endpoint("#huddle_appview", "AtprotoAppView")
        assert endpoint == "https://huddle.example.com"

        # Huddle's own resolver reads it as any did:web (here over the app itself).
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport) as http:
            resolver = IdentityResolver(plc_url="http://127.0.0.1:9", http=http)
            resolved = await resolver.resolve_did("did:web:huddle.example.com")
        assert resolved.raw["service"][0]["serviceEndpoint"] == "https://huddle.example.com"


async def test_no_did_json_when_the_service_did_is_not_did_web(sqlite_engine: Engine) -> None:
    settings = make_settings(str(sqlite_engine.url), service_did="did:plc:ewvi7nxzyoun6zhxrhs64oiz")
    async with IdentityResolver(plc_url="http://127.0.0.1:9") as identity:
        async with client_for(build_app(settings, sqlite_engine, identity)) as client:
            resp = await client.get("/.well-known/did.json")
    assert resp.status_code == 404
    assert resp.json()["error"] == "NotFound"
