"""Sessions at rest: encrypted, found by the browser's token only, refreshed once across racing requests.

The authorization server is replaced by a counting stand-in here (the real PDS refresh is exercised
in test_browser.py); what is under test is the database side, on SQLite and Postgres.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import Engine, text
from sqlmodel import Session

from clients.oauth import SessionStore, SigningKey, TokenSet
from clients.oauth.client import OAuthClient
from clients.oauth.errors import AuthorizationServerError, SessionExpired
from clients.oauth.store import digest
from clients.secrets import KeyRing, dev_key
from models.tables import OAuthSession
from models.types import utcnow

MAX_AGE = timedelta(days=1)


class CountingServer(OAuthClient):
    """Refreshes slowly and counts; refusing a refresh token it already rotated, as real servers do."""

    def __init__(self, refuse: bool = False) -> None:
        self.calls = 0
        self.spent: set[str] = set()
        self.refuse = refuse

    async def refresh(self, tokens: TokenSet, key: SigningKey) -> TokenSet:
        self.calls += 1
        await asyncio.sleep(0.3)
        if self.refuse or tokens.refresh_token in self.spent:
            raise AuthorizationServerError("invalid_grant", "refresh token replayed")
        assert tokens.refresh_token is not None
        self.spent.add(tokens.refresh_token)
        return TokenSet(
            tokens.did,
            tokens.issuer,
            tokens.pds_url,
            f"access-{self.calls}",
            f"refresh-{self.calls}",
            tokens.scope,
            utcnow() + timedelta(hours=1),
        )


def _tokens(expires_in: timedelta) -> TokenSet:
    return TokenSet(
        "did:plc:alice",
        "http://localhost:1",
        "http://localhost:1",
        "access-0",
        "refresh-0",
        "atproto",
        utcnow() + expires_in,
    )


def _store(engine: Engine, server: CountingServer) -> SessionStore:
    return SessionStore(engine, KeyRing([dev_key("test")]), server)


def test_tokens_are_encrypted_and_rows_are_keyed_by_a_digest(engine: Engine) -> None:
    store = _store(engine, CountingServer())
    token = store.create(_tokens(timedelta(hours=1)), SigningKey.generate())
    with Session(engine) as session:
        row = session.get(OAuthSession, digest(token))
        assert row is not None and session.get(OAuthSession, token) is None
        raw = " ".join(str(v) for v in session.execute(text("SELECT * FROM oauth_sessions")).one())
    assert "access-0" not in raw and "refresh-0" not in raw and '"d"' not in raw
    loaded = store.load(token, MAX_AGE)
    assert loaded is not None and loaded.tokens.access_token == "access-0" and loaded.did == "did:plc:alice"
    assert store.did_of(token, MAX_AGE) == "did:plc:alice"
    assert store.load(token, timedelta(0)) is None  # older than the web session may live
    assert store.load("not-a-token", MAX_AGE) is None


async def test_racing_requests_refresh_once_and_share_the_new_tokens(engine: Engine) -> None:
    server = CountingServer()
    store = _store(engine, server)
    token = store.create(_tokens(timedelta(seconds=10)), SigningKey.generate())  # inside the margin
    stored = store.load(token, MAX_AGE)
    assert stored is not None
    results = await asyncio.gather(*(store.fresh(stored) for _ in range(4)))
    assert server.calls == 1
    assert {r.tokens.access_token for r in results} == {"access-1"}
    again = store.load(token, MAX_AGE)
    assert again is not None and again.tokens.refresh_token == "refresh-1"
    # A fresh token is not refreshed again.
    assert (await store.fresh(again)).tokens.access_token == "access-1" and server.calls == 1


async def test_a_refused_refresh_ends_the_session(engine: Engine) -> None:
    store = _store(engine, CountingServer(refuse=True))
    token = store.create(_tokens(timedelta(seconds=-5)), SigningKey.generate())
    stored = store.load(token, MAX_AGE)
    assert stored is not None
    try:
        await store.fresh(stored)
    except SessionExpired:
        pass
    else:
        raise AssertionError("a refused refresh must end the session")
    assert store.load(token, MAX_AGE) is None and store.did_of(token, MAX_AGE) is None
