"""Reads and writes of connector rows: state changes, tokens (encrypted), what a connect flow learned."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from clients.secrets import KeyRing
from kernel.calendar.zones import is_iana_zone
from kernel.lexicon import format_datetime
from models import booking_store
from models.calendar_tables import CalendarConnectorDetail
from models.db import session_scope
from models.tables import CalendarConnector, User
from models.types import utcnow
from workers.logs import redact

OK, NEEDS_REAUTH, ERROR = "ok", "needs_reauth", "error"


class ConnectorStore:
    def __init__(self, engine: Engine, ring: KeyRing, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.ring = ring
        self._clock = clock

    # ------------------------------------------------------------------ reads

    def get(self, connector_id: int) -> CalendarConnector | None:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(CalendarConnector, connector_id)

    def for_owner(self, owner_did: str) -> list[CalendarConnector]:
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(CalendarConnector).where(CalendarConnector.owner_did == owner_did)
            return list(session.exec(query.order_by(col(CalendarConnector.id))))

    def all_ids(self) -> list[int]:
        with Session(self.engine) as session:
            return [i for i in session.exec(select(CalendarConnector.id)) if i is not None]

    def detail(self, connector_id: int) -> CalendarConnectorDetail:
        with Session(self.engine, expire_on_commit=False) as session:
            found = session.get(CalendarConnectorDetail, connector_id)
        return found or CalendarConnectorDetail(connector_id=connector_id)

    # ------------------------------------------------------------------ state

    def mark_ok(self, connector_id: int, *, synced: bool = False) -> None:
        values: dict[str, Any] = {"state": OK, "state_reason": None, "updated_at": self._clock()}
        if synced:
            values["last_sync_at"] = self._clock()
        self._update(connector_id, values, unless_state=NEEDS_REAUTH)

    def mark_error(self, connector_id: int, reason: str) -> None:
        self._update(
            connector_id,
            {"state": ERROR, "state_reason": reason[:1000], "updated_at": self._clock()},
            unless_state=NEEDS_REAUTH,
        )

    def mark_needs_reauth(self, connector_id: int, reason: str) -> None:
        """The grant is gone: say so on the connector and tell its owner (once per transition)."""
        now = self._clock()
        changed = self._update(
            connector_id,
            {"state": NEEDS_REAUTH, "state_reason": reason[:1000], "updated_at": now},
            unless_state=NEEDS_REAUTH,
        )
        if changed:
            self._tell_owner(connector_id, reason, now)

    def _update(self, connector_id: int, values: dict[str, Any], *, unless_state: str | None = None) -> bool:
        statement = update(CalendarConnector).where(col(CalendarConnector.id) == connector_id)
        if unless_state is not None:
            statement = statement.where(col(CalendarConnector.state) != unless_state)
        with session_scope(self.engine) as session:
            result = session.execute(statement.values(**values))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def _tell_owner(self, connector_id: int, reason: str, when: datetime) -> None:
        """Queue the owner's "reconnect your calendar" mail; the outbox sweep sends it on its next run.

        Not sent from here: this runs inside busy reads and event writes, which must not wait on a
        mail relay, and the sweep (every `outbox_retry_interval_seconds`) sends rows of no booking
        at once, retries them and records failures.
        """
        connector = self.get(connector_id)
        if connector is None:
            return
        with Session(self.engine) as session:
            owner = session.get(User, connector.owner_did)
        if owner is None or not owner.email:
            return
        zone = owner.timezone if is_iana_zone(owner.timezone) else "UTC"
        booking_store.enqueue(
            self.engine,
            [
                {
                    "dedupe_key": f"connector:{connector_id}:needs_reauth:{when.isoformat()}",
                    "booking_id": None,
                    "kind": "calendar_needs_reauth",
                    "recipient": owner.email,
                    "payload": {
                        "connectorId": connector_id,
                        "provider": connector.provider,
                        "account": connector.account,
                        # Provider error text: redacted, in case a provider ever echoes a credential.
                        "reason": redact(reason)[:500],
                        "role": "host",
                        "ownerName": owner.handle or owner.did,
                        "recipientTimezone": zone,
                        "at": format_datetime(when),
                    },
                    "state": "pending",
                    "attempts": 0,
                }
            ],
        )

    # ------------------------------------------------------------------ tokens

    def save_oauth_tokens(
        self,
        connector_id: int,
        *,
        access_token: str,
        expires_in: float | None,
        refresh_token: str | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "access_token_enc": self.ring.encrypt(access_token),
            "token_expires_at": self._expiry(expires_in),
            "updated_at": self._clock(),
        }
        if refresh_token:  # Google sends one only with consent; keep the old one otherwise
            values["refresh_token_enc"] = self.ring.encrypt(refresh_token)
        self._update(connector_id, values)

    def save_token_cache(self, connector_id: int, *, cache: str | None, expires_in: float | None) -> None:
        values: dict[str, Any] = {"token_expires_at": self._expiry(expires_in), "updated_at": self._clock()}
        if cache is not None:
            values["token_cache_enc"] = self.ring.encrypt(cache)
        self._update(connector_id, values)

    def _expiry(self, expires_in: float | None) -> datetime | None:
        return self._clock() + timedelta(seconds=float(expires_in)) if expires_in else None

    # ------------------------------------------------------------------ connect flows

    def upsert(
        self,
        *,
        owner_did: str,
        provider: str,
        account: str,
        secrets: dict[str, str | None],
        server_url: str | None = None,
        token_expires_at: datetime | None = None,
        default_busy: list[str],
        default_event: str | None,
    ) -> int:
        """Create the connector, or refresh the secrets of the owner's existing one for this account."""
        now = self._clock()
        encrypted = {f"{name}_enc": self.ring.encrypt_optional(value) for name, value in secrets.items()}
        with session_scope(self.engine) as session:
            existing = session.exec(
                select(CalendarConnector).where(
                    CalendarConnector.owner_did == owner_did,
                    CalendarConnector.provider == provider,
                    CalendarConnector.account == account,
                    CalendarConnector.server_url == server_url if server_url else True,  # type: ignore[arg-type]
                )
            ).first()
            if existing is None:
                existing = CalendarConnector(
                    owner_did=owner_did,
                    provider=provider,
                    account=account,
                    server_url=server_url,
                    busy_calendar_ids=default_busy,
                    event_calendar_id=default_event,
                    created_at=now,
                )
            for name, value in encrypted.items():
                if value is not None:
                    setattr(existing, name, value)
            existing.token_expires_at = token_expires_at
            existing.state, existing.state_reason, existing.updated_at = OK, None, now
            session.add(existing)
            session.flush()
            assert existing.id is not None
            return existing.id

    def save_detail(
        self,
        connector_id: int,
        *,
        calendars: list[dict[str, Any]] | None = None,
        scopes: str | None = None,
        account_kind: str | None = None,
    ) -> None:
        with session_scope(self.engine) as session:
            row = session.get(CalendarConnectorDetail, connector_id) or CalendarConnectorDetail(
                connector_id=connector_id
            )
            if calendars is not None:
                row.calendars, row.calendars_at = calendars, self._clock()
            if scopes is not None:
                row.scopes = scopes
            if account_kind is not None:
                row.account_kind = account_kind
            session.add(row)

    def choose_calendars(self, connector_id: int, *, busy: list[str], event: str | None) -> None:
        self._update(
            connector_id,
            {"busy_calendar_ids": busy, "event_calendar_id": event, "updated_at": self._clock()},
        )
