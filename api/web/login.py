"""Sign in with ATProto OAuth, the callback, sign out, and the client's own metadata and keys."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.responses import Response

from api.sessions import (
    browser_id,
    clear_session,
    ensure_browser_id,
    forget_session,
    session_token,
    set_session,
)
from api.web.pages import CheckedForm, PageError, PageRouter, WebDep, redirect, render
from clients.identity import IdentityError
from clients.oauth import AuthorizationServerError, OAuthError
from clients.oauth.client import JWKS_PATH, METADATA_PATH
from clients.oauth.store import digest
from models.db import session_scope
from models.tables import User
from models.types import utcnow

log = logging.getLogger("huddle.web.login")
router = PageRouter()


def safe_next(value: object) -> str:
    """Only paths on this site: never `//evil.example` or `https://…`."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _same_origin_as_public(request: Request, public_url: str) -> bool:
    public = urlsplit(public_url)
    return request.url.hostname == public.hostname and (request.url.port or 80) == (public.port or 80)


@router.get("/login")
async def login_page(request: Request, web: WebDep, next: str = "/") -> Response:
    """The sign-in form: the visitor's handle."""
    if not _same_origin_as_public(request, web.settings.public_url):
        # The PDS sends the browser back to public_url: the login must start there for its cookies.
        return redirect(request, f"{web.settings.public_url.rstrip('/')}/login?next={safe_next(next)}")
    return render(request, "login.html", next=safe_next(next), identifier="", error=web.oauth_problem)


@router.post("/login")
async def login_start(request: Request, web: WebDep, form: CheckedForm) -> Response:
    """Find the account's server, push the authorization request, send the browser there."""
    identifier = str(form.get("identifier", "")).strip()
    back = safe_next(form.get("next"))
    try:
        pending = await web.sessions.client.start(identifier)
    except OAuthError as exc:
        log.info("sign-in for %r could not start: %s", identifier[:100], exc)
        return render(request, "login.html", status=400, next=back, identifier=identifier, error=exc.message)
    await run_in_threadpool(
        web.sessions.save_login,
        pending,
        ensure_browser_id(request),
        back,
        timedelta(seconds=web.settings.oauth_login_ttl_seconds),
    )
    return redirect(request, pending.authorize_url)


@router.get("/oauth/callback")
async def login_callback(request: Request, web: WebDep) -> Response:
    """The authorization server sends the browser back here with a code (or an error)."""
    params = dict(request.query_params)
    state = params.get("state", "")
    login = await run_in_threadpool(web.sessions.take_login, state) if state else None
    if login is None:
        raise PageError(
            400,
            "This sign-in link has expired",
            "The sign-in took too long or was already used.",
            "Sign in again from the start.",
        )
    current = browser_id(request)
    if current is None or digest(current) != login.browser_digest:
        raise PageError(
            400,
            "Sign-in started in another browser",
            "For your safety, a sign-in must finish in the browser where it started.",
            "Sign in again from this browser.",
        )
    try:
        tokens = await web.sessions.client.complete(login.pending, params)
    except AuthorizationServerError as exc:
        if exc.error == "access_denied":
            raise PageError(
                400,
                "You did not allow Huddle in",
                "Your server says the sign-in was cancelled or refused.",
                "Sign in again and choose Authorize when your server asks.",
            ) from exc
        raise PageError(
            502, "Your server refused the sign-in", exc.message, "Try again in a moment."
        ) from exc
    except OAuthError as exc:
        raise PageError(400, "We could not sign you in", exc.message, "Sign in again.") from exc
    handle = None
    try:
        handle = await web.identity.verified_handle(tokens.did)
    except IdentityError:
        pass  # shown as the DID until the firehose or a later sign-in tells us the handle
    await run_in_threadpool(_remember_user, web.engine, tokens.did, handle)
    token = await run_in_threadpool(web.sessions.create, tokens, login.pending.dpop_key)
    response = redirect(request, login.return_to or "/")
    set_session(response, web.settings, token)
    return response


def _remember_user(engine: Any, did: str, handle: str | None) -> None:
    with session_scope(engine) as session:
        user = session.get(User, did) or User(did=did)
        if handle is not None:
            user.handle = handle
        user.updated_at = utcnow()
        session.add(user)


@router.post("/logout")
async def logout(request: Request, web: WebDep, form: CheckedForm) -> Response:
    """Sign out: the session is revoked at the account's server and forgotten here."""
    token = session_token(request)
    if token is not None:
        await web.sessions.end(token)
    forget_session(request)
    response = redirect(request, "/?notice=signed-out")
    clear_session(response, web.settings)
    return response


@router.get(METADATA_PATH)
async def client_metadata(web: WebDep) -> Response:
    """The confidential client's metadata document (its client_id URL)."""
    if web.oauth is None or not web.oauth.config.confidential:
        return JSONResponse(
            {"error": "NotFound", "message": "this server signs in as a loopback client"}, 404
        )
    return JSONResponse(web.oauth.config.metadata(), headers={"Cache-Control": "public, max-age=300"})


@router.get(JWKS_PATH)
async def client_jwks(web: WebDep) -> Response:
    """The public keys of the confidential client's `private_key_jwt` assertions."""
    if web.oauth is None or not web.oauth.config.confidential:
        return JSONResponse({"keys": []}, headers={"Cache-Control": "public, max-age=300"})
    return JSONResponse(web.oauth.config.jwks(), headers={"Cache-Control": "public, max-age=300"})
