"""ATProto OAuth client for web sign-in: discovery, PAR + PKCE + DPoP, tokens, and sessions at rest.

`client_config(settings)` says which client Huddle is (loopback in development, confidential with
`private_key_jwt` in production); `OAuthClient` talks to authorization servers and PDSes;
`SessionStore` keeps logins in flight and sessions in the database, encrypted.
"""

from clients.oauth.client import ClientConfig, OAuthClient, PendingLogin, TokenSet
from clients.oauth.config import OAuthNotConfigured, client_config
from clients.oauth.discovery import AuthServer, Discovery, LoginTarget
from clients.oauth.errors import (
    AuthorizationServerError,
    CallbackError,
    DiscoveryError,
    OAuthError,
    PdsRequestError,
    SessionExpired,
)
from clients.oauth.jwt import SigningKey
from clients.oauth.store import SessionStore, StoredSession

__all__ = [
    "AuthServer",
    "AuthorizationServerError",
    "CallbackError",
    "ClientConfig",
    "Discovery",
    "DiscoveryError",
    "LoginTarget",
    "OAuthClient",
    "OAuthError",
    "OAuthNotConfigured",
    "PdsRequestError",
    "PendingLogin",
    "SessionExpired",
    "SessionStore",
    "SigningKey",
    "StoredSession",
    "TokenSet",
    "client_config",
]
