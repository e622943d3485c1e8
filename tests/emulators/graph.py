"""A local Microsoft identity platform (v2.0) + Microsoft Graph calendar emulator, served over HTTPS.

Identity: instance discovery, OIDC metadata, an authorize endpoint that consents at once for the
chosen user (PKCE S256, nonce, state), and a token endpoint issuing access tokens, rotating refresh
tokens, id tokens and client_info the way MSAL expects; `invalid_grant` (AADSTS700082) once revoked.

Graph: /me, /me/calendars, getSchedule (≤ 20 schedules, ErrorTimeIntervalTooBig at 62 days and
more, per-schedule errors), calendarView (paged with @odata.nextLink), events with `transactionId`
deduplication, subscriptions (the validationToken handshake within 10 s, clientState echoed,
10080-minute limit on Outlook events), change notifications and lifecycle notifications
(reauthorizationRequired, subscriptionRemoved, missed). `faults` injects 429 + Retry-After, 5xx and
lost responses.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.emulators.base import ProviderEmulator, post_status, s256, token_request
from tests.emulators.server import TlsFiles

CONSUMER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
MAX_SCHEDULE_WINDOW = timedelta(days=62)
MAX_SUBSCRIPTION = timedelta(minutes=10080)
# Unsigned: MSAL reads the claims and leaves validation to the app (Huddle takes none from it but tid).
ID_TOKEN_HEADER = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()


def graph_error(status: int, code: str = "", message: str = "") -> dict[str, Any]:
    defaults = {
        400: "BadRequest",
        401: "InvalidAuthenticationToken",
        403: "ErrorAccessDenied",
        404: "ErrorItemNotFound",
        429: "ApplicationThrottled",
        500: "generalException",
        503: "serviceNotAvailable",
        504: "UnknownError",
    }
    return {
        "error": {
            "code": code or defaults.get(status, "UnknownError"),
            "message": message or "Error",
            "innerError": {"date": datetime.now(UTC).isoformat(), "request-id": str(uuid.uuid4())},
        }
    }


def _err(status: int, code: str = "", message: str = "") -> JSONResponse:
    return JSONResponse(graph_error(status, code, message), status_code=status)


@dataclass
class MEvent:
    id: str
    calendar_id: str
    start: datetime
    end: datetime
    subject: str = ""
    body: str = ""
    show_as: str = "busy"
    response: str = "organizer"  # organizer | accepted | tentativelyAccepted | declined | notResponded | none
    cancelled: bool = False
    transaction_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def resource(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subject": self.subject,
            "body": {"contentType": "text", "content": self.body},
            "start": {"dateTime": _graph_dt(self.start), "timeZone": "UTC"},
            "end": {"dateTime": _graph_dt(self.end), "timeZone": "UTC"},
            "showAs": self.show_as,
            "isCancelled": self.cancelled,
            "isAllDay": False,
            "responseStatus": {"response": self.response, "time": "0001-01-01T00:00:00Z"},
            "transactionId": self.transaction_id,
            **self.extra,
        }


@dataclass
class MCalendar:
    id: str
    name: str
    owner: str
    default: bool = False
    can_edit: bool = True
    events: dict[str, MEvent] = field(default_factory=dict)


@dataclass
class MUser:
    upn: str
    oid: str
    tenant: str


@dataclass
class Subscription:
    id: str
    owner: str
    calendar_id: str
    resource: str
    change_types: set[str]
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expiration: datetime


class GraphEmulator(ProviderEmulator[tuple[str, dict[str, Any]]]):
    """Pushes are (URL, JSON body) pairs: change and lifecycle notifications."""

    def __init__(self, tls: TlsFiles, client_id: str = "ms-client", client_secret: str = "ms-secret") -> None:
        super().__init__(push_thread="graph-push")
        self.tls = tls
        self.client_id = client_id
        self.client_secret = client_secret
        self.work_tenant = str(uuid.uuid4())
        self.users: dict[str, MUser] = {}
        self.calendars: dict[str, MCalendar] = {}
        self.login_as: str | None = None
        self.token_lifetime = 3600
        self.codes: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, tuple[str, float]] = {}
        self.refresh_tokens: dict[str, tuple[str, bool]] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.require_https_webhooks = False  # Graph requires HTTPS; Huddle's test server speaks HTTP
        self.validation_timeout = 10.0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> GraphEmulator:
        routes = [
            Route("/common/discovery/instance", self.instance_discovery, methods=["GET"]),
            Route(
                "/{tenant}/v2.0/.well-known/openid-configuration", self.openid_configuration, methods=["GET"]
            ),
            Route("/{tenant}/oauth2/v2.0/authorize", self.authorize, methods=["GET"]),
            Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"]),
            Route("/v1.0/me", self.me, methods=["GET"]),
            Route("/v1.0/me/calendars", self.list_calendars, methods=["GET"]),
            Route("/v1.0/me/calendar/getSchedule", self.get_schedule, methods=["POST"]),
            Route("/v1.0/me/calendars/{cid}/calendarView", self.calendar_view, methods=["GET"]),
            Route("/v1.0/me/calendars/{cid}/events", self.create_event, methods=["POST"]),
            Route("/v1.0/me/events/{eid}", self.get_event, methods=["GET"]),
            Route("/v1.0/me/events/{eid}", self.patch_event, methods=["PATCH"]),
            Route("/v1.0/me/events/{eid}", self.delete_event_route, methods=["DELETE"]),
            Route("/v1.0/subscriptions", self.create_subscription, methods=["POST"]),
            Route("/v1.0/subscriptions/{sid}", self.renew_subscription, methods=["PATCH"]),
            Route("/v1.0/subscriptions/{sid}", self.delete_subscription, methods=["DELETE"]),
        ]
        self._serve(routes, graph_error, tls=self.tls)
        return self

    @property
    def authority(self) -> str:
        return f"{self.url}/common"

    @property
    def graph_url(self) -> str:
        return f"{self.url}/v1.0"

    # ------------------------------------------------------------------ test helpers

    def add_user(self, upn: str, *, personal: bool = False, others: tuple[str, ...] = ()) -> str:
        """A user with a default calendar (its id is returned) and other calendars named `others`."""
        with self.lock:
            self.users[upn] = MUser(upn, str(uuid.uuid4()), CONSUMER_TENANT if personal else self.work_tenant)
            default = "AAMk" + secrets.token_hex(12)
            self.calendars[default] = MCalendar(default, "Calendar", upn, default=True)
            for name in others:
                cid = "AAMk" + secrets.token_hex(12)
                self.calendars[cid] = MCalendar(cid, name, upn)
        return default

    def calendar_named(self, upn: str, name: str) -> str:
        with self.lock:
            return next(c.id for c in self.calendars.values() if c.owner == upn and c.name == name)

    def add_event(
        self,
        calendar_id: str,
        start: datetime,
        end: datetime,
        *,
        show_as: str = "busy",
        response: str = "organizer",
        subject: str = "Busy",
    ) -> str:
        with self.lock:
            calendar = self.calendars[calendar_id]
            event = MEvent(
                id="AAMkEv" + secrets.token_hex(12),
                calendar_id=calendar_id,
                start=start,
                end=end,
                subject=subject,
                show_as=show_as,
                response=response,
            )
            calendar.events[event.id] = event
            self._changed(calendar, event, "created")
        return event.id

    def live_events(self, calendar_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e.resource() for e in self.calendars[calendar_id].events.values()]

    def grant(self, upn: str) -> str:
        """An access token for the user (for provider-level tests)."""
        with self.lock:
            return str(self._issue(upn, None)["access_token"])

    def revoke(self, upn: str) -> None:
        with self.lock:
            for token, (owner, _) in list(self.refresh_tokens.items()):
                if owner == upn:
                    self.refresh_tokens[token] = (owner, True)
            for token, (owner, _) in list(self.access_tokens.items()):
                if owner == upn:
                    del self.access_tokens[token]

    def send_lifecycle(self, subscription_id: str, event: str) -> None:
        """A lifecycle notification: reauthorizationRequired, subscriptionRemoved or missed."""
        with self.lock:
            sub = self.subscriptions[subscription_id]
            if event == "subscriptionRemoved":
                del self.subscriptions[subscription_id]
            item = {
                "lifecycleEvent": event,
                "subscriptionId": sub.id,
                "subscriptionExpirationDateTime": _iso(sub.expiration),
                "clientState": sub.client_state,
                "tenantId": self.users[sub.owner].tenant,
            }
        self._push((sub.lifecycle_url or sub.notification_url, {"value": [item]}))

    def subscriptions_for(self, calendar_id: str) -> list[Subscription]:
        now = datetime.now(UTC)
        with self.lock:
            return [
                s for s in self.subscriptions.values() if s.calendar_id == calendar_id and s.expiration > now
            ]

    # ------------------------------------------------------------------ identity platform

    async def instance_discovery(self, request: Request) -> Response:
        host = f"127.0.0.1:{self.server.port if self.server else 0}"
        return JSONResponse(
            {
                "tenant_discovery_endpoint": f"{self.url}/common/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
            }
        )

    async def openid_configuration(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        return JSONResponse(
            {
                "issuer": f"{self.url}/{{tenantid}}/v2.0",
                "authorization_endpoint": f"{self.url}/{tenant}/oauth2/v2.0/authorize",
                "token_endpoint": f"{self.url}/{tenant}/oauth2/v2.0/token",
                "jwks_uri": f"{self.url}/{tenant}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "code id_token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "code_challenge_methods_supported": ["plain", "S256"],
            }
        )

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != self.client_id:
            return JSONResponse({"error": "unauthorized_client"}, 400)
        redirect = q.get("redirect_uri", "")
        if q.get("response_type") != "code" or not redirect:
            return JSONResponse({"error": "invalid_request"}, 400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return JSONResponse({"error": "invalid_request", "error_description": "AADSTS501491: PKCE"}, 400)
        upn = q.get("login_hint") if q.get("login_hint") in self.users else self.login_as
        if upn not in self.users:
            return JSONResponse({"error": "no user signed in"}, 400)
        code = "0.A" + secrets.token_urlsafe(32)
        with self.lock:
            self.codes[code] = {
                "upn": upn,
                "redirect_uri": redirect,
                "challenge": q["code_challenge"],
                "nonce": q.get("nonce"),
                "scope": q.get("scope", ""),
                "expires": time.time() + 600,
            }
        params = {"code": code, "state": q.get("state", ""), "session_state": str(uuid.uuid4())}
        if q.get("response_mode") == "form_post":
            return _form_post(redirect, params)
        return RedirectResponse(f"{redirect}?{urlencode(params)}", 302)

    async def token(self, request: Request) -> Response:
        form, client_id, secret = await token_request(request)
        if client_id != self.client_id or secret != self.client_secret:
            return _aad_error(
                401, "invalid_client", "AADSTS7000215: Invalid client secret provided.", 7000215
            )
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
                    return _aad_error(
                        400, "invalid_grant", "AADSTS70000: The provided code is invalid.", 70000
                    )
                return JSONResponse(self._issue(code["upn"], code["nonce"]))
            if grant == "refresh_token":
                found = self.refresh_tokens.get(str(form.get("refresh_token", "")))
                if found is None or found[1]:
                    return _aad_error(
                        400,
                        "invalid_grant",
                        "AADSTS700082: The refresh token has expired due to inactivity.",
                        700082,
                    )
                return JSONResponse(self._issue(found[0], None))
        return _aad_error(400, "unsupported_grant_type", "AADSTS70003", 70003)

    def _issue(self, upn: str, nonce: str | None) -> dict[str, Any]:
        user = self.users[upn]
        access = "eyJ0" + secrets.token_urlsafe(40)
        refresh = "0.AR" + secrets.token_urlsafe(40)
        self.access_tokens[access] = (upn, time.time() + self.token_lifetime)
        self.refresh_tokens[refresh] = (upn, False)  # the old one stays valid, as in Entra ID
        now = int(time.time())
        claims = {
            "aud": self.client_id,
            "iss": f"{self.url}/{user.tenant}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "name": upn.split("@")[0],
            "oid": user.oid,
            "preferred_username": upn,
            "sub": hashlib.sha256(user.oid.encode()).hexdigest()[:43],
            "tid": user.tenant,
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        client_info = _b64(json.dumps({"uid": user.oid, "utid": user.tenant}).encode())
        return {
            "token_type": "Bearer",
            "scope": "Calendars.ReadWrite User.Read openid profile offline_access",
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": access,
            "refresh_token": refresh,
            "id_token": f"{ID_TOKEN_HEADER}.{_b64(json.dumps(claims).encode())}.",
            "client_info": client_info,
        }

    def _caller(self, request: Request) -> tuple[str | None, Response | None]:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        with self.lock:
            found = self.access_tokens.get(token)
        if found is None or found[1] < time.time():
            return None, _err(
                401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."
            )
        return found[0], None

    def _calendar(self, upn: str, cid: str) -> MCalendar | None:
        calendar = self.calendars.get(cid)
        return calendar if calendar is not None and calendar.owner == upn else None

    # ------------------------------------------------------------------ Graph

    async def me(self, request: Request) -> Response:
        upn, refused = self._caller(request)
        if refused:
            return refused
        assert upn is not None
        user = self.users[upn]
        return JSONResponse(
            {"id": user.oid, "displayName": upn.split("@")[0], "mail": upn, "userPrincipalName": upn}
        )

    async def list_calendars(self, request: Request) -> Response:
        upn, refused = self._caller(request)
        if refused:
            return refused
        with self.lock:
            items = [
                {"id": c.id, "name": c.name, "isDefaultCalendar": c.default, "canEdit": c.can_edit}
                for c in self.calendars.values()
                if c.owner == upn
            ]
        return JSONResponse({"value": items})

    async def get_schedule(self, request: Request) -> Response:
        upn, refused = self._caller(request)
        if refused:
            return refused
        body = await request.json()
        schedules = body.get("schedules") or []
        if not schedules or len(schedules) > 20:
            return _err(400, "ErrorInvalidParameter", "schedules: between 1 and 20 entries.")
        try:
            lo, hi = _from_graph(body["startTime"]), _from_graph(body["endTime"])
        except (KeyError, ValueError):
            return _err(400, "ErrorInvalidParameter", "startTime and endTime are required.")
        if hi - lo >= MAX_SCHEDULE_WINDOW:
            days = (hi - lo).days + (1 if (hi - lo) % timedelta(days=1) else 0)
            return _err(
                400,
                "ErrorTimeIntervalTooBig",
                "The requested time duration specified for FreeBusyViewOptions.TimeWindow is too long. "
                f"The allowed limit = 62 days; the actual limit = {days} days.",
            )
        answers = []
        with self.lock:
            for mailbox in schedules:
                user = self.users.get(mailbox)
                if user is None or user.tenant != self.users[upn or ""].tenant:
                    answers.append(
                        {
                            "scheduleId": mailbox,
                            "error": {
                                "message": f"Mailbox {mailbox} not found.",
                                "responseCode": "ErrorMailRecipientNotFound",
                            },
                        }
                    )
                    continue
                default = next(c for c in self.calendars.values() if c.owner == mailbox and c.default)
                items = []
                for event in sorted(default.events.values(), key=lambda e: e.start):
                    if (
                        event.cancelled
                        or event.response == "declined"
                        or event.end <= lo
                        or event.start >= hi
                    ):
                        continue
                    status = "tentative" if event.response == "notResponded" else event.show_as
                    items.append(
                        {
                            "isPrivate": False,
                            "status": status,
                            "subject": event.subject,
                            "start": {"dateTime": _graph_dt(event.start), "timeZone": "UTC"},
                            "end": {"dateTime": _graph_dt(event.end), "timeZone": "UTC"},
                        }
                    )
                answers.append({"scheduleId": mailbox, "availabilityView": "", "scheduleItems": items})
        return JSONResponse({"value": answers})

    async def calendar_view(self, request: Request) -> Response:
        upn, refused = self._caller(request)
        if refused:
            return refused
        assert upn is not None
        q = request.query_params
        try:
            lo, hi = _parse(q["startDateTime"]), _parse(q["endDateTime"])
        except (KeyError, ValueError):
            return _err(400, "ErrorInvalidParameter", "startDateTime and endDateTime are required.")
        with self.lock:
            calendar = self._calendar(upn, request.path_params["cid"])
            if calendar is None:
                return _err(404, "ErrorItemNotFound", "The specified object was not found in the store.")
            events = sorted(
                (e for e in calendar.events.values() if e.end > lo and e.start < hi),
                key=lambda e: (e.start, e.id),
            )
        skip, top = int(q.get("$skip") or 0), int(q.get("$top") or 10)
        page = events[skip : skip + top]
        answer: dict[str, Any] = {"value": [e.resource() for e in page]}
        if skip + top < len(events):
            params = {k: v for k, v in q.items() if k != "$skip"}
            params["$skip"] = str(skip + top)
            answer["@odata.nextLink"] = (
                f"{self.graph_url}/me/calendars/{calendar.id}/calendarView?{urlencode(params)}"
            )
        return JSONResponse(answer)

    async def create_event(self, request: Request) -> Response:
        upn, refused = self._caller(request)
        if refused:
            return refused
        assert upn is not None
        body = await request.json()
        with self.lock:
            calendar = self._calendar(upn, request.path_params["cid"])
            if calendar is None:
                return _err(404, "ErrorItemNotFound", "The specified object was not found in the store.")
            if not calendar.can_edit:
                return _err(403, "ErrorAccessDenied", "Access is denied.")
            transaction = body.get("transactionId")
            if transaction:
                for existing in calendar.events.values():
                    if existing.transaction_id == transaction:
                        # A retry of a create we did: the event we made, not a second one.
                        return JSONResponse(existing.resource(), status_code=201)
            try:
                start, end = _from_graph(body["start"]), _from_graph(body["end"])
            except (KeyError, ValueError):
                return _err(400, "ErrorInvalidRequest", "start and end are required.")
            event = MEvent(
                id="AAMkEv" + secrets.token_hex(12),
                calendar_id=calendar.id,
                start=start,
                end=end,
                subject=body.get("subject", ""),
                body=(body.get("body") or {}).get("content", ""),
                show_as=body.get("showAs", "busy"),
                transaction_id=transaction,
            )
            calendar.events[event.id] = event
            self._changed(calendar, event, "created")
            return JSONResponse(event.resource(), status_code=201)

    def _find(self, upn: str, eid: str) -> tuple[MCalendar, MEvent] | None:
        for calendar in self.calendars.values():
            if calendar.owner == upn and eid in calendar.events:
                return calendar, calendar.events[eid]
        return None

    async def get_event(self, request: Request) -> Response:
        upn, refused = self._caller(request)
        if refused:
            return refused
        with self.lock:
            found = self._find(upn or "", request.path_params["eid"])
            if found is None:
                return _err(404, "ErrorItemNotFound", "The specified object was not found in the store.")
            return JSONResponse(found[1].resource())

    async def patch_event(self, request: Request) -> Response:
        upn, refused = self._caller(request)
        if refused:
            return refused
        body = await request.json()
        with self.lock:
            found = self._find(upn or "", request.path_params["eid"])
            if found is None:
                return _err(404, "ErrorItemNotFound", "The specified object was not found in the store.")
            calendar, event = found
            if "start" in body:
                event.start = _from_graph(body["start"])
            if "end" in body:
                event.end = _from_graph(body["end"])
            event.subject = body.get("subject", event.subject)
            event.show_as = body.get("showAs", event.show_as)
            self._changed(calendar, event, "updated")
            return JSONResponse(event.resource())

    async def delete_event_route(self, request: Request) -> Response:
        upn, refused = self._caller(request)
        if refused:
            return refused
        with self.lock:
            found = self._find(upn or "", request.path_params["eid"])
            if found is None:
                return _err(404, "ErrorItemNotFound", "The specified object was not found in the store.")
            calendar, event = found
            del calendar.events[event.id]
            self._changed(calendar, event, "deleted")
        return Response(status_code=204)

    # ------------------------------------------------------------------ subscriptions

    async def create_subscription(self, request: Request) -> Response:
        upn, refused = self._caller(request)
        if refused:
            return refused
        assert upn is not None
        body = await request.json()
        url = body.get("notificationUrl", "")
        lifecycle = body.get("lifecycleNotificationUrl")
        if self.require_https_webhooks and not url.startswith("https://"):
            return _err(400, "InvalidRequest", "The Notification Url must be HTTPS.")
        resource = str(body.get("resource", "")).strip("/")
        parts = resource.split("/")
        if len(parts) != 4 or parts[0] != "me" or parts[1] != "calendars" or parts[3] != "events":
            return _err(400, "InvalidRequest", f"Unsupported resource '{resource}'.")
        with self.lock:
            calendar = self._calendar(upn, parts[2])
        if calendar is None:
            return _err(404, "ResourceNotFound", "Resource not found.")
        client_state = body.get("clientState")
        if client_state is not None and len(client_state) > 128:
            return _err(400, "InvalidRequest", "clientState may be at most 128 characters.")
        try:
            expiration = _parse(body["expirationDateTime"])
        except (KeyError, ValueError):
            return _err(400, "InvalidRequest", "expirationDateTime is required.")
        if expiration > datetime.now(UTC) + MAX_SUBSCRIPTION:
            return _err(
                400,
                "ExtensionError",
                "Operation: Create; Exception: [Status Code: BadRequest; Reason: "
                "Subscription expiration can only be 10080 minutes in the future.]",
            )
        for target in dict.fromkeys(u for u in (url, lifecycle) if u):
            if not await self._validate_endpoint(target):
                return _err(
                    400,
                    "InvalidRequest",
                    "Subscription validation request failed. Notification endpoint must respond with 200 OK "
                    "to validation request.",
                )
        sub = Subscription(
            id=str(uuid.uuid4()),
            owner=upn,
            calendar_id=calendar.id,
            resource=resource,
            change_types=set(str(body.get("changeType", "")).split(",")),
            notification_url=url,
            lifecycle_url=lifecycle,
            client_state=client_state,
            expiration=expiration,
        )
        with self.lock:
            self.subscriptions[sub.id] = sub
        return JSONResponse(self._subscription_resource(sub), status_code=201)

    async def _validate_endpoint(self, url: str) -> bool:
        token = (
            f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
        )
        joiner = "&" if "?" in url else "?"
        try:
            async with httpx.AsyncClient(timeout=self.validation_timeout) as http:
                resp = await http.post(
                    f"{url}{joiner}{urlencode({'validationToken': token})}",
                    headers={"Content-Type": "text/plain; charset=utf-8"},
                )
        except httpx.HTTPError:
            return False
        return (
            resp.status_code == 200
            and resp.text == token
            and resp.headers.get("content-type", "").startswith("text/plain")
        )

    async def renew_subscription(self, request: Request) -> Response:
        upn, refused = self._caller(request)
        if refused:
            return refused
        body = await request.json()
        with self.lock:
            sub = self.subscriptions.get(request.path_params["sid"])
            if sub is None or sub.owner != upn:
                return _err(404, "ResourceNotFound", "The object was not found.")
            expiration = _parse(body["expirationDateTime"])
            if expiration > datetime.now(UTC) + MAX_SUBSCRIPTION:
                return _err(
                    400, "ExtensionError", "Subscription expiration can only be 10080 minutes in the future."
                )
            sub.expiration = expiration
            return JSONResponse(self._subscription_resource(sub))

    async def delete_subscription(self, request: Request) -> Response:
        upn, refused = self._caller(request)
        if refused:
            return refused
        with self.lock:
            sub = self.subscriptions.get(request.path_params["sid"])
            if sub is None or sub.owner != upn:
                return _err(404, "ResourceNotFound", "The object was not found.")
            del self.subscriptions[sub.id]
        return Response(status_code=204)

    def _subscription_resource(self, sub: Subscription) -> dict[str, Any]:
        return {
            "@odata.context": f"{self.graph_url}/$metadata#subscriptions/$entity",
            "id": sub.id,
            "resource": sub.resource,
            "applicationId": self.client_id,
            "changeType": ",".join(sorted(sub.change_types)),
            "clientState": sub.client_state,
            "notificationUrl": sub.notification_url,
            "lifecycleNotificationUrl": sub.lifecycle_url,
            "expirationDateTime": _iso(sub.expiration),
            "creatorId": self.users[sub.owner].oid,
            "latestSupportedTlsVersion": "v1_2",
        }

    def _changed(self, calendar: MCalendar, event: MEvent, change: str) -> None:
        user = self.users[calendar.owner]
        for sub in self.subscriptions_for(calendar.id):
            if change not in sub.change_types:
                continue
            path = f"Users/{user.oid}/Events/{event.id}"
            item = {
                "subscriptionId": sub.id,
                "subscriptionExpirationDateTime": _iso(sub.expiration),
                "changeType": change,
                "resource": path,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Event",
                    "@odata.id": path,
                    "@odata.etag": f'W/"{secrets.token_hex(8)}"',
                    "id": event.id,
                },
                "clientState": sub.client_state,
                "tenantId": user.tenant,
            }
            self._push((sub.notification_url, {"value": [item]}))

    def _deliver(self, http: httpx.Client, item: tuple[str, dict[str, Any]]) -> dict[str, Any] | None:
        url, payload = item
        return {"url": url, "payload": payload, "status": post_status(http, url, json=payload)}


def _form_post(action: str, params: dict[str, str]) -> HTMLResponse:
    """response_mode=form_post: the code comes back as a page whose form the browser POSTs at once
    (what login.microsoftonline.com answers), so it never lands in a URL, a log or a Referer."""
    fields = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}" />' for k, v in params.items()
    )
    body = (
        "<html><head><title>Working...</title></head><body>"
        f'<form method="POST" name="hiddenform" action="{html.escape(action)}">{fields}'
        "<noscript><p>Script is disabled. Click Submit to continue.</p>"
        '<input type="submit" value="Submit" /></noscript></form>'
        "<script>document.forms[0].submit()</script></body></html>"
    )
    return HTMLResponse(body)


def _aad_error(status: int, error: str, description: str, code: int) -> JSONResponse:
    return JSONResponse(
        {
            "error": error,
            "error_description": description,
            "error_codes": [code],
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        },
        status_code=status,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _graph_dt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _from_graph(value: dict[str, str]) -> datetime:
    from zoneinfo import ZoneInfo

    moment = datetime.fromisoformat(value["dateTime"])
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(value.get("timeZone") or "UTC"))
    return moment.astimezone(UTC)
