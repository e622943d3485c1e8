"""The host's calendars: connect (Google, Microsoft, CalDAV), reconnect, choose calendars, disconnect.

Plain forms over the `com.huddle.connector.*` handlers (api/routes/connectors.py), called as the
signed-in host: the pages add no connector logic of their own.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session, col, select
from starlette.responses import Response

from api.auth import CallerIdentity, XrpcError
from api.deps import StateDep
from api.routes import connectors
from api.web.pages import CheckedForm, PageRouter, UserDep, Viewer, WebDep, redirect, render
from models.tables import CalendarConnector

router = PageRouter(prefix="/host/calendars")
NOTICES = {
    "connected": "Connected. Huddle now avoids the busy times of the calendars you chose.",
    "saved": "Saved.",
    "removed": "Disconnected: Huddle forgot this account's access and everything it cached.",
}


def _views(engine: Any, did: str) -> list[dict[str, Any]]:
    with Session(engine) as session:
        rows = session.exec(
            select(CalendarConnector)
            .where(CalendarConnector.owner_did == did)
            .order_by(col(CalendarConnector.id))
        ).all()
        return [connectors.connector_view(session, c) for c in rows]


def _page(
    request: Request, user: Viewer, views: list[dict[str, Any]], *, error: str | None = None
) -> Response:
    notice = NOTICES.get(request.query_params.get("notice", ""))
    if request.query_params.get("connector") and notice is None:
        notice = NOTICES["connected"]
    return render(
        request,
        "calendars.html",
        status=400 if error else 200,
        viewer=user,
        connectors=views,
        error=error,
        notice=notice,
    )


@router.get("")
def calendars_page(request: Request, web: WebDep, user: UserDep) -> Response:
    """Your connected calendars, their state, and forms to connect more."""
    return _page(request, user, _views(web.engine, user.did))


async def _call(request: Request, web: Any, user: Viewer, handler: Any, **kwargs: Any) -> Any:
    try:
        return await handler(**kwargs)
    except XrpcError as exc:
        views = await run_in_threadpool(_views, web.engine, user.did)
        raise _Shown(_page(request, user, views, error=exc.message)) from exc


class _Shown(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__("shown")
        self.response = response


@router.post("/connect")
async def connect(
    request: Request, state: StateDep, web: WebDep, user: UserDep, form: CheckedForm
) -> Response:
    """Google or Microsoft: off to the provider's consent page (and back to this page)."""
    body: dict[str, Any] = {"provider": str(form.get("provider", "")), "returnTo": "/host/calendars"}
    if form.get("connector"):
        body["connector"] = str(form.get("connector"))
    caller = CallerIdentity(user.did, "session")
    try:
        answer = await _call(
            request, web, user, connectors.start_oauth, state=state, caller=caller, body=body
        )
    except _Shown as shown:
        return shown.response
    return redirect(request, answer["authorizationUrl"])


@router.post("/caldav")
async def connect_caldav(
    request: Request, state: StateDep, web: WebDep, user: UserDep, form: CheckedForm
) -> Response:
    """A CalDAV account: server address, username and an app password."""
    body = {k: str(form.get(k, "")).strip() for k in ("serverUrl", "username", "password")}
    caller = CallerIdentity(user.did, "session")
    try:
        await _call(request, web, user, connectors.connect_caldav, state=state, caller=caller, body=body)
    except _Shown as shown:
        return shown.response
    return redirect(request, "/host/calendars?notice=connected")


@router.post("/{connector_id}")
async def choose(
    request: Request, state: StateDep, web: WebDep, user: UserDep, form: CheckedForm, connector_id: int
) -> Response:
    """Which calendars count as busy, and which one gets the booked meetings."""
    event = str(form.get("eventCalendar", "")) or None
    body = {
        "connector": connector_id,
        "busyCalendars": [str(v) for v in form.getlist("busyCalendars")],
        "eventCalendar": event,
    }
    caller = CallerIdentity(user.did, "session")
    try:
        await _call(request, web, user, connectors.update_connector, state=state, caller=caller, body=body)
    except _Shown as shown:
        return shown.response
    return redirect(request, "/host/calendars?notice=saved")


@router.post("/{connector_id}/delete")
async def disconnect(
    request: Request, state: StateDep, web: WebDep, user: UserDep, form: CheckedForm, connector_id: int
) -> Response:
    caller = CallerIdentity(user.did, "session")
    body = {"connector": connector_id}
    try:
        await _call(request, web, user, connectors.delete_connector, state=state, caller=caller, body=body)
    except _Shown as shown:
        return shown.response
    return redirect(request, "/host/calendars?notice=removed")


@router.post("/{connector_id}/refresh")
async def refresh_list(
    request: Request, state: StateDep, web: WebDep, user: UserDep, form: CheckedForm, connector_id: int
) -> Response:
    """Ask the provider again which calendars the account has."""
    caller = CallerIdentity(user.did, "session")
    try:
        await connectors.list_calendars(state=state, caller=caller, connector=str(connector_id), refresh=True)
    except XrpcError as exc:
        views = await run_in_threadpool(_views, web.engine, user.did)
        return _page(request, user, views, error=exc.message)
    return redirect(request, "/host/calendars?notice=saved")
