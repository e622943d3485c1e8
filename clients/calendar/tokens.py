"""Access tokens for OAuth connectors: decrypted on use, refreshed before they expire, saved encrypted.

A refresh the provider refuses for good (`invalid_grant`) marks the connector `needs_reauth` and
tells its owner; the error still propagates, so nobody treats the calendar as readable.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from clients.calendar.errors import ProviderAuthError
from clients.calendar.google import GoogleOAuth
from clients.calendar.microsoft import MicrosoftOAuth
from clients.calendar.store import ConnectorStore
from models.types import utcnow

# A token this close to its expiry is refreshed before use, so it cannot lapse mid-request.
EARLY = timedelta(seconds=120)


class ConnectorTokens:
    def __init__(
        self,
        store: ConnectorStore,
        connector_id: int,
        *,
        google: GoogleOAuth,
        microsoft: MicrosoftOAuth,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._id = connector_id
        self._google = google
        self._microsoft = microsoft
        self._clock = clock

    def current(self) -> str:
        connector = self._connector()
        fresh = connector.token_expires_at is not None and connector.token_expires_at > self._clock() + EARLY
        if connector.provider == "google" and fresh and connector.access_token_enc:
            return self._store.ring.decrypt(connector.access_token_enc)
        return self._refresh(force=False)

    def refreshed(self) -> str:
        return self._refresh(force=True)

    def refresh_if_expiring(self, within: timedelta) -> bool:
        """Refresh now if the token expires within `within`; True if it did."""
        connector = self._connector()
        if connector.token_expires_at is not None and connector.token_expires_at > self._clock() + within:
            return False
        self._refresh(force=True)
        return True

    def _connector(self):  # type: ignore[no-untyped-def]
        connector = self._store.get(self._id)
        if connector is None:
            raise ProviderAuthError(f"connector {self._id} no longer exists", reason="gone")
        if connector.state == "needs_reauth":
            raise ProviderAuthError(
                connector.state_reason or "the calendar must be reconnected", reason="needs_reauth"
            )
        return connector

    def _refresh(self, *, force: bool) -> str:
        connector = self._connector()
        ring = self._store.ring
        try:
            if connector.provider == "google":
                if not connector.refresh_token_enc:
                    raise ProviderAuthError(
                        "Google gave no refresh token: reconnect", reason="no_refresh_token"
                    )
                token = self._google.refresh(ring.decrypt(connector.refresh_token_enc))
                self._store.save_oauth_tokens(
                    self._id,
                    access_token=token["access_token"],
                    expires_in=token.get("expires_in"),
                    refresh_token=token.get("refresh_token"),
                )
                return str(token["access_token"])
            if connector.provider == "microsoft":
                if not connector.token_cache_enc:
                    raise ProviderAuthError("no Microsoft token cache: reconnect", reason="no_cache")
                result, cache = self._microsoft.acquire(
                    ring.decrypt(connector.token_cache_enc), force_refresh=force
                )
                self._store.save_token_cache(self._id, cache=cache, expires_in=result.get("expires_in"))
                return str(result["access_token"])
        except ProviderAuthError as exc:
            self._store.mark_needs_reauth(self._id, f"{connector.provider} refused the stored grant: {exc}")
            raise
        raise ProviderAuthError(f"{connector.provider} connectors have no OAuth tokens", reason="not_oauth")
