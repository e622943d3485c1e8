"""What can go wrong while resolving an identity; callers never see a raw httpx or DNS error."""

from __future__ import annotations


class IdentityError(Exception):
    """Base class: an identifier could not be turned into a verified identity."""


class InvalidIdentifier(IdentityError):
    """Not a syntactically valid DID or handle, or a DID method Huddle does not resolve."""


class DidNotFound(IdentityError):
    """The DID's directory (PLC or the did:web host) says it does not exist (or is tombstoned)."""


class InvalidDidDocument(IdentityError):
    """A document came back, but it is not a usable ATProto DID document for that DID."""


class HandleNotFound(IdentityError):
    """No method resolved the handle to a DID whose document claims the handle back."""


class IdentityUnavailable(IdentityError):
    """The directory or resolver could not be reached or failed (timeouts, 5xx): try again later."""
