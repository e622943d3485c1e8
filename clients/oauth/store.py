"""OAuth logins in flight and signed-in sessions, in the database, secrets encrypted at rest.

A session is known to the browser by a random token (in a signed cookie, see api/sessions.py);
the row's id is that token's SHA-256, so the table alone lets nobody act as anyone.

Refreshing is serialized per session through the database: refresh tokens rotate, and two
replicas refreshing one session at once would spend the same refresh token twice (the
authorization server then ends the whole session). A short transaction takes a lease
(oauth_refresh_leases), the refresh runs with no transaction open, a second short one stores the
tokens and drops the lease; whoever waited finds fresh tokens and uses them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from clients.oauth.client import OAuthClient, PendingLogin, TokenSet
from clients.oauth.errors import AuthorizationServerError, OAuthError, SessionExpired
from clients.oauth.jwt import SigningKey, random_token
from clients.secrets import KeyRing, SecretUnreadable
from models.db import serialized_write, session_scope
from models.tables import OAuthSession
from models.types import utcnow
from models.web_tables import OAuthLoginRequest, OAuthRefreshLease

log = logging.getLogger("huddle.oauth")

# Refresh this long before the access token expires, so a request never starts with a dying token.
REFRESH_MARGIN_SECONDS = 60
# How long one refresh may take before another replica may try (a crashed holder's lease lapses).
LEASE_SECONDS = 30


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class LoginInFlight:
    pending: PendingLogin
    browser_digest: str
    return_to: str | None


@dataclass
class StoredSession:
    """A signed-in session as the web app sees it (tokens decrypted, in memory only)."""

    id: str
    tokens: TokenSet
    dpop_key: SigningKey
    created_at: datetime

    @property
    def did(self) -> str:
        return self.tokens.did


class SessionStore:
    def __init__(self, engine: Engine, keys: KeyRing, client: OAuthClient | None) -> None:
        self._engine = engine
        self._keys = keys
        self._client = client

    @property
    def client(self) -> OAuthClient:
        """The OAuth client; OAuthError when sign-in is not configured (sessions can still be read)."""
        if self._client is None:
            raise OAuthError("sign-in is not configured on this server")
        return self._client

    # ------------------------------------------------------------ logins in flight

    def save_login(
        self, pending: PendingLogin, browser_secret: str, return_to: str | None, ttl: timedelta
    ) -> None:
        secrets = json.dumps({"code_verifier": pending.code_verifier, "dpop_key": pending.dpop_key.to_json()})
        now = utcnow()
        with session_scope(self._engine) as session:
            # Logins nobody finished are dropped as new ones start: no schedule needed for them.
            session.execute(delete(OAuthLoginRequest).where(col(OAuthLoginRequest.expires_at) < now))
            session.add(
                OAuthLoginRequest(
                    state_digest=digest(pending.state),
                    browser_digest=digest(browser_secret),
                    issuer=pending.issuer,
                    expected_did=pending.expected_did,
                    pds_url=pending.pds_url,
                    secrets_enc=self._keys.encrypt(secrets),
                    return_to=return_to,
                    created_at=now,
                    expires_at=now + ttl,
                )
            )

    def take_login(self, state: str) -> LoginInFlight | None:
        """The login `state` belongs to, removed so it can be used only once; None if unknown/expired."""
        with serialized_write(self._engine) as session:
            row = session.get(OAuthLoginRequest, digest(state))
            if row is None:
                return None
            session.delete(row)
        if row.expires_at < utcnow():
            return None
        try:
            secrets = json.loads(self._keys.decrypt(row.secrets_enc))
        except SecretUnreadable:
            log.warning("a login in flight could not be decrypted (token keys changed?)")
            return None
        pending = PendingLogin(
            state=state,
            issuer=row.issuer,
            code_verifier=secrets["code_verifier"],
            dpop_key=SigningKey.from_json(secrets["dpop_key"]),
            authorize_url="",
            expected_did=row.expected_did,
            pds_url=row.pds_url,
        )
        return LoginInFlight(pending, row.browser_digest, row.return_to)

    # ------------------------------------------------------------ sessions

    def create(self, tokens: TokenSet, key: SigningKey) -> str:
        """Store a new session; returns the token the browser keeps (the row id is its digest)."""
        token = random_token(32)
        now = utcnow()
        with session_scope(self._engine) as session:
            session.add(
                OAuthSession(
                    id=digest(token),
                    did=tokens.did,
                    issuer=tokens.issuer,
                    pds_url=tokens.pds_url,
                    dpop_key_enc=self._keys.encrypt(key.to_json()),
                    access_token_enc=self._keys.encrypt(tokens.access_token),
                    refresh_token_enc=self._keys.encrypt_optional(tokens.refresh_token),
                    scope=tokens.scope,
                    expires_at=tokens.expires_at,
                    created_at=now,
                    updated_at=now,
                )
            )
        return token

    def load(self, token: str, max_age: timedelta) -> StoredSession | None:
        """The session of a browser token, if it exists and is younger than `max_age`."""
        with Session(self._engine) as session:
            row = session.get(OAuthSession, digest(token))
        if row is None or row.created_at + max_age < utcnow():
            return None
        try:
            return self._decrypt(row)
        except SecretUnreadable:
            log.warning("session %s… could not be decrypted (token keys changed?)", row.id[:8])
            return None

    def did_of(self, token: str, max_age: timedelta) -> str | None:
        """Who a browser token is signed in as, without decrypting anything (for every request)."""
        with Session(self._engine) as session:
            row = session.exec(
                select(OAuthSession.did, OAuthSession.created_at).where(OAuthSession.id == digest(token))
            ).first()
        if row is None or row[1] + max_age < utcnow():
            return None
        return row[0]

    async def fresh(self, stored: StoredSession, *, force: bool = False) -> StoredSession:
        """The session with an access token good for a while; refreshed (once, across replicas) if not."""
        if not force and not stored.tokens.expires_within(REFRESH_MARGIN_SECONDS):
            return stored
        holder = random_token(16)
        deadline = utcnow() + timedelta(seconds=LEASE_SECONDS)
        while True:
            current, leased = self._take_lease(stored, holder)
            if current is not stored and current.tokens.access_token != stored.tokens.access_token:
                return current  # someone else refreshed it meanwhile
            if leased:
                break
            if utcnow() > deadline:
                raise OAuthError("the session is being refreshed elsewhere; try again")
            await asyncio.sleep(0.1)
        try:
            tokens = await self.client.refresh(current.tokens, current.dpop_key)
        except AuthorizationServerError as exc:
            if exc.status >= 500:
                self._release(stored.id, holder)
                raise
            self._delete(stored.id)
            raise SessionExpired("your sign-in has ended; sign in again") from exc
        except BaseException:
            self._release(stored.id, holder)
            raise
        with serialized_write(self._engine) as session:
            row = session.get(OAuthSession, stored.id)
            if row is not None:
                row.access_token_enc = self._keys.encrypt(tokens.access_token)
                row.refresh_token_enc = self._keys.encrypt_optional(tokens.refresh_token)
                row.expires_at = tokens.expires_at
                row.scope = tokens.scope
                row.updated_at = utcnow()
                session.add(row)
            session.execute(delete(OAuthRefreshLease).where(col(OAuthRefreshLease.session_id) == stored.id))
        if row is None:
            raise SessionExpired("you have been signed out; sign in again")
        return StoredSession(stored.id, tokens, current.dpop_key, stored.created_at)

    def _take_lease(self, stored: StoredSession, holder: str) -> tuple[StoredSession, bool]:
        """The stored session as it is now, and whether we hold the refresh lease (a short transaction)."""
        now = utcnow()
        with serialized_write(self._engine) as session:
            row = session.exec(
                select(OAuthSession).where(OAuthSession.id == stored.id).with_for_update()
            ).first()
            if row is None:
                raise SessionExpired("you have been signed out; sign in again")
            current = self._decrypt(row)
            if current.tokens.access_token != stored.tokens.access_token:
                return current, False
            lease = session.get(OAuthRefreshLease, stored.id)
            if lease is not None and lease.until > now and lease.holder != holder:
                return stored, False
            if lease is None:
                lease = OAuthRefreshLease(session_id=stored.id, holder=holder, until=now)
            lease.holder = holder
            lease.until = now + timedelta(seconds=LEASE_SECONDS)
            session.add(lease)
        return current, True

    def _release(self, session_id: str, holder: str) -> None:
        with session_scope(self._engine) as session:
            session.execute(
                delete(OAuthRefreshLease).where(
                    col(OAuthRefreshLease.session_id) == session_id, col(OAuthRefreshLease.holder) == holder
                )
            )

    def _delete(self, session_id: str) -> None:
        with session_scope(self._engine) as session:
            session.execute(delete(OAuthRefreshLease).where(col(OAuthRefreshLease.session_id) == session_id))
            session.execute(delete(OAuthSession).where(col(OAuthSession.id) == session_id))

    async def pds_call(
        self, stored: StoredSession, method: str, nsid: str, *, params: Any = None, body: Any = None
    ) -> tuple[StoredSession, Any]:
        """An XRPC call on the user's PDS as the user; refreshes once if the PDS refuses the token."""
        stored = await self.fresh(stored)
        try:
            result = await self.client.pds_call(
                stored.tokens, stored.dpop_key, method, nsid, params=params, body=body
            )
        except AuthorizationServerError as exc:
            if exc.error != "invalid_token":
                raise
            stored = await self.fresh(stored, force=True)
            result = await self.client.pds_call(
                stored.tokens, stored.dpop_key, method, nsid, params=params, body=body
            )
        return stored, result

    async def end(self, token: str) -> None:
        """Sign out: revoke at the authorization server (best effort) and delete the session."""
        with Session(self._engine) as session:
            row = session.get(OAuthSession, digest(token))
        if row is None:
            return
        try:
            stored = self._decrypt(row)
            await self.client.revoke(stored.tokens, stored.dpop_key)
        except (OAuthError, SecretUnreadable) as exc:
            # The local session ends regardless; the grant then lapses at the server by itself.
            log.warning("revoking session %s… failed: %s", row.id[:8], exc)
        self._delete(row.id)

    def _decrypt(self, row: OAuthSession) -> StoredSession:
        tokens = TokenSet(
            did=row.did,
            issuer=row.issuer,
            pds_url=row.pds_url,
            access_token=self._keys.decrypt(row.access_token_enc),
            refresh_token=self._keys.decrypt_optional(row.refresh_token_enc),
            scope=row.scope,
            expires_at=row.expires_at,
        )
        key = SigningKey.from_json(self._keys.decrypt(row.dpop_key_enc))
        return StoredSession(row.id, tokens, key, row.created_at)
