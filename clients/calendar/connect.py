"""Connecting calendars: OAuth for Google (authlib) and Microsoft (MSAL), credentials for CalDAV.

An OAuth flow starts with a single-use state bound to the owner who asked, kept (hashed, with the
PKCE verifier or MSAL flow encrypted) until the provider redirects back. Reconnecting an account the
owner already connected refreshes its secrets and keeps its calendar choices.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import col, delete

from clients.calendar.accounts import CalendarAccounts
from clients.calendar.busy_cache import BusyCache
from clients.calendar.errors import ProviderAuthError, ProviderError
from clients.calendar.google import GoogleCalendar
from clients.calendar.microsoft import CONSUMER_TENANT, MicrosoftCalendar
from clients.calendar.providers import CalendarInfo
from clients.secrets import digest
from models.calendar_tables import CalendarOAuthState
from models.db import session_scope
from models.settings import Settings
from models.types import utcnow

OAUTH_PROVIDERS = ("google", "microsoft")


class ConnectRefused(Exception):
    """The connect flow cannot finish: a bad or expired state, a refusal, wrong credentials."""


@dataclass(frozen=True)
class Connected:
    connector_id: int
    owner_did: str
    return_to: str | None = None


class FixedToken:
    """An access token just obtained in a connect flow (there is nothing to refresh yet)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def current(self) -> str:
        return self._token

    def refreshed(self) -> str:
        raise ProviderAuthError("the token from the connect flow was refused", reason="refused")


class ConnectFlows:
    def __init__(
        self, settings: Settings, accounts: CalendarAccounts, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._settings = settings
        self._accounts = accounts
        self._store = accounts.store
        self._clock = clock

    def callback_url(self, provider: str) -> str:
        return f"{self._settings.public_url.rstrip('/')}/oauth/calendar/{provider}/callback"

    # ------------------------------------------------------------------ OAuth

    def start(
        self,
        owner_did: str,
        provider: str,
        *,
        connector_id: int | None = None,
        return_to: str | None = None,
    ) -> tuple[str, datetime]:
        """The provider's authorization URL for this owner, and when the flow expires."""
        if provider not in OAUTH_PROVIDERS:
            raise ConnectRefused(f"{provider} is not an OAuth provider")
        hint = None
        if connector_id is not None:
            existing = self._store.get(connector_id)
            if existing is None or existing.owner_did != owner_did or existing.provider != provider:
                raise ConnectRefused("no such connector")
            hint = existing.account or None
        state = secrets.token_urlsafe(32)
        redirect = self.callback_url(provider)
        if provider == "google":
            verifier = secrets.token_urlsafe(64)
            url = self._accounts.google.authorization_url(
                redirect_uri=redirect, state=state, code_verifier=verifier, login_hint=hint
            )
            flow: dict[str, Any] = {"code_verifier": verifier}
        else:
            flow = self._accounts.microsoft.start(redirect_uri=redirect, state=state, login_hint=hint)
            url = str(flow["auth_uri"])
        expires_at = self._clock() + timedelta(seconds=self._settings.calendar_oauth_state_ttl_seconds)
        with session_scope(self._store.engine) as session:
            session.execute(
                delete(CalendarOAuthState).where(col(CalendarOAuthState.expires_at) < self._clock())
            )
            session.add(
                CalendarOAuthState(
                    state_digest=digest(state),
                    owner_did=owner_did,
                    provider=provider,
                    connector_id=connector_id,
                    flow_enc=self._store.ring.encrypt(json.dumps(flow)),
                    return_to=return_to,
                    expires_at=expires_at,
                )
            )
        return url, expires_at

    def finish(self, provider: str, params: dict[str, str]) -> Connected:
        """Complete a flow from the provider's redirect (its query parameters)."""
        pending = self._take_state(provider, params.get("state", ""))
        if "error" in params:
            raise ConnectRefused(f"{provider} said {params['error']}: {params.get('error_description', '')}")
        flow = json.loads(self._store.ring.decrypt(pending.flow_enc))
        if provider == "google":
            connector_id = self._finish_google(pending.owner_did, params, flow)
        else:
            connector_id = self._finish_microsoft(pending.owner_did, params, flow)
        self._accounts_changed(connector_id)
        return Connected(connector_id, pending.owner_did, pending.return_to)

    def _take_state(self, provider: str, state: str) -> CalendarOAuthState:
        if not state:
            raise ConnectRefused("the redirect carries no state")
        with session_scope(self._store.engine) as session:
            row = session.get(CalendarOAuthState, digest(state))
            if row is not None:
                session.delete(row)  # single use, whatever happens next
        if row is None or row.provider != provider:
            raise ConnectRefused("unknown or already used connect flow")
        if row.expires_at < self._clock():
            raise ConnectRefused("the connect flow expired; start again")
        return row

    def _finish_google(self, owner_did: str, params: dict[str, str], flow: dict[str, Any]) -> int:
        token = self._accounts.google.exchange(
            redirect_uri=self.callback_url("google"),
            code=params.get("code", ""),
            code_verifier=flow["code_verifier"],
        )
        client = GoogleCalendar(
            FixedToken(token["access_token"]),
            api_endpoint=self._settings.google_api_endpoint,
            timeout=self._settings.calendar_http_timeout_seconds,
            ca_certs=self._settings.calendar_ca_bundle or None,
        )
        try:
            account = client.primary_calendar_id()
            calendars = client.list_calendars()
        finally:
            client.close()
        primary = next((c.id for c in calendars if c.primary), account)
        connector_id = self._store.upsert(
            owner_did=owner_did,
            provider="google",
            account=account,
            secrets={"access_token": token["access_token"], "refresh_token": token.get("refresh_token")},
            token_expires_at=_expiry(self._clock(), token.get("expires_in")),
            default_busy=[primary],
            default_event=primary,
        )
        self._store.save_detail(
            connector_id, calendars=[c.to_json() for c in calendars], scopes=str(token.get("scope", ""))
        )
        return connector_id

    def _finish_microsoft(self, owner_did: str, params: dict[str, str], flow: dict[str, Any]) -> int:
        result, cache = self._accounts.microsoft.finish(flow, params)
        claims = result.get("id_token_claims") or {}
        kind = "personal" if claims.get("tid") == CONSUMER_TENANT else "work"
        client = MicrosoftCalendar(
            FixedToken(result["access_token"]),
            graph_url=self._settings.microsoft_graph_url,
            timeout=self._settings.calendar_http_timeout_seconds,
            verify=self._accounts.verify,
        )
        try:
            me = client.me()
            calendars = client.list_calendars()
        finally:
            client.close()
        account = str(me.get("mail") or me.get("userPrincipalName") or claims.get("preferred_username", ""))
        primary = next((c.id for c in calendars if c.primary), calendars[0].id if calendars else None)
        connector_id = self._store.upsert(
            owner_did=owner_did,
            provider="microsoft",
            account=account,
            secrets={"token_cache": cache.serialize()},
            token_expires_at=_expiry(self._clock(), result.get("expires_in")),
            default_busy=[primary] if primary else [],
            default_event=primary,
        )
        self._store.save_detail(
            connector_id,
            calendars=[c.to_json() for c in calendars],
            scopes=str(result.get("scope", "")),
            account_kind=kind,
        )
        return connector_id

    # ------------------------------------------------------------------ CalDAV

    def connect_caldav(self, owner_did: str, server_url: str, username: str, password: str) -> int:
        self.check_server_url(server_url)
        client = self._accounts.caldav_client(server_url, username, password)
        try:
            calendars = client.list_calendars()
        except ProviderAuthError as exc:
            raise ConnectRefused("the CalDAV server refused the username or password") from exc
        except ProviderError as exc:
            raise ConnectRefused(f"could not reach calendars at {server_url}: {exc}") from exc
        finally:
            client.close()
        if not calendars:
            raise ConnectRefused("the CalDAV account has no calendars")
        connector_id = self._store.upsert(
            owner_did=owner_did,
            provider="caldav",
            account=username,
            server_url=server_url,
            secrets={"password": password},
            default_busy=[c.id for c in calendars],
            default_event=calendars[0].id,
        )
        self._store.save_detail(connector_id, calendars=[c.to_json() for c in calendars])
        self._accounts_changed(connector_id)
        return connector_id

    def check_server_url(self, server_url: str) -> None:
        """https only, and never an address inside our own network (outside dev mode)."""
        parts = urlsplit(server_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConnectRefused("serverUrl must be an http(s) URL")
        relaxed = self._settings.dev_mode or self._settings.calendar_allow_private_servers
        if parts.scheme != "https" and not self._settings.dev_mode:
            raise ConnectRefused("serverUrl must use https")
        if relaxed:
            return
        try:
            infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            raise ConnectRefused(f"cannot resolve {parts.hostname}") from exc
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if not address.is_global:
                raise ConnectRefused(f"{parts.hostname} resolves to a private address")

    # ------------------------------------------------------------------ helpers

    def calendars(self, connector_id: int, *, refresh: bool) -> list[CalendarInfo]:
        """The calendars the account can see (from the provider if asked to refresh, or never read)."""
        detail = self._store.detail(connector_id)
        if detail.calendars and not refresh:
            return [CalendarInfo.from_json(c) for c in detail.calendars]
        connector = self._store.get(connector_id)
        if connector is None:
            return []
        provider = self._accounts.provider(connector)
        try:
            found = provider.list_calendars()
        finally:
            provider.close()
        self._store.save_detail(connector_id, calendars=[c.to_json() for c in found])
        return found

    def _accounts_changed(self, connector_id: int) -> None:
        BusyCache(self._store.engine, timedelta(seconds=0)).invalidate(connector_id)


def _expiry(now: datetime, expires_in: object) -> datetime | None:
    return now + timedelta(seconds=float(expires_in)) if isinstance(expires_in, int | float | str) else None
