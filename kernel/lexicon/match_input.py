"""The body of ``com.huddle.match`` as a typed value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kernel.lexicon.errors import LexiconValidationError
from kernel.lexicon.formats import parse_datetime
from kernel.lexicon.preferences import Preferences
from kernel.lexicon.validator import validate_input

NSID = "com.huddle.match"


@dataclass(frozen=True, slots=True)
class MatchInput:
    """What a guest asks for. Whether the offer has this duration is checked against the offer later."""

    host: str
    duration_minutes: int
    offer: str | None = None
    earliest: datetime | None = None
    latest: datetime | None = None
    preferences: Preferences | None = None
    note: str | None = None
    guest_email: str | None = None
    idempotency_key: str | None = None

    @classmethod
    def from_input(cls, body: object) -> MatchInput:
        """Validate a request body; LexiconValidationError (a 400) naming the field if bad."""
        value = validate_input(NSID, body)
        earliest = _optional_datetime(value.get("earliest"))
        latest = _optional_datetime(value.get("latest"))
        if earliest is not None and latest is not None and latest <= earliest:
            raise LexiconValidationError("latest", "must be after earliest")
        preferences = value.get("preferences")
        return cls(
            host=value["host"],
            duration_minutes=value["durationMinutes"],
            offer=value.get("offer"),
            earliest=earliest,
            latest=latest,
            preferences=None if preferences is None else Preferences.from_checked(preferences),
            note=value.get("note"),
            guest_email=value.get("guestEmail"),
            idempotency_key=value.get("idempotencyKey"),
        )


def _optional_datetime(text: str | None) -> datetime | None:
    return None if text is None else parse_datetime(text)
