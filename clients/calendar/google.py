"""Google Calendar v3 through google-api-python-client (static discovery), OAuth through authlib.

Busy times come from `freebusy.query` (≤ 50 calendars and ≤ 60 days per call); when unanswered
invitations must not count as busy, from `events.list` instead, because free/busy counts them.
Events get a client-chosen id, so a retried insert answers 409 `duplicate` instead of a second event.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httplib2
import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest

from clients import calltrace
from clients.calendar.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRequestError,
    ProviderUnavailable,
    SyncTokenExpired,
    from_status,
    retry_after_seconds,
)
from clients.calendar.providers import (
    AccessTokens,
    BusyRead,
    CalendarInfo,
    ChangeSet,
    ChannelGrant,
    EventSpec,
    batches,
    rfc3339,
    time_chunks,
)
from kernel.calendar.intervals import Interval

SCOPES = (
    "openid",
    "email",
    "https://www.googleapis.com/auth/calendar.readonly",
    "https://www.googleapis.com/auth/calendar.events",
)
FREEBUSY_MAX_CALENDARS = 50
# Google refuses free/busy windows much over 90 days ("timeRangeTooLong"); stay well inside.
FREEBUSY_MAX_SPAN = timedelta(days=60)
_RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}
_TRANSIENT_CALENDAR_ERRORS = {"internalError", "backendError"}


class _NamedRequest(HttpRequest):  # type: ignore[misc]
    """Names each call's span after the API method (`calendar.events.insert`), not just its verb."""

    def execute(self, http: Any = None, num_retries: int = 0) -> Any:
        with calltrace.operation(self.methodId):
            return super().execute(http=http, num_retries=num_retries)


def event_id_for(key: str) -> str:
    """A valid client-chosen event id (base32hex: a–v and 0–9, 5–1024 chars) derived from our key."""
    raw = hashlib.sha256(key.encode()).digest()[:20]
    return "hud" + base64.b32hexencode(raw).decode().lower().rstrip("=")


class GoogleCalendar:
    def __init__(
        self,
        tokens: AccessTokens,
        *,
        api_endpoint: str = "",
        timeout: float = 20.0,
        ca_certs: str | None = None,
    ) -> None:
        self._tokens = tokens
        self._credentials = Credentials(token=tokens.current())
        # No refresh inside the transport: a 401 comes back to `_call`, which refreshes through Huddle.
        http = AuthorizedHttp(
            self._credentials,
            http=httplib2.Http(timeout=timeout, ca_certs=ca_certs),
            refresh_status_codes=(),
        )
        options = {"api_endpoint": api_endpoint} if api_endpoint else None
        self._service = build(
            "calendar",
            "v3",
            static_discovery=True,
            http=calltrace.TracedHttp("google", http),
            client_options=options,
            cache_discovery=False,
            requestBuilder=_NamedRequest,
        )

    # ------------------------------------------------------------------ plumbing

    def _call(self, request: Callable[[Any], Any]) -> Any:
        """Execute one API request; after a 401, once more with a refreshed token."""
        for attempt in (1, 2):
            try:
                return request(self._service).execute()
            except HttpError as exc:
                if exc.resp.status == 401 and attempt == 1:
                    self._credentials.token = self._tokens.refreshed()
                    continue
                raise _error(exc) from exc
            except (TimeoutError, httplib2.HttpLib2Error, OSError) as exc:
                raise ProviderUnavailable(f"Google Calendar unreachable: {exc!r}") from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._service.close()

    # ------------------------------------------------------------------ calendars

    def list_calendars(self) -> list[CalendarInfo]:
        calendars: list[CalendarInfo] = []
        page: str | None = None
        while True:
            answer = self._call(lambda s: s.calendarList().list(pageToken=page, maxResults=250))  # noqa: B023
            for item in answer.get("items", []):
                calendars.append(
                    CalendarInfo(
                        id=item["id"],
                        name=item.get("summaryOverride") or item.get("summary") or item["id"],
                        primary=bool(item.get("primary")),
                        writable=item.get("accessRole") in ("owner", "writer"),
                    )
                )
            page = answer.get("nextPageToken")
            if not page:
                return calendars

    def primary_calendar_id(self) -> str:
        """The account's primary calendar id, which is its email address."""
        answer = self._call(lambda s: s.calendarList().get(calendarId="primary"))
        return str(answer["id"])

    # ------------------------------------------------------------------ busy

    def busy(
        self, calendar_ids: list[str], start: datetime, end: datetime, *, unanswered_is_busy: bool
    ) -> BusyRead:
        if unanswered_is_busy:
            return self._freebusy(calendar_ids, start, end)
        read = BusyRead()
        for calendar_id in calendar_ids:
            try:
                read.intervals += self._busy_from_events(calendar_id, start, end)
            except ProviderNotFound as exc:
                read.errors[calendar_id] = f"notFound: {exc}"
        return read

    def _freebusy(self, calendar_ids: list[str], start: datetime, end: datetime) -> BusyRead:
        read = BusyRead()
        for ids in batches(calendar_ids, FREEBUSY_MAX_CALENDARS):
            for lo, hi in time_chunks(start, end, FREEBUSY_MAX_SPAN):
                body = {
                    "timeMin": rfc3339(lo),
                    "timeMax": rfc3339(hi),
                    "timeZone": "UTC",
                    "items": [{"id": cid} for cid in ids],
                }
                answer = self._call(lambda s: s.freebusy().query(body=body))  # noqa: B023
                calendars = answer.get("calendars", {})
                for cid in ids:
                    info = calendars.get(cid)
                    if info is None:
                        read.errors[cid] = "missing from the free/busy answer"
                        continue
                    reasons = [e.get("reason", "unknown") for e in info.get("errors", [])]
                    if any(r in _TRANSIENT_CALENDAR_ERRORS for r in reasons):
                        raise ProviderUnavailable(f"free/busy of {cid} failed: {', '.join(reasons)}")
                    if reasons:
                        read.errors[cid] = ", ".join(reasons)
                        continue
                    for block in info.get("busy", []):
                        read.intervals.append(Interval(_parse(block["start"]), _parse(block["end"])))
        return read

    def _busy_from_events(self, calendar_id: str, start: datetime, end: datetime) -> list[Interval]:
        busy: list[Interval] = []
        page: str | None = None
        while True:
            answer = self._call(
                lambda s: s.events().list(
                    calendarId=calendar_id,
                    timeMin=rfc3339(start),
                    timeMax=rfc3339(end),
                    singleEvents=True,
                    maxResults=2500,
                    pageToken=page,  # noqa: B023
                )
            )
            zone = _zone(answer.get("timeZone"))
            for item in answer.get("items", []):
                if _blocks_time(item) and (span := _event_span(item, zone)) is not None:
                    busy.append(span)
            page = answer.get("nextPageToken")
            if not page:
                return busy

    # ------------------------------------------------------------------ events

    def create_event(self, calendar_id: str, spec: EventSpec) -> str:
        event_id = event_id_for(spec.key)
        body = {"id": event_id, **_event_body(spec)}
        try:
            self._call(lambda s: s.events().insert(calendarId=calendar_id, body=body, sendUpdates="none"))
        except ProviderError as exc:
            if exc.status != 409:
                raise
            # Ours already (a retry after a lost response, or a deleted one): make it what we want.
            self._call(
                lambda s: s.events().patch(
                    calendarId=calendar_id,
                    eventId=event_id,
                    body={**_event_body(spec), "status": "confirmed"},
                    sendUpdates="none",
                )
            )
        return event_id

    def update_event(self, calendar_id: str, event_id: str, spec: EventSpec) -> None:
        self._call(
            lambda s: s.events().patch(
                calendarId=calendar_id, eventId=event_id, body=_event_body(spec), sendUpdates="none"
            )
        )

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        try:
            self._call(
                lambda s: s.events().delete(calendarId=calendar_id, eventId=event_id, sendUpdates="none")
            )
        except ProviderNotFound:
            pass  # 404, or 410 "deleted": gone already

    # ------------------------------------------------------------------ push + sync

    def watch(
        self, calendar_id: str, channel_id: str, token: str, address: str, expires_at: datetime
    ) -> ChannelGrant:
        body = {
            "id": channel_id,
            "type": "web_hook",
            "address": address,
            "token": token,
            "expiration": int(expires_at.timestamp() * 1000),
        }
        answer = self._call(lambda s: s.events().watch(calendarId=calendar_id, body=body))
        expiration = answer.get("expiration")
        granted = datetime.fromtimestamp(int(expiration) / 1000, UTC) if expiration else expires_at
        return ChannelGrant(external_id=str(answer["resourceId"]), expires_at=granted)

    def stop(self, channel_id: str, resource_id: str) -> None:
        try:
            self._call(lambda s: s.channels().stop(body={"id": channel_id, "resourceId": resource_id}))
        except ProviderNotFound:
            pass

    def changes(self, calendar_id: str, sync_token: str | None, since: datetime) -> tuple[ChangeSet, str]:
        """Events changed since `sync_token` (or a full sync from `since`), and the next sync token.

        Raises SyncTokenExpired on 410: the caller starts over without a token.
        """
        changes = ChangeSet(unknown=sync_token is None)
        page: str | None = None
        while True:
            params: dict[str, Any] = {"calendarId": calendar_id, "singleEvents": True, "maxResults": 2500}
            if sync_token:
                params["syncToken"] = sync_token
            else:
                params["timeMin"] = rfc3339(since)
            if page:
                params["pageToken"] = page
            try:
                answer = self._call(lambda s: s.events().list(**params))  # noqa: B023
            except ProviderNotFound as exc:
                if sync_token and exc.status == 410:
                    raise SyncTokenExpired(str(exc), status=410, reason=exc.reason) from exc
                raise
            zone = _zone(answer.get("timeZone"))
            for item in answer.get("items", []):
                span = _event_span(item, zone)
                if span is None:
                    changes.unknown = True  # a deletion carries no times
                else:
                    changes.ranges.append(span)
            page = answer.get("nextPageToken")
            if not page:
                return changes, str(answer.get("nextSyncToken", ""))


class GoogleOAuth:
    """The OAuth client: authorization URLs (offline access, incremental consent) and token calls."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        auth_uri: str,
        token_uri: str,
        timeout: float = 20.0,
        verify: str | bool = True,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._auth_uri = auth_uri
        self._token_uri = token_uri
        self._timeout = timeout
        self._verify = verify

    def _client(self, redirect_uri: str | None = None) -> OAuth2Session:
        client = OAuth2Session(
            client_id=self._client_id,
            client_secret=self._client_secret,
            scope=" ".join(SCOPES),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            default_timeout=self._timeout,
        )
        calltrace.trace_session(client, "google", "oauth")
        client.register_compliance_hook("access_token_response", _token_status)
        client.register_compliance_hook("refresh_token_response", _token_status)
        return client

    def authorization_url(
        self, *, redirect_uri: str, state: str, code_verifier: str, login_hint: str | None = None
    ) -> str:
        extra = {"login_hint": login_hint} if login_hint else {}
        with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                self._auth_uri,
                state=state,
                code_verifier=code_verifier,
                access_type="offline",
                include_granted_scopes="true",
                prompt="consent",
                **extra,
            )
        return str(url)

    def exchange(self, *, redirect_uri: str, code: str, code_verifier: str) -> dict[str, Any]:
        with self._client(redirect_uri) as client:
            return _token_call(
                lambda: client.fetch_token(
                    self._token_uri, code=code, code_verifier=code_verifier, verify=self._verify
                )
            )

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        with self._client() as client:
            return _token_call(
                lambda: client.refresh_token(
                    self._token_uri, refresh_token=refresh_token, verify=self._verify
                )
            )


def _token_status(resp: requests.Response) -> requests.Response:
    if resp.status_code == 429 or resp.status_code >= 500:
        raise from_status(
            resp.status_code,
            f"Google token endpoint answered {resp.status_code}",
            retry_after=resp.headers.get("retry-after"),
        )
    return resp


def _token_call(call: Callable[[], Any]) -> dict[str, Any]:
    try:
        return dict(call())
    except OAuthError as exc:
        if exc.error in ("invalid_grant", "unauthorized_client"):
            raise ProviderAuthError(f"Google refused the grant: {exc.error}", reason=exc.error) from exc
        if exc.error in ("temporarily_unavailable", "server_error"):
            raise ProviderUnavailable(f"Google token endpoint: {exc.error}", reason=exc.error) from exc
        raise ProviderRequestError(f"Google token endpoint: {exc.error}", reason=exc.error) from exc
    except requests.RequestException as exc:
        raise ProviderUnavailable(f"Google token endpoint unreachable: {exc!r}") from exc
    except ValueError as exc:  # not JSON: a proxy's error page
        raise ProviderUnavailable(f"Google token endpoint answered garbage: {exc}") from exc


def _error(exc: HttpError) -> ProviderError:
    status = int(exc.resp.status)
    reason = None
    message = str(exc.reason or "")
    try:
        payload = json.loads(exc.content or b"{}")
        error = payload.get("error", {})
        message = error.get("message", message)
        reason = (error.get("errors") or [{}])[0].get("reason")
    except (ValueError, AttributeError):
        pass
    text = f"Google Calendar answered {status} {reason or ''}: {message}".strip()
    retry_after = exc.resp.get("retry-after")
    if status == 403 and reason in _RATE_LIMIT_REASONS:
        return ProviderRateLimited(
            text, retry_after=retry_after_seconds(retry_after), status=403, reason=reason
        )
    if status == 401:
        return ProviderAuthError(text, status=status, reason=reason)
    return from_status(status, text, retry_after=retry_after, reason=reason)


def _event_body(spec: EventSpec) -> dict[str, Any]:
    body: dict[str, Any] = {
        "summary": spec.summary,
        "description": spec.description,
        "start": {"dateTime": rfc3339(spec.start), "timeZone": spec.timezone},
        "end": {"dateTime": rfc3339(spec.end), "timeZone": spec.timezone},
        "transparency": "opaque",
        "extendedProperties": {"private": {"huddleKey": spec.key}},
    }
    if spec.location:
        body["location"] = spec.location
    return body


def _blocks_time(item: dict[str, Any]) -> bool:
    """Busy unless cancelled, transparent, or an invitation the owner declined or has not answered."""
    if item.get("status") == "cancelled" or item.get("transparency") == "transparent":
        return False
    me = next((a for a in item.get("attendees", []) if a.get("self")), None)
    return me is None or me.get("responseStatus") not in ("declined", "needsAction")


def _event_span(item: dict[str, Any], zone: ZoneInfo) -> Interval | None:
    start, end = item.get("start"), item.get("end")
    if not start or not end:
        return None
    return Interval(_when(start, zone), _when(end, zone))


def _when(value: dict[str, Any], zone: ZoneInfo) -> datetime:
    if "dateTime" in value:
        return _parse(value["dateTime"])
    day = date.fromisoformat(value["date"])
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
