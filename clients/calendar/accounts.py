"""Connected calendar accounts: the store, the OAuth clients, and a provider client per connector."""

from __future__ import annotations

from sqlalchemy import Engine

from clients.calendar.caldav_provider import CaldavCalendar
from clients.calendar.google import GoogleCalendar, GoogleOAuth
from clients.calendar.microsoft import MicrosoftCalendar, MicrosoftOAuth
from clients.calendar.providers import CalendarProvider
from clients.calendar.store import ConnectorStore
from clients.calendar.tokens import ConnectorTokens
from clients.secrets import KeyRing
from models.settings import Settings
from models.tables import CalendarConnector


class CalendarAccounts:
    def __init__(self, settings: Settings, engine: Engine, ring: KeyRing | None = None) -> None:
        self.settings = settings
        self.store = ConnectorStore(engine, ring or KeyRing.from_settings(settings))
        verify: str | bool = settings.calendar_ca_bundle or True
        timeout = settings.calendar_http_timeout_seconds
        self.verify = verify
        self.google = GoogleOAuth(
            client_id=settings.google_client_id,
            client_secret=settings.google_client_secret,
            auth_uri=settings.google_auth_uri,
            token_uri=settings.google_token_uri,
            timeout=timeout,
            verify=verify,
        )
        self.microsoft = MicrosoftOAuth(
            client_id=settings.microsoft_client_id,
            client_secret=settings.microsoft_client_secret,
            authority=settings.microsoft_authority,
            timeout=timeout,
            verify=verify,
            instance_discovery=settings.microsoft_instance_discovery,
        )

    def tokens(self, connector_id: int) -> ConnectorTokens:
        return ConnectorTokens(self.store, connector_id, google=self.google, microsoft=self.microsoft)

    def google_client(self, connector_id: int) -> GoogleCalendar:
        return GoogleCalendar(
            self.tokens(connector_id),
            api_endpoint=self.settings.google_api_endpoint,
            timeout=self.settings.calendar_http_timeout_seconds,
            ca_certs=self.settings.calendar_ca_bundle or None,
        )

    def microsoft_client(self, connector: CalendarConnector) -> MicrosoftCalendar:
        assert connector.id is not None
        detail = self.store.detail(connector.id)
        default = next((c["id"] for c in detail.calendars if c.get("primary")), None)
        return MicrosoftCalendar(
            self.tokens(connector.id),
            graph_url=self.settings.microsoft_graph_url,
            mailbox=connector.account,
            account_kind=detail.account_kind or "work",
            default_calendar_id=default,
            timeout=self.settings.calendar_http_timeout_seconds,
            verify=self.verify,
        )

    def caldav_client(self, url: str, username: str, password: str) -> CaldavCalendar:
        return CaldavCalendar(
            url,
            username,
            password,
            timeout=self.settings.calendar_http_timeout_seconds,
            verify=self.verify,
            allow_http=self.settings.dev_mode,
        )

    def provider(self, connector: CalendarConnector) -> CalendarProvider:
        """A client for this connector's provider (tokens are fetched, and refreshed, on creation)."""
        assert connector.id is not None
        if connector.provider == "google":
            return self.google_client(connector.id)
        if connector.provider == "microsoft":
            return self.microsoft_client(connector)
        if connector.provider == "caldav":
            password = self.store.ring.decrypt(connector.password_enc or "")
            return self.caldav_client(connector.server_url or "", connector.account, password)
        raise ValueError(f"unknown calendar provider {connector.provider!r}")
