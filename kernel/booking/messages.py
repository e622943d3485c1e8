"""What crosses the API ↔ workflow ↔ activity boundaries: one dataclass each, so fields can be added
later without breaking running workflows (new fields always get defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class BookingRequest:
    """A guest's `com.huddle.match` call, after validation, as the workflow's input."""

    booking_id: str
    guest_did: str
    host_did: str
    offer_uri: str
    duration_minutes: int
    requested_at: datetime
    idempotency_key: str
    earliest: datetime | None = None
    latest: datetime | None = None
    preferences: dict[str, Any] | None = None  # the lexicon `preferences` object as sent
    note: str | None = None
    guest_email: str | None = None
    queue_prefix: str = "huddle"
    hold_seconds: int | None = None  # overrides the offer's holdMinutes (tests run holds in seconds)
    max_match_attempts: int = 5
    reminder_minutes_before: int = 60  # 0: no reminder


@dataclass
class CommandInput:
    """finalize / cancel: who asks, and why (cancel)."""

    caller_did: str
    reason: str | None = None


@dataclass
class RespondInput:
    caller_did: str
    decision: str  # approve | decline
    reason: str | None = None


@dataclass
class RescheduleInput:
    """com.huddle.reschedule: who asks, the range and preferences for the new time, and why."""

    caller_did: str
    earliest: datetime | None = None
    latest: datetime | None = None
    preferences: dict[str, Any] | None = None  # None: the original request's
    reason: str | None = None


@dataclass
class Screening:
    """What the workflow learns before matching: is the offer there, may this guest book it."""

    allowed: bool
    reason: str | None = None  # machine code when refused: offer_gone, policy_followers, ...
    message: str | None = None  # the refusal in words
    hold_minutes: int = 15
    requires_approval: bool = False
    title: str = ""


@dataclass
class MatchHoldInput:
    request: BookingRequest
    version: int  # the projection version the held row gets
    hold_seconds: int


@dataclass
class HoldResult:
    """The outcome of matching and placing the hold (one activity, so large inputs stay out of history)."""

    placed: bool
    start: datetime | None = None
    end: datetime | None = None
    hold_expires_at: datetime | None = None
    explanation: str = ""
    reason: str | None = None
    lost_races: int = 0


@dataclass
class RecheckInput:
    """A held booking's calendars changed: is its slot still free, and if not, where does it go?"""

    request: BookingRequest
    version: int  # the projection version a moved hold gets
    hold_seconds: int
    awaiting: list[str] = field(default_factory=list)  # who must act on a moved hold


@dataclass
class RescheduleJob:
    """Move a confirmed booking: `request` carries the new range and preferences."""

    request: BookingRequest
    version: int  # the projection version the moved booking gets
    caller_did: str = ""
    reason: str | None = None


@dataclass
class RecheckResult:
    """`kept` (still free, or no calendar could tell), `moved` (to start/end), or `lost` (no slot)."""

    outcome: str
    start: datetime | None = None
    end: datetime | None = None
    hold_expires_at: datetime | None = None
    explanation: str = ""
    reason: str | None = None


@dataclass
class Transition:
    """One state change, written to the projection and the audit log by an activity."""

    booking_id: str
    version: int
    state: str
    action: str
    actor_did: str | None = None
    awaiting: list[str] = field(default_factory=list)
    reason: str | None = None
    hold_expires_at: datetime | None = None
    at: datetime | None = None


@dataclass
class SideEffect:
    """A side effect for one booking step; the key makes a retried or replayed call a no-op."""

    booking_id: str
    step: str  # held | request_received | confirmed | declined | expired | cancelled | reminder
    key: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
