"""Signed cookies and CSRF tokens (no database: a bare app with only settings)."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from api import sessions
from api.web.login import safe_next
from models.settings import Settings


def _app(**settings: object) -> FastAPI:
    app = FastAPI()
    cfg = Settings(_env_file=None, dev_mode=True, secret_key="k" * 32, **settings)  # type: ignore[call-arg]
    app.state.huddle = SimpleNamespace(settings=cfg)

    @app.get("/form")
    def form(request: Request) -> PlainTextResponse:
        return sessions.apply_cookies(request, PlainTextResponse(sessions.csrf_token(request)))  # type: ignore[return-value]

    @app.post("/check")
    async def check(request: Request) -> PlainTextResponse:
        data = await request.form()
        token = data.get(sessions.CSRF_FIELD)
        ok = sessions.csrf_ok(request, token if isinstance(token, str) else None)
        return PlainTextResponse("ok" if ok else "refused", status_code=200 if ok else 403)

    return app


def _client(app: FastAPI, base: str = "http://127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)


def test_signed_values_survive_only_untouched() -> None:
    cfg = Settings(_env_file=None, dev_mode=True, secret_key="k" * 32)  # type: ignore[call-arg]
    signed = sessions.sign(cfg, "huddle_session", "abc")
    assert sessions.unsign(cfg, "huddle_session", signed) == "abc"
    assert sessions.unsign(cfg, "huddle_browser", signed) is None  # another purpose
    assert sessions.unsign(cfg, "huddle_session", "abd" + signed[3:]) is None
    assert sessions.unsign(cfg, "huddle_session", None) is None
    other = Settings(_env_file=None, dev_mode=True, secret_key="z" * 32)  # type: ignore[call-arg]
    assert sessions.unsign(other, "huddle_session", signed) is None


async def test_a_csrf_token_works_only_with_the_browser_cookie_it_was_made_for() -> None:
    app = _app()
    async with _client(app) as browser, _client(app) as attacker:
        page = await browser.get("/form")
        cookie = page.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
        token = page.text
        assert (await browser.post("/check", data={"csrf_token": token})).status_code == 200
        assert (await browser.post("/check", data={"csrf_token": token[:-1] + "x"})).status_code == 403
        assert (await browser.post("/check", data={})).status_code == 403
        # Another browser (no cookie, or its own) cannot use a token it read elsewhere.
        assert (await attacker.post("/check", data={"csrf_token": token})).status_code == 403
        await attacker.get("/form")
        assert (await attacker.post("/check", data={"csrf_token": token})).status_code == 403
        # The same browser keeps one id: a second page does not re-mint the cookie.
        again = await browser.get("/form")
        assert "set-cookie" not in again.headers and again.text == token


async def test_https_cookies_are_secure_and_host_only() -> None:
    app = _app(public_url="https://huddle.example")
    async with _client(app, "https://huddle.example") as browser:
        page = await browser.get("/form")
        cookie = page.headers["set-cookie"]
        assert cookie.startswith("__Host-huddle_browser=") and "Secure" in cookie and "Path=/" in cookie
        assert (await browser.post("/check", data={"csrf_token": page.text})).status_code == 200


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/host", "/host"),
        ("/b?x=1", "/b?x=1"),
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        ("/\\evil", "/"),
        (None, "/"),
        ("", "/"),
    ],
)
def test_only_local_paths_are_returned_to(value: object, expected: str) -> None:
    assert safe_next(value) == expected
