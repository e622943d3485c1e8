"""Web sessions in signed cookies, and CSRF tokens for every form.

Two cookies, both HttpOnly, SameSite=Lax, HMAC-signed with a key derived from HUDDLE_SECRET_KEY
(and `__Host-` prefixed, Secure, when Huddle is served over https):
- the *browser* cookie: a random id given to every visitor on the first page; CSRF tokens are an
  HMAC of it, and an OAuth login is tied to it (the callback must come back to the same browser);
- the *session* cookie: the token of a signed-in OAuthSession row (the row id is its digest).

Lax keeps the session across the redirect back from the PDS (a top-level GET) while other sites'
forms and scripts cannot send it along with a POST; the CSRF token covers the rest (same-site
subdomains, old browsers).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from fastapi import Request
from starlette.responses import Response

from models.settings import Settings

if TYPE_CHECKING:
    from clients.oauth import SessionStore

SESSION = "huddle_session"
BROWSER = "huddle_browser"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
BROWSER_MAX_AGE = 400 * 24 * 3600  # the longest lifetime browsers keep a cookie for
_STATE_DID = "huddle_session_did"
_STATE_NEW_BROWSER = "huddle_new_browser"


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.huddle.settings
    return settings


def secure_cookies(settings: Settings) -> bool:
    if settings.web_cookie_secure is not None:
        return settings.web_cookie_secure
    return settings.public_url.startswith("https://")


def cookie_name(settings: Settings, base: str) -> str:
    # __Host-: only ever set by this host, over https, for every path (no subdomain can plant it).
    return f"__Host-{base}" if secure_cookies(settings) else base


def _mac(settings: Settings, purpose: str, value: str) -> str:
    key = hashlib.sha256(b"huddle-web\x00" + settings.secret_key.encode()).digest()
    return hmac.new(key, f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()[:43]


def sign(settings: Settings, purpose: str, value: str) -> str:
    return f"{value}.{_mac(settings, purpose, value)}"


def unsign(settings: Settings, purpose: str, signed: str | None) -> str | None:
    if not signed or "." not in signed:
        return None
    value, _, mac = signed.rpartition(".")
    return value if hmac.compare_digest(mac, _mac(settings, purpose, value)) else None


# ---------------------------------------------------------------- the browser cookie and CSRF


def browser_id(request: Request) -> str | None:
    """This browser's id, from its (valid) cookie or minted earlier in this request."""
    minted: str | None = getattr(request.state, _STATE_NEW_BROWSER, None)
    if minted is not None:
        return minted
    settings = _settings(request)
    return unsign(settings, BROWSER, request.cookies.get(cookie_name(settings, BROWSER)))


def ensure_browser_id(request: Request) -> str:
    """The browser id, minting one (set on the response by `apply_cookies`) if it has none yet."""
    found = browser_id(request)
    if found is None:
        found = secrets.token_urlsafe(24)
        setattr(request.state, _STATE_NEW_BROWSER, found)
    return found


def apply_cookies(request: Request, response: Response) -> Response:
    """Set the browser cookie on `response` if this request minted one."""
    minted = getattr(request.state, _STATE_NEW_BROWSER, None)
    if minted is not None:
        settings = _settings(request)
        _set(response, settings, BROWSER, sign(settings, BROWSER, minted), BROWSER_MAX_AGE)
    return response


def csrf_token(request: Request) -> str:
    """The token forms must send back: an HMAC of this browser's id."""
    return _mac(_settings(request), "csrf", ensure_browser_id(request))


def csrf_ok(request: Request, submitted: str | None) -> bool:
    found = browser_id(request)
    if found is None or not submitted:
        return False
    return hmac.compare_digest(submitted, _mac(_settings(request), "csrf", found))


# ---------------------------------------------------------------- the session cookie


def session_token(request: Request) -> str | None:
    settings = _settings(request)
    return unsign(settings, SESSION, request.cookies.get(cookie_name(settings, SESSION)))


def set_session(response: Response, settings: Settings, token: str) -> None:
    _set(response, settings, SESSION, sign(settings, SESSION, token), settings.web_session_max_age_seconds)


def clear_session(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        cookie_name(settings, SESSION),
        path="/",
        secure=secure_cookies(settings),
        httponly=True,
        samesite="lax",
    )


def session_store(request: Request) -> SessionStore | None:
    web = getattr(request.app.state, "web", None)
    return getattr(web, "sessions", None)


def has_session_cookie(request: Request) -> bool:
    """Cheap (no database): might this request be signed in to the web app?"""
    if session_store(request) is None:
        return False
    return cookie_name(_settings(request), SESSION) in request.cookies


def session_did(request: Request) -> str | None:
    """The DID signed in with this request's session cookie; None without a valid one."""
    if hasattr(request.state, _STATE_DID):
        cached: str | None = getattr(request.state, _STATE_DID)
        return cached
    did = None
    store = session_store(request)  # None when the web app is not mounted: no sessions at all
    token = session_token(request) if store is not None else None
    if token is not None and store is not None:
        max_age = timedelta(seconds=_settings(request).web_session_max_age_seconds)
        did = store.did_of(token, max_age)
    setattr(request.state, _STATE_DID, did)
    return did


def forget_session(request: Request) -> None:
    """This request no longer counts as signed in (after sign-out)."""
    setattr(request.state, _STATE_DID, None)


def _set(response: Response, settings: Settings, base: str, value: str, max_age: int) -> None:
    response.set_cookie(
        cookie_name(settings, base),
        value,
        max_age=max_age,
        path="/",
        secure=secure_cookies(settings),
        httponly=True,
        samesite="lax",
    )
