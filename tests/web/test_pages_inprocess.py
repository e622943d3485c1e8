"""Pages and endpoints that need no PDS or browser, served in-process (lifespan and all)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from api.main import create_app
from clients.oauth import SigningKey
from tests.conftest import make_settings


@asynccontextmanager
async def _serve(database_url: str, **overrides: object) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url, **overrides)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        base = settings.public_url
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base) as http:
            yield http


async def test_production_serves_client_metadata_and_public_keys(database_url: str) -> None:
    key = SigningKey.generate(kid="huddle-a")
    async with _serve(
        database_url,
        public_url="https://huddle.example",
        oauth_client_keys=json.dumps({"keys": [key.private_jwk()]}),
    ) as http:
        meta = (await http.get("/oauth-client-metadata.json")).json()
        assert meta["client_id"] == "https://huddle.example/oauth-client-metadata.json"
        assert meta["token_endpoint_auth_method"] == "private_key_jwt"
        assert meta["jwks_uri"] == "https://huddle.example/oauth/jwks.json"
        jwks = (await http.get("/oauth/jwks.json")).json()
        assert jwks == {"keys": [key.public_jwk()]} and "d" not in jwks["keys"][0]


async def test_development_signs_in_as_a_loopback_client_with_nothing_served(database_url: str) -> None:
    async with _serve(database_url, public_url="http://127.0.0.1:8000") as http:
        assert (await http.get("/oauth-client-metadata.json")).status_code == 404
        assert (await http.get("/oauth/jwks.json")).json() == {"keys": []}


async def test_the_sign_in_form_needs_its_csrf_token_and_explains_a_bad_handle(database_url: str) -> None:
    async with _serve(database_url, public_url="http://127.0.0.1:8000") as http:
        page = await http.get("/login?next=/host")
        assert page.status_code == 200 and "no-store" in page.headers["cache-control"]
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        forged = await http.post("/login", data={"identifier": "alice.test"})
        assert forged.status_code == 403 and "This form has expired" in forged.text
        bad = await http.post(
            "/login", data={"identifier": "not a handle!", "next": "/host", "csrf_token": token.group(1)}
        )
        assert bad.status_code == 400 and "could not find the account" in bad.text
        assert 'value="not a handle!"' in bad.text  # what they typed is kept


async def test_pages_behind_sign_in_send_the_visitor_to_sign_in_and_back(database_url: str) -> None:
    async with _serve(database_url, public_url="http://127.0.0.1:8000") as http:
        for path in ("/host", "/host/offers/new", "/bookings", "/bookings/abc", "/colony", "/host/calendars"):
            answer = await http.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/login?next=" + path.split("?")[0]), path
        # The XRPC routes still answer an unauthenticated caller as XRPC does.
        xrpc = await http.get("/xrpc/com.huddle.getBooking", params={"booking": "abc"})
        assert xrpc.status_code == 401 and xrpc.json()["error"] == "AuthMissing"


async def test_a_forged_session_cookie_is_nobody(database_url: str) -> None:
    async with _serve(database_url, public_url="http://127.0.0.1:8000") as http:
        http.cookies.set("huddle_session", "made-up.0000")
        assert (await http.get("/host")).status_code == 303
        xrpc = await http.get("/xrpc/com.huddle.getBooking", params={"booking": "abc"})
        assert xrpc.status_code == 401
