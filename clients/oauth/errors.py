"""What can go wrong in an ATProto OAuth login or an authenticated PDS call."""

from __future__ import annotations


class OAuthError(Exception):
    """Base class. `message` is safe to show the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DiscoveryError(OAuthError):
    """The account's PDS or authorization server could not be found or is not usable."""


class AuthorizationServerError(OAuthError):
    """The authorization server answered with an OAuth error (`error`, `error_description`)."""

    def __init__(self, error: str, description: str = "", status: int = 400) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status


class CallbackError(OAuthError):
    """The redirect back from the authorization server is not one this login can accept."""


class SessionExpired(OAuthError):
    """The session's tokens are gone for good (revoked, refresh refused): the user must sign in again."""


class PdsRequestError(OAuthError):
    """The PDS refused an authenticated call (an XRPC error other than an auth problem)."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(f"{error}: {message}" if message else error)
        self.status = status
        self.error = error
