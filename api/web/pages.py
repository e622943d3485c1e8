"""Rendering pages, who is looking, CSRF-checked forms, and error pages instead of JSON errors.

Web routes use `PageRouter()`: a PageError raised anywhere in a route (or its dependencies)
becomes a readable page with what to do next; SignInRequired becomes a redirect to the sign-in page.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from sqlmodel import Session
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from api.sessions import CSRF_FIELD, apply_cookies, csrf_ok, csrf_token, session_did
from api.web import words
from api.web.state import WebState
from models.tables import User

TZ_COOKIE = "huddle_tz"  # the browser's IANA zone, set by huddle.js; only used to show times
# Pages load only this site's CSS and JS, are never framed, and do not leak their URLs elsewhere.
# (No form-action: the sign-in form's answer redirects to the account's own server.)
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class PageError(Exception):
    """Something the visitor should read: a title, what happened, and what to do next."""

    def __init__(self, status: int, title: str, detail: str, next_step: str = "") -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.next_step = next_step


class SignInRequired(Exception):
    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as exc:
                return RedirectResponse(f"/login?next={quote(exc.back_to, safe='/')}", status_code=303)
            except PageError as exc:
                return await run_in_threadpool(error_page, request, exc)

        return handle


def error_page(request: Request, exc: PageError) -> Response:
    context = {"title": exc.title, "detail": exc.detail, "next_step": exc.next_step}
    return render(request, "message.html", status=exc.status, **context)


def PageRouter(**kwargs: Any) -> APIRouter:
    return APIRouter(route_class=PageRoute, include_in_schema=False, **kwargs)


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


WebDep = Annotated[WebState, Depends(web_state)]


@dataclass(frozen=True)
class Viewer:
    """Who is signed in to the web app."""

    did: str
    handle: str | None
    is_admin: bool

    @property
    def name(self) -> str:
        return f"@{self.handle}" if self.handle else self.did


def viewer(request: Request) -> Viewer | None:
    did = session_did(request)
    if did is None:
        return None
    web = web_state(request)
    with Session(web.engine) as session:
        user = session.get(User, did)
    return Viewer(did, user.handle if user else None, did in web.settings.admin_did_list)


def signed_in(request: Request) -> Viewer:
    found = viewer(request)
    if found is None:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(back)
    return found


ViewerDep = Annotated[Viewer | None, Depends(viewer)]
UserDep = Annotated[Viewer, Depends(signed_in)]


def viewer_zone(request: Request, fallback: str = "UTC") -> str:
    """The zone to show times in: the browser's (huddle.js tells us), else `fallback`."""
    return words.zone(unquote(request.cookies.get(TZ_COOKIE, "")), fallback).key


async def checked_form(request: Request) -> FormData:
    """The submitted form, after its CSRF token was checked."""
    form = await request.form()
    token = form.get(CSRF_FIELD)
    if not csrf_ok(request, token if isinstance(token, str) else None):
        raise PageError(
            403,
            "This form has expired",
            "We could not check that this form came from this browser's Huddle page.",
            "Go back, reload the page and send the form again.",
        )
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    web = web_state(request)
    seen = context.pop("viewer", None) or viewer(request)
    html = web.templates.get_template(template).render(
        request=request,
        viewer=seen,
        csrf_token=csrf_token(request),
        csrf_field=CSRF_FIELD,
        viewer_tz=viewer_zone(request),
        poll_seconds=web.settings.web_status_poll_seconds,
        w=words,
        **context,
    )
    response = HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
    apply_cookies(request, response)
    return response


def redirect(request: Request, url: str) -> RedirectResponse:
    """303 See Other (POST → GET), keeping any cookie this request minted."""
    response = RedirectResponse(url, status_code=303)
    apply_cookies(request, response)
    return response
