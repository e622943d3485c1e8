"""Microsoft Graph calendars over httpx; OAuth through MSAL with a token cache per account.

Busy times: `getSchedule` for the default calendar of a work or school mailbox (windows under 62
days), `calendarView` for other calendars and for personal accounts, where getSchedule is not
offered. Events carry a `transactionId`, so Graph answers a retried create with the event it made.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import msal
import requests

from clients.calendar.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderNotFound,
    ProviderRequestError,
    ProviderUnavailable,
    from_status,
)
from clients.calendar.providers import (
    AccessTokens,
    BusyRead,
    CalendarInfo,
    ChannelGrant,
    EventSpec,
    batches,
    time_chunks,
    tls_verify,
)
from clients.calltrace import TracedTransport, trace_session
from kernel.calendar.intervals import Interval

SCOPES = ["Calendars.ReadWrite", "User.Read"]
CONSUMER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"  # personal Microsoft accounts
SCHEDULE_MAX_SPAN = timedelta(days=61)  # getSchedule refuses 62 days and more
SCHEDULE_MAX_MAILBOXES = 20
VIEW_SPAN = timedelta(days=61)
# Outlook event subscriptions live at most 10080 minutes; ask for a little less.
SUBSCRIPTION_MAX = timedelta(minutes=10070)
_FREE = {"free", "workingElsewhere"}
# MSAL caches OIDC discovery per process instead of fetching it for every token call.
_HTTP_CACHE: dict[Any, Any] = {}


class MicrosoftCalendar:
    def __init__(
        self,
        tokens: AccessTokens,
        *,
        graph_url: str,
        mailbox: str = "",
        account_kind: str = "work",
        default_calendar_id: str | None = None,
        timeout: float = 20.0,
        verify: str | bool = True,
    ) -> None:
        self._tokens = tokens
        self._token = tokens.current()
        self._base = graph_url.rstrip("/")
        self._mailbox = mailbox
        self._kind = account_kind
        self._default_calendar_id = default_calendar_id
        self._http = httpx.Client(
            timeout=timeout,
            transport=TracedTransport("microsoft", httpx.HTTPTransport(verify=tls_verify(verify))),
        )

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ plumbing

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = path if path.startswith("http") else f"{self._base}{path}"
        headers = {"Prefer": 'outlook.timezone="UTC"', **kwargs.pop("headers", {})}
        for attempt in (1, 2):
            try:
                resp = self._http.request(
                    method, url, headers={**headers, "Authorization": f"Bearer {self._token}"}, **kwargs
                )
            except httpx.HTTPError as exc:
                raise ProviderUnavailable(f"Microsoft Graph unreachable: {exc!r}") from exc
            if resp.status_code == 401 and attempt == 1:
                self._token = self._tokens.refreshed()
                continue
            if resp.status_code >= 400:
                raise _error(resp)
            return resp
        raise AssertionError("unreachable")

    def _pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        url: str | None = path
        while url:
            answer = self._request("GET", url, params=params).json()
            params = None  # the next link carries them
            yield from answer.get("value", [])
            url = answer.get("@odata.nextLink")

    # ------------------------------------------------------------------ calendars

    def me(self) -> dict[str, Any]:
        return dict(self._request("GET", "/me").json())

    def list_calendars(self) -> list[CalendarInfo]:
        return [
            CalendarInfo(
                id=item["id"],
                name=item.get("name", ""),
                primary=bool(item.get("isDefaultCalendar")),
                writable=bool(item.get("canEdit", True)),
            )
            for item in self._pages("/me/calendars", {"$top": 100})
        ]

    # ------------------------------------------------------------------ busy

    def busy(
        self, calendar_ids: list[str], start: datetime, end: datetime, *, unanswered_is_busy: bool
    ) -> BusyRead:
        read = BusyRead()
        by_schedule = self._kind == "work" and self._mailbox and self._default_calendar_id in calendar_ids
        for calendar_id in calendar_ids:
            if by_schedule and calendar_id == self._default_calendar_id:
                self._schedule_busy(read, calendar_id, start, end, unanswered_is_busy)
            else:
                self._view_busy(read, calendar_id, start, end, unanswered_is_busy)
        return read

    def _schedule_busy(
        self, read: BusyRead, calendar_id: str, start: datetime, end: datetime, unanswered_is_busy: bool
    ) -> None:
        for mailboxes in batches([self._mailbox], SCHEDULE_MAX_MAILBOXES):
            for lo, hi in time_chunks(start, end, SCHEDULE_MAX_SPAN):
                body = {
                    "schedules": mailboxes,
                    "startTime": _graph_time(lo),
                    "endTime": _graph_time(hi),
                    "availabilityViewInterval": 15,
                }
                answer = self._request("POST", "/me/calendar/getSchedule", json=body).json()
                for info in answer.get("value", []):
                    if error := info.get("error"):
                        read.errors[calendar_id] = f"{error.get('responseCode')}: {error.get('message')}"
                        continue
                    for item in info.get("scheduleItems", []):
                        status = item.get("status", "busy")
                        if status in _FREE or (status == "tentative" and not unanswered_is_busy):
                            continue
                        read.intervals.append(Interval(_parse(item["start"]), _parse(item["end"])))

    def _view_busy(
        self, read: BusyRead, calendar_id: str, start: datetime, end: datetime, unanswered_is_busy: bool
    ) -> None:
        fields = "id,start,end,showAs,isCancelled,responseStatus,isAllDay"
        try:
            for lo, hi in time_chunks(start, end, VIEW_SPAN):
                params = {
                    "startDateTime": _iso(lo),
                    "endDateTime": _iso(hi),
                    "$select": fields,
                    "$top": 500,
                }
                path = f"/me/calendars/{quote(calendar_id, safe='')}/calendarView"
                for event in self._pages(path, params):
                    if _view_blocks(event, unanswered_is_busy):
                        read.intervals.append(Interval(_parse(event["start"]), _parse(event["end"])))
        except ProviderNotFound as exc:
            read.errors[calendar_id] = str(exc)

    # ------------------------------------------------------------------ events

    def create_event(self, calendar_id: str, spec: EventSpec) -> str:
        body = {**_event_body(spec), "transactionId": spec.key}
        path = f"/me/calendars/{quote(calendar_id, safe='')}/events"
        return str(self._request("POST", path, json=body).json()["id"])

    def update_event(self, calendar_id: str, event_id: str, spec: EventSpec) -> None:
        self._request("PATCH", f"/me/events/{quote(event_id, safe='')}", json=_event_body(spec))

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        try:
            self._request("DELETE", f"/me/events/{quote(event_id, safe='')}")
        except ProviderNotFound:
            pass

    def event_span(self, event_id: str) -> Interval | None:
        """When an event is now; None if it is gone."""
        try:
            event = self._request(
                "GET", f"/me/events/{quote(event_id, safe='')}", params={"$select": "start,end"}
            ).json()
        except ProviderNotFound:
            return None
        return Interval(_parse(event["start"]), _parse(event["end"]))

    # ------------------------------------------------------------------ subscriptions

    def subscribe(
        self, calendar_id: str, client_state: str, address: str, expires_at: datetime
    ) -> ChannelGrant:
        expires_at = min(expires_at, datetime.now(UTC) + SUBSCRIPTION_MAX)
        body = {
            "changeType": "created,updated,deleted",
            "notificationUrl": address,
            "lifecycleNotificationUrl": address,
            "resource": f"/me/calendars/{calendar_id}/events",
            "expirationDateTime": _iso(expires_at),
            "clientState": client_state,
        }
        answer = self._request("POST", "/subscriptions", json=body).json()
        return ChannelGrant(
            external_id=str(answer["id"]), expires_at=_parse_iso(answer["expirationDateTime"])
        )

    def renew(self, subscription_id: str, expires_at: datetime) -> datetime:
        """Extend (and so reauthorize) a subscription; ProviderNotFound if Graph dropped it."""
        expires_at = min(expires_at, datetime.now(UTC) + SUBSCRIPTION_MAX)
        answer = self._request(
            "PATCH",
            f"/subscriptions/{quote(subscription_id, safe='')}",
            json={"expirationDateTime": _iso(expires_at)},
        ).json()
        return _parse_iso(answer["expirationDateTime"])

    def unsubscribe(self, subscription_id: str) -> None:
        try:
            self._request("DELETE", f"/subscriptions/{quote(subscription_id, safe='')}")
        except ProviderNotFound:
            pass


class MicrosoftOAuth:
    """MSAL confidential client; every connector keeps its own serialized token cache."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        authority: str,
        timeout: float = 20.0,
        verify: str | bool = True,
        instance_discovery: bool = True,
    ) -> None:
        self._instance_discovery = instance_discovery
        self._client_id = client_id
        self._client_secret = client_secret
        self._authority = authority
        self._timeout = timeout
        self._verify = verify

    def app(self, cache: msal.SerializableTokenCache) -> msal.ConfidentialClientApplication:
        try:
            return msal.ConfidentialClientApplication(
                self._client_id,
                client_credential=self._client_secret,
                authority=self._authority,
                token_cache=cache,
                http_client=_Session(self._verify, self._timeout),
                http_cache=_HTTP_CACHE,
                instance_discovery=self._instance_discovery,
            )
        except (requests.RequestException, ValueError) as exc:
            raise ProviderUnavailable(f"Microsoft sign-in metadata unavailable: {exc}") from exc

    def start(self, *, redirect_uri: str, state: str, login_hint: str | None = None) -> dict[str, Any]:
        """An auth code flow (PKCE, nonce, state); the caller keeps it until the redirect comes back."""
        # form_post (RFC 9700 §4.3.1): the code comes back in a POST body, never in a URL that
        # browser history, proxies' logs or a Referer could keep.
        flow = self.app(msal.SerializableTokenCache()).initiate_auth_code_flow(
            SCOPES, redirect_uri=redirect_uri, state=state, login_hint=login_hint, response_mode="form_post"
        )
        return dict(flow)

    def finish(
        self, flow: dict[str, Any], params: dict[str, str]
    ) -> tuple[dict[str, Any], msal.SerializableTokenCache]:
        cache = msal.SerializableTokenCache()
        try:
            result = self.app(cache).acquire_token_by_auth_code_flow(flow, params, scopes=SCOPES)
        except requests.RequestException as exc:
            raise ProviderUnavailable(f"Microsoft token endpoint unreachable: {exc!r}") from exc
        except ValueError as exc:  # state mismatch and other flow errors
            raise ProviderRequestError(f"Microsoft sign-in refused: {exc}") from exc
        _raise_for(result)
        return result, cache

    def acquire(self, serialized_cache: str, *, force_refresh: bool) -> tuple[dict[str, Any], str | None]:
        """A token for the cached account; returns the result and the cache if it changed."""
        cache = msal.SerializableTokenCache()
        cache.deserialize(serialized_cache)
        app = self.app(cache)
        accounts = app.get_accounts()
        if not accounts:
            raise ProviderAuthError("no Microsoft account in the token cache", reason="no_account")
        try:
            result = app.acquire_token_silent_with_error(SCOPES, accounts[0], force_refresh=force_refresh)
        except requests.RequestException as exc:
            raise ProviderUnavailable(f"Microsoft token endpoint unreachable: {exc!r}") from exc
        if result is None:
            raise ProviderAuthError("no refresh token for the Microsoft account", reason="no_refresh_token")
        _raise_for(result)
        return result, cache.serialize() if cache.has_state_changed else None


class _Session(requests.Session):
    """Every request with our timeout and CA choice (a session's own `verify` loses to
    REQUESTS_CA_BUNDLE in requests; a per-request one does not)."""

    def __init__(self, verify: str | bool, timeout: float) -> None:
        super().__init__()
        self._verify = verify
        self._timeout = timeout
        trace_session(self, "microsoft", "oauth")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self._timeout)
        kwargs["verify"] = self._verify
        return super().request(method, url, *args, **kwargs)


def _raise_for(result: dict[str, Any]) -> None:
    error = result.get("error")
    if not error:
        return
    text = f"Microsoft sign-in: {error}: {result.get('error_description', '')}".strip()
    if error in ("invalid_grant", "interaction_required", "consent_required", "login_required"):
        raise ProviderAuthError(text, reason=error)
    if error in ("temporarily_unavailable", "server_error", "service_unavailable"):
        raise ProviderUnavailable(text, reason=error)
    raise ProviderRequestError(text, reason=error)


def _error(resp: httpx.Response) -> ProviderError:
    code = message = ""
    try:
        error = resp.json().get("error", {})
        code, message = error.get("code", ""), error.get("message", "")
    except ValueError:
        pass
    text = f"Microsoft Graph answered {resp.status_code} {code}: {message}".strip()
    if resp.status_code == 401:
        return ProviderAuthError(text, status=401, reason=code)
    if code in ("ErrorItemNotFound", "ResourceNotFound"):
        return ProviderNotFound(text, status=resp.status_code, reason=code)
    return from_status(resp.status_code, text, retry_after=resp.headers.get("retry-after"), reason=code)


def _view_blocks(event: dict[str, Any], unanswered_is_busy: bool) -> bool:
    if event.get("isCancelled") or event.get("showAs") in _FREE:
        return False
    response = (event.get("responseStatus") or {}).get("response", "none")
    if response == "declined":
        return False
    return not (response == "notResponded" and not unanswered_is_busy)


def _event_body(spec: EventSpec) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": spec.summary,
        "body": {"contentType": "text", "content": spec.description},
        "start": _graph_time(spec.start),
        "end": _graph_time(spec.end),
        "showAs": "busy",
    }
    if spec.location:
        body["location"] = {"displayName": spec.location}
    return body


def _graph_time(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: dict[str, Any]) -> datetime:
    """A Graph dateTimeTimeZone; with `Prefer: outlook.timezone="UTC"` the zone is UTC."""
    moment = datetime.fromisoformat(value["dateTime"])
    if moment.tzinfo is None:
        try:
            moment = moment.replace(tzinfo=ZoneInfo(value.get("timeZone") or "UTC"))
        except (KeyError, ValueError):
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
