"""What can go wrong talking to a calendar provider, sorted by what the caller should do about it.

- `ProviderUnavailable` (5xx, network, timeouts): try again later, with back-off.
- `ProviderRateLimited` (429, Google's 403 rate limits): try again after `retry_after` seconds.
- `ProviderAuthError` (invalid_grant, a token the provider keeps refusing): the owner must reconnect.
- `ProviderRequestError` (other 4xx): permanent for this request; `ProviderNotFound` for 404/410.
- `SyncTokenExpired` (410 on an incremental sync): start a full sync.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


class ProviderError(Exception):
    retryable = False

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class ProviderUnavailable(ProviderError):
    retryable = True


class ProviderRateLimited(ProviderUnavailable):
    def __init__(
        self, message: str, *, retry_after: float | None, status: int | None = 429, reason: str | None = None
    ) -> None:
        super().__init__(message, status=status, reason=reason)
        self.retry_after = retry_after


class ProviderAuthError(ProviderError):
    """The grant is gone (revoked, expired, password changed): only the owner can fix it."""


class ProviderRequestError(ProviderError):
    pass


class ProviderNotFound(ProviderRequestError):
    pass


class ProviderConflict(ProviderRequestError):
    """The resource exists already (Google's 409 `duplicate` for a client-chosen event id)."""


class SyncTokenExpired(ProviderError):
    pass


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def from_status(
    status: int, message: str, *, retry_after: str | None = None, reason: str | None = None
) -> ProviderError:
    """The error for an HTTP status the provider answered (auth errors are the caller's to decide)."""
    if status == 429:
        return ProviderRateLimited(message, retry_after=retry_after_seconds(retry_after), reason=reason)
    if status == 503 and retry_after:
        return ProviderRateLimited(
            message, retry_after=retry_after_seconds(retry_after), status=status, reason=reason
        )
    if status >= 500:
        return ProviderUnavailable(message, status=status, reason=reason)
    if status in (404, 410):
        return ProviderNotFound(message, status=status, reason=reason)
    if status == 409:
        return ProviderConflict(message, status=status, reason=reason)
    if status == 401:
        return ProviderAuthError(message, status=status, reason=reason)
    return ProviderRequestError(message, status=status, reason=reason)
