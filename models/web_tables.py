"""Tables of the web app: logins in flight (between the PDS redirect and its callback).

Signed-in sessions themselves are `OAuthSession` rows (models/tables.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


def _ts(index: bool = False) -> Any:
    return Field(sa_type=UTCDateTime, nullable=False, index=index)


class OAuthLoginRequest(SQLModel, table=True):
    """An ATProto OAuth login between PAR and the callback; used once, then deleted.

    Kept in the database (not in the process) so the callback may reach any API replica. The
    state is stored as a digest, the PKCE verifier and DPoP key encrypted, and `browser_digest`
    ties the login to the browser that started it (a cookie), so a stolen callback URL is useless.
    """

    __tablename__ = "oauth_login_requests"

    state_digest: str = Field(primary_key=True, max_length=64)
    browser_digest: str = Field(max_length=64)
    issuer: str = Field(max_length=2048)
    expected_did: str | None = Field(default=None, max_length=2048)
    pds_url: str | None = Field(default=None, max_length=2048)
    secrets_enc: str  # {"code_verifier", "dpop_key"} as JSON, encrypted with the token key ring
    return_to: str | None = Field(default=None, max_length=2048)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = _ts(index=True)


class OAuthRefreshLease(SQLModel, table=True):
    """Who is refreshing a session's tokens right now, until when (see clients/oauth/store.py).

    Refresh tokens rotate, so only one replica may spend a session's refresh token at a time; the
    lease is taken and released in short transactions, never held across the network call.
    """

    __tablename__ = "oauth_refresh_leases"

    session_id: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=64)
    until: datetime = _ts()
