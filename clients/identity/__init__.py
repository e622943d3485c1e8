"""ATProto identity: DID documents, handles, and service-auth JWT verification.

`IdentityResolver` is the one object the API and activities hold; `ServiceAuthVerifier`
checks service-auth tokens against it; `StoredReplayGuard` shares seen `jti`s through the DB.
"""

from clients.identity.did import DidDocument, DidResolver
from clients.identity.errors import (
    DidNotFound,
    HandleNotFound,
    IdentityError,
    IdentityUnavailable,
    InvalidDidDocument,
    InvalidIdentifier,
)
from clients.identity.handle import HandleResolver
from clients.identity.replay import StoredReplayGuard
from clients.identity.resolver import IdentityResolver
from clients.identity.service_auth import ServiceAuthClaims, ServiceAuthError, ServiceAuthVerifier

__all__ = [
    "DidDocument",
    "DidNotFound",
    "DidResolver",
    "HandleNotFound",
    "HandleResolver",
    "IdentityError",
    "IdentityResolver",
    "IdentityUnavailable",
    "InvalidDidDocument",
    "InvalidIdentifier",
    "ServiceAuthClaims",
    "ServiceAuthError",
    "ServiceAuthVerifier",
    "StoredReplayGuard",
]
