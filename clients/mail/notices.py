"""Messages about a host's account rather than a booking: a calendar that must be reconnected.

Their outbox rows have no booking (`booking_id` is NULL); the payload names the connector. Times are
shown in the recipient's own zone, with the zone named, like the booking messages.
"""

from __future__ import annotations

from typing import Any

from clients.mail.render import Rendered, moment, render_kind
from kernel.lexicon import parse_datetime

SUBJECTS = {
    "calendar_needs_reauth": "Reconnect your {{ provider_name }} calendar ({{ account }}) to Huddle",
}
KINDS = tuple(SUBJECTS)

PROVIDER_NAMES = {"google": "Google", "microsoft": "Microsoft", "caldav": "CalDAV"}


def reconnect_url(public_url: str, connector_id: int) -> str:
    """The host's calendars page, at this connector's card (its Reconnect button is a CSRF-guarded form)."""
    return f"{public_url.rstrip('/')}/host/calendars#c-{connector_id}"


def render_notice(kind: str, payload: dict[str, Any], public_url: str) -> Rendered:
    if kind not in SUBJECTS:
        raise ValueError(f"no templates for notification kind {kind!r}")
    return render_kind(kind, SUBJECTS[kind], notice_context(payload, public_url))


def notice_context(payload: dict[str, Any], public_url: str) -> dict[str, Any]:
    provider = str(payload.get("provider") or "")
    zone = payload.get("recipientTimezone") or "UTC"
    at = payload.get("at")
    return {
        "role": payload.get("role", "host"),
        "host_name": payload.get("ownerName"),
        "provider": provider,
        "provider_name": PROVIDER_NAMES.get(provider, provider or "calendar"),
        "account": payload.get("account") or "",
        "reason": payload.get("reason"),
        "since": moment(parse_datetime(at), zone) if at else None,
        "oauth": provider in ("google", "microsoft"),
        "reconnect_url": reconnect_url(public_url, int(payload["connectorId"])),
        "note": None,  # the shared layout shows a guest's note; an account message has none
        "public_url": public_url.rstrip("/"),
    }
