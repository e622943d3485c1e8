"""A local Google Calendar v3 + OAuth 2.0 emulator, following Google's documented behaviour.

OAuth: the authorization endpoint consents at once for the account the test chose (`login_as`, or
`login_hint`), with PKCE S256, `access_type=offline` (a refresh token on consent) and
`include_granted_scopes` (grants accumulate). The token endpoint answers `invalid_grant` for used
codes, bad verifiers and revoked refresh tokens, `invalid_client` for a wrong secret.

Calendar: calendarList, freeBusy (≤ 50 calendars, `timeRangeTooLong` past 90 days, per-calendar
`notFound`), events list (singleEvents, incremental sync with `nextSyncToken`, 410 `fullSyncRequired`
for a stale token), insert with client-chosen ids (base32hex, 409 `duplicate`), patch, delete (410
`deleted` twice), events.watch channels (a `sync` message, then `exists` on every change) and
channels.stop. Errors use Google's JSON error shape; `faults` injects 429/5xx/lost responses.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.emulators.base import ProviderEmulator, post_status, s256, token_request

READ_SCOPES = {
    "https://www.googleapis.com/auth/calendar",
    "https://www.googleapis.com/auth/calendar.readonly",
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.events.readonly",
}
WRITE_SCOPES = {"https://www.googleapis.com/auth/calendar", "https://www.googleapis.com/auth/calendar.events"}
EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
MAX_FREEBUSY_SPAN = timedelta(days=90)
MAX_CHANNEL_TTL = timedelta(days=7)


def google_error(status: int, reason: str = "", message: str = "", domain: str = "global") -> dict[str, Any]:
    defaults = {
        400: ("badRequest", "Bad Request"),
        401: ("authError", "Invalid Credentials"),
        403: ("forbidden", "Forbidden"),
        404: ("notFound", "Not Found"),
        409: ("duplicate", "The requested identifier already exists."),
        410: ("deleted", "Resource has been deleted"),
        429: ("rateLimitExceeded", "Rate Limit Exceeded"),
        500: ("backendError", "Backend Error"),
        503: ("backendError", "Backend Error"),
    }
    default_reason, default_message = defaults.get(status, ("unknown", "Error"))
    message = message or default_message
    return {
        "error": {
            "errors": [{"domain": domain, "reason": reason or default_reason, "message": message}],
            "code": status,
            "message": message,
        }
    }


def _err(status: int, reason: str = "", message: str = "") -> JSONResponse:
    return JSONResponse(google_error(status, reason, message), status_code=status)


@dataclass
class GEvent:
    id: str
    calendar_id: str
    start: dict[str, str]
    end: dict[str, str]
    summary: str = ""
    description: str = ""
    status: str = "confirmed"
    transparency: str = "opaque"
    attendees: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))

    def resource(self) -> dict[str, Any]:
        if self.status == "cancelled":
            return {"kind": "calendar#event", "id": self.id, "status": "cancelled"}
        body: dict[str, Any] = {
            "kind": "calendar#event",
            "id": self.id,
            "etag": f'"{self.seq}"',
            "status": self.status,
            "summary": self.summary,
            "description": self.description,
            "start": self.start,
            "end": self.end,
            "transparency": self.transparency,
            "iCalUID": f"{self.id}@google.com",
            "updated": self.updated.isoformat().replace("+00:00", "Z"),
            **self.extra,
        }
        if self.attendees:
            body["attendees"] = self.attendees
        return body


@dataclass
class GCalendar:
    id: str
    summary: str
    owner: str
    primary: bool = False
    time_zone: str = "UTC"
    access_role: str = "owner"
    events: dict[str, GEvent] = field(default_factory=dict)
    seq: int = 0
    sync_floor: int = 0  # sync tokens below this are stale (410)

    def span(self, event: GEvent) -> tuple[datetime, datetime]:
        return _moment(event.start, self.time_zone), _moment(event.end, self.time_zone)


@dataclass
class Channel:
    id: str
    resource_id: str
    calendar_id: str
    address: str
    token: str | None
    expiration: datetime
    number: int = 0
    stopped: bool = False


class GoogleEmulator(ProviderEmulator[tuple[Channel, str]]):
    """Pushes are (channel, resource state) pairs, delivered as Google's webhook headers."""

    def __init__(self, client_id: str = "google-client", client_secret: str = "google-secret") -> None:
        super().__init__(push_thread="google-push")
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris: set[str] = set()
        self.calendars: dict[str, GCalendar] = {}
        self.accounts: set[str] = set()
        self.login_as: str | None = None
        self.deny_next = False
        self.token_lifetime = 3600
        self.grants: dict[str, set[str]] = {}  # account -> scopes granted so far
        self.codes: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, tuple[str, float, set[str]]] = {}
        self.refresh_tokens: dict[str, tuple[str, bool]] = {}  # token -> (account, revoked)
        self.channels: dict[str, Channel] = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> GoogleEmulator:
        routes = [
            Route("/o/oauth2/v2/auth", self.authorize, methods=["GET"]),
            Route("/token", self.token, methods=["POST"]),
            Route("/calendar/v3/users/me/calendarList", self.calendar_list, methods=["GET"]),
            Route("/calendar/v3/users/me/calendarList/{cid}", self.calendar_list_entry, methods=["GET"]),
            Route("/calendar/v3/freeBusy", self.freebusy, methods=["POST"]),
            Route("/calendar/v3/calendars/{cid}/events", self.events_list, methods=["GET"]),
            Route("/calendar/v3/calendars/{cid}/events", self.events_insert, methods=["POST"]),
            Route("/calendar/v3/calendars/{cid}/events/watch", self.events_watch, methods=["POST"]),
            Route("/calendar/v3/calendars/{cid}/events/{eid}", self.events_get, methods=["GET"]),
            Route("/calendar/v3/calendars/{cid}/events/{eid}", self.events_patch, methods=["PATCH"]),
            Route("/calendar/v3/calendars/{cid}/events/{eid}", self.events_delete, methods=["DELETE"]),
            Route("/calendar/v3/channels/stop", self.channels_stop, methods=["POST"]),
        ]
        self._serve(routes, google_error)
        return self

    @property
    def api_endpoint(self) -> str:
        return f"{self.url}/calendar/v3/"

    # ------------------------------------------------------------------ test helpers

    def add_account(self, email: str, *, time_zone: str = "UTC", others: tuple[str, ...] = ()) -> str:
        """An account with its primary calendar (id = email) and other calendars (`others` ids)."""
        with self.lock:
            self.accounts.add(email)
            self.calendars[email] = GCalendar(email, email, email, primary=True, time_zone=time_zone)
            for other in others:
                self.calendars[other] = GCalendar(other, other, email, time_zone=time_zone)
        return email

    def add_event(
        self,
        calendar_id: str,
        start: datetime,
        end: datetime,
        *,
        summary: str = "Busy",
        transparency: str = "opaque",
        self_response: str | None = None,
        event_id: str | None = None,
    ) -> str:
        """An event made by someone else's client (or an invitation, with `self_response`)."""
        with self.lock:
            calendar = self.calendars[calendar_id]
            attendees = []
            if self_response is not None:
                attendees = [
                    {"email": "organizer@example.test", "organizer": True, "responseStatus": "accepted"},
                    {"email": calendar.owner, "self": True, "responseStatus": self_response},
                ]
            event = GEvent(
                id=event_id or secrets.token_hex(10),
                calendar_id=calendar_id,
                start={"dateTime": _iso(start)},
                end={"dateTime": _iso(end)},
                summary=summary,
                transparency=transparency,
                attendees=attendees,
            )
            self._store(calendar, event)
        return event.id

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        with self.lock:
            calendar = self.calendars[calendar_id]
            event = calendar.events[event_id]
            event.status = "cancelled"
            self._store(calendar, event)

    def live_events(self, calendar_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                e.resource() for e in self.calendars[calendar_id].events.values() if e.status != "cancelled"
            ]

    def grant(self, account: str, scopes: set[str] | None = None) -> tuple[str, str]:
        """(access token, refresh token) as a finished consent would give (for provider-level tests)."""
        scopes = scopes or set(READ_SCOPES | WRITE_SCOPES)
        with self.lock:
            self.grants[account] = self.grants.get(account, set()) | scopes
            access = self._issue(account, scopes)["access_token"]
            refresh = "1//" + secrets.token_urlsafe(32)
            self.refresh_tokens[refresh] = (account, False)
        return access, refresh

    def revoke(self, account: str) -> None:
        """The user revoked Huddle's access: refresh tokens fail with invalid_grant from now on."""
        with self.lock:
            for token, (owner, _) in list(self.refresh_tokens.items()):
                if owner == account:
                    self.refresh_tokens[token] = (owner, True)
            for token, (owner, _, _) in list(self.access_tokens.items()):
                if owner == account:
                    del self.access_tokens[token]

    def expire_access_tokens(self, account: str) -> None:
        with self.lock:
            for token, (owner, _, scopes) in list(self.access_tokens.items()):
                if owner == account:
                    self.access_tokens[token] = (owner, 0.0, scopes)

    def invalidate_sync_tokens(self, calendar_id: str) -> None:
        with self.lock:
            calendar = self.calendars[calendar_id]
            calendar.seq += 1
            calendar.sync_floor = calendar.seq

    def active_channels(self, calendar_id: str | None = None) -> list[Channel]:
        now = datetime.now(UTC)
        with self.lock:
            return [
                c
                for c in self.channels.values()
                if not c.stopped
                and c.expiration > now
                and (calendar_id is None or c.calendar_id == calendar_id)
            ]

    # ------------------------------------------------------------------ OAuth

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != self.client_id:
            return JSONResponse(
                {"error": "invalid_client", "error_description": "The OAuth client was not found."}, 401
            )
        redirect = q.get("redirect_uri", "")
        if redirect not in self.redirect_uris:
            return JSONResponse({"error": "redirect_uri_mismatch"}, 400)
        if q.get("response_type") != "code" or not q.get("scope"):
            return JSONResponse({"error": "invalid_request"}, 400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return JSONResponse({"error": "invalid_request", "error_description": "PKCE S256 required"}, 400)
        state = q.get("state", "")
        if self.deny_next:
            self.deny_next = False
            return RedirectResponse(
                f"{redirect}?{urlencode({'error': 'access_denied', 'state': state})}", 302
            )
        account = q.get("login_hint") if q.get("login_hint") in self.accounts else self.login_as
        if account not in self.accounts:
            return JSONResponse({"error": "no account signed in"}, 400)
        asked = set(q["scope"].split())
        with self.lock:
            granted = asked | (
                self.grants.get(account, set()) if q.get("include_granted_scopes") == "true" else set()
            )
            first = account not in self.grants
            self.grants[account] = self.grants.get(account, set()) | asked
            code = secrets.token_urlsafe(24)
            self.codes[code] = {
                "account": account,
                "redirect_uri": redirect,
                "challenge": q["code_challenge"],
                "scopes": granted,
                "offline": q.get("access_type") == "offline" and (first or q.get("prompt") == "consent"),
                "expires": time.time() + 600,
            }
        params = {"code": code, "state": state, "scope": " ".join(sorted(granted))}
        return RedirectResponse(f"{redirect}?{urlencode(params)}", 302)

    async def token(self, request: Request) -> Response:
        form, client_id, secret = await token_request(request)
        if client_id != self.client_id or secret != self.client_secret:
            return JSONResponse({"error": "invalid_client", "error_description": "Unauthorized"}, 401)
        grant = form.get("grant_type")
        with self.lock:
            if grant == "authorization_code":
                code = self.codes.pop(str(form.get("code", "")), None)
                if (
                    code is None
                    or code["expires"] < time.time()
                    or code["redirect_uri"] != form.get("redirect_uri")
                    or code["challenge"] != s256(str(form.get("code_verifier", "")))
                ):
                    return JSONResponse({"error": "invalid_grant", "error_description": "Bad Request"}, 400)
                answer = self._issue(code["account"], code["scopes"])
                if code["offline"]:
                    refresh = "1//" + secrets.token_urlsafe(32)
                    self.refresh_tokens[refresh] = (code["account"], False)
                    answer["refresh_token"] = refresh
                return JSONResponse(answer)
            if grant == "refresh_token":
                found = self.refresh_tokens.get(str(form.get("refresh_token", "")))
                if found is None or found[1]:
                    return JSONResponse(
                        {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
                        400,
                    )
                return JSONResponse(self._issue(found[0], self.grants.get(found[0], set())))
        return JSONResponse({"error": "unsupported_grant_type"}, 400)

    def _issue(self, account: str, scopes: set[str]) -> dict[str, Any]:
        token = "ya29." + secrets.token_urlsafe(32)
        self.access_tokens[token] = (account, time.time() + self.token_lifetime, set(scopes))
        return {
            "access_token": token,
            "expires_in": self.token_lifetime,
            "scope": " ".join(sorted(scopes)),
            "token_type": "Bearer",
        }

    def _caller(self, request: Request, needs: set[str]) -> tuple[str | None, Response | None]:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        with self.lock:
            found = self.access_tokens.get(token)
        if found is None or found[1] < time.time():
            return None, _err(401, "authError", "Invalid Credentials")
        if not (found[2] & needs):
            return None, _err(
                403, "insufficientPermissions", "Request had insufficient authentication scopes."
            )
        return found[0], None

    def _calendar(self, account: str, cid: str) -> GCalendar | None:
        if cid == "primary":
            cid = account
        calendar = self.calendars.get(cid)
        return calendar if calendar is not None and calendar.owner == account else None

    # ------------------------------------------------------------------ calendars

    async def calendar_list(self, request: Request) -> Response:
        account, refused = self._caller(request, READ_SCOPES)
        if refused:
            return refused
        with self.lock:
            items = [_list_entry(c) for c in self.calendars.values() if c.owner == account]
        return JSONResponse({"kind": "calendar#calendarList", "items": items})

    async def calendar_list_entry(self, request: Request) -> Response:
        account, refused = self._caller(request, READ_SCOPES)
        if refused:
            return refused
        assert account is not None
        with self.lock:
            calendar = self._calendar(account, request.path_params["cid"])
            if calendar is None:
                return _err(404, "notFound", "Not Found")
            return JSONResponse(_list_entry(calendar))

    async def freebusy(self, request: Request) -> Response:
        account, refused = self._caller(request, READ_SCOPES)
        if refused:
            return refused
        assert account is not None
        body = await request.json()
        try:
            lo, hi = _parse(body["timeMin"]), _parse(body["timeMax"])
        except (KeyError, ValueError):
            return _err(400, "required", "Missing timeMin or timeMax.")
        if hi <= lo:
            return _err(400, "timeRangeEmpty", "The specified time range is empty.")
        if hi - lo > MAX_FREEBUSY_SPAN:
            return _err(400, "timeRangeTooLong", "The requested time range is too long.")
        calendars: dict[str, Any] = {}
        with self.lock:
            for index, item in enumerate(body.get("items", [])):
                cid = item["id"]
                if index >= 50:
                    calendars[cid] = {
                        "errors": [{"domain": "calendar", "reason": "tooManyCalendarsRequested"}],
                        "busy": [],
                    }
                    continue
                calendar = self._calendar(account, cid)
                if calendar is None:
                    calendars[cid] = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
                    continue
                spans = sorted(calendar.span(e) for e in calendar.events.values() if _freebusy_counts(e))
                busy: list[list[datetime]] = []
                for start, end in spans:
                    start, end = max(start, lo), min(end, hi)
                    if start >= end:
                        continue
                    if busy and start <= busy[-1][1]:
                        busy[-1][1] = max(busy[-1][1], end)
                    else:
                        busy.append([start, end])
                calendars[cid] = {"busy": [{"start": _iso(s), "end": _iso(e)} for s, e in busy]}
        return JSONResponse(
            {"kind": "calendar#freeBusy", "timeMin": _iso(lo), "timeMax": _iso(hi), "calendars": calendars}
        )

    # ------------------------------------------------------------------ events

    async def events_list(self, request: Request) -> Response:
        account, refused = self._caller(request, READ_SCOPES)
        if refused:
            return refused
        assert account is not None
        q = request.query_params
        sync_token = q.get("syncToken")
        if sync_token and (q.get("timeMin") or q.get("timeMax") or q.get("orderBy")):
            return _err(400, "invalid", "Sync token cannot be used with timeMin, timeMax or orderBy.")
        with self.lock:
            calendar = self._calendar(account, request.path_params["cid"])
            if calendar is None:
                return _err(404, "notFound", "Not Found")
            if sync_token:
                since = _sync_seq(sync_token, calendar.id)
                if since is None or since < calendar.sync_floor:
                    return _err(
                        410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required."
                    )
                chosen = [e for e in calendar.events.values() if e.seq > since]
            else:
                lo = _parse(q["timeMin"]) if q.get("timeMin") else None
                hi = _parse(q["timeMax"]) if q.get("timeMax") else None
                show_deleted = q.get("showDeleted") == "true"
                chosen = []
                for event in calendar.events.values():
                    if event.status == "cancelled" and not show_deleted:
                        continue
                    start, end = calendar.span(event)
                    if (lo and end <= lo) or (hi and start >= hi):
                        continue
                    chosen.append(event)
            chosen.sort(key=lambda e: (e.seq, e.id))
            offset = int(q.get("pageToken") or 0)
            size = min(int(q.get("maxResults") or 250), 2500)
            page = chosen[offset : offset + size]
            answer: dict[str, Any] = {
                "kind": "calendar#events",
                "summary": calendar.summary,
                "timeZone": calendar.time_zone,
                "items": [e.resource() for e in page],
            }
            if offset + size < len(chosen):
                answer["nextPageToken"] = str(offset + size)
            else:
                answer["nextSyncToken"] = _sync_token(calendar.id, calendar.seq)
        return JSONResponse(answer)

    async def events_insert(self, request: Request) -> Response:
        account, refused = self._caller(request, WRITE_SCOPES)
        if refused:
            return refused
        assert account is not None
        body = await request.json()
        with self.lock:
            calendar = self._calendar(account, request.path_params["cid"])
            if calendar is None:
                return _err(404, "notFound", "Not Found")
            if calendar.access_role not in ("owner", "writer"):
                return _err(403, "requiredAccessLevel", "You need to have writer access to this calendar.")
            event_id = body.get("id") or secrets.token_hex(13)
            if not EVENT_ID.match(event_id):
                return _err(400, "invalid", "Invalid resource id value.")
            if event_id in calendar.events:
                return _err(409, "duplicate", "The requested identifier already exists.")
            if "start" not in body or "end" not in body:
                return _err(400, "required", "Missing end time.")
            event = GEvent(id=event_id, calendar_id=calendar.id, start=body["start"], end=body["end"])
            _apply(event, body)
            self._store(calendar, event)
            return JSONResponse(event.resource())

    async def events_get(self, request: Request) -> Response:
        account, refused = self._caller(request, READ_SCOPES)
        if refused:
            return refused
        assert account is not None
        with self.lock:
            calendar = self._calendar(account, request.path_params["cid"])
            event = calendar.events.get(request.path_params["eid"]) if calendar else None
            if event is None:
                return _err(404, "notFound", "Not Found")
            return JSONResponse(event.resource())

    async def events_patch(self, request: Request) -> Response:
        account, refused = self._caller(request, WRITE_SCOPES)
        if refused:
            return refused
        assert account is not None
        body = await request.json()
        with self.lock:
            calendar = self._calendar(account, request.path_params["cid"])
            event = calendar.events.get(request.path_params["eid"]) if calendar else None
            if calendar is None or event is None:
                return _err(404, "notFound", "Not Found")
            _apply(event, body)
            self._store(calendar, event)
            return JSONResponse(event.resource())

    async def events_delete(self, request: Request) -> Response:
        account, refused = self._caller(request, WRITE_SCOPES)
        if refused:
            return refused
        assert account is not None
        with self.lock:
            calendar = self._calendar(account, request.path_params["cid"])
            event = calendar.events.get(request.path_params["eid"]) if calendar else None
            if calendar is None or event is None:
                return _err(404, "notFound", "Not Found")
            if event.status == "cancelled":
                return _err(410, "deleted", "Resource has been deleted")
            event.status = "cancelled"
            self._store(calendar, event)
        return Response(status_code=204)

    def _store(self, calendar: GCalendar, event: GEvent) -> None:
        calendar.seq += 1
        event.seq = calendar.seq
        event.updated = datetime.now(UTC)
        calendar.events[event.id] = event
        for channel in self.active_channels(calendar.id):
            self._push((channel, "exists"))

    # ------------------------------------------------------------------ push

    async def events_watch(self, request: Request) -> Response:
        account, refused = self._caller(request, READ_SCOPES)
        if refused:
            return refused
        assert account is not None
        body = await request.json()
        if body.get("type") not in ("web_hook", "webhook") or not body.get("address") or not body.get("id"):
            return _err(400, "invalid", "Invalid channel.")
        now = datetime.now(UTC)
        asked = body.get("expiration")
        expiration = now + MAX_CHANNEL_TTL
        if asked:
            expiration = min(expiration, datetime.fromtimestamp(int(asked) / 1000, UTC))
        with self.lock:
            calendar = self._calendar(account, request.path_params["cid"])
            if calendar is None:
                return _err(404, "notFound", "Not Found")
            if body["id"] in self.channels:
                return _err(400, "channelIdNotUnique", "Channel id not unique.")
            channel = Channel(
                id=body["id"],
                resource_id=hashlib.sha1(calendar.id.encode()).hexdigest()[:27],
                calendar_id=calendar.id,
                address=body["address"],
                token=body.get("token"),
                expiration=expiration,
            )
            self.channels[channel.id] = channel
        self._push((channel, "sync"))
        return JSONResponse(
            {
                "kind": "api#channel",
                "id": channel.id,
                "resourceId": channel.resource_id,
                "resourceUri": f"{self.api_endpoint}calendars/{calendar.id}/events?alt=json",
                "token": channel.token,
                "expiration": str(int(expiration.timestamp() * 1000)),
            }
        )

    async def channels_stop(self, request: Request) -> Response:
        _, refused = self._caller(request, READ_SCOPES)
        if refused:
            return refused
        body = await request.json()
        with self.lock:
            channel = self.channels.get(body.get("id", ""))
            if channel is None or channel.resource_id != body.get("resourceId"):
                return _err(404, "notFound", f"Channel '{body.get('id')}' not found for project")
            channel.stopped = True
        return Response(status_code=204)

    def _deliver(self, http: httpx.Client, item: tuple[Channel, str]) -> dict[str, Any] | None:
        channel, state = item
        with self.lock:
            if channel.stopped:
                return None
            channel.number += 1
            number = channel.number
        headers = {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Channel-Expiration": format_datetime(channel.expiration, usegmt=True),
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-URI": f"{self.api_endpoint}calendars/{channel.calendar_id}/events",
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": str(number),
        }
        if channel.token is not None:
            headers["X-Goog-Channel-Token"] = channel.token
        status = post_status(http, channel.address, headers=headers)
        return {"channel": channel.id, "state": state, "status": status}


def _apply(event: GEvent, body: dict[str, Any]) -> None:
    for name in ("summary", "description", "status", "transparency", "start", "end", "attendees"):
        if name in body:
            setattr(event, name, body[name])
    for name in ("extendedProperties", "location", "reminders"):
        if name in body:
            event.extra[name] = body[name]


def _freebusy_counts(event: GEvent) -> bool:
    """Google's free/busy: cancelled, transparent and declined events are free; the rest busy."""
    if event.status == "cancelled" or event.transparency == "transparent":
        return False
    me = next((a for a in event.attendees if a.get("self")), None)
    return me is None or me.get("responseStatus") != "declined"


def _list_entry(calendar: GCalendar) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kind": "calendar#calendarListEntry",
        "id": calendar.id,
        "summary": calendar.summary,
        "timeZone": calendar.time_zone,
        "accessRole": calendar.access_role,
    }
    if calendar.primary:
        entry["primary"] = True
    return entry


def _sync_token(calendar_id: str, seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([calendar_id, seq]).encode()).decode()


def _sync_seq(token: str, calendar_id: str) -> int | None:
    try:
        cid, seq = json.loads(base64.urlsafe_b64decode(token.encode()))
    except ValueError:
        return None
    return int(seq) if cid == calendar_id else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("a time zone offset is required")
    return moment.astimezone(UTC)


def _moment(value: dict[str, str], zone: str) -> datetime:
    if "dateTime" in value:
        return _parse(value["dateTime"])
    day = date.fromisoformat(value["date"])
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(UTC)
