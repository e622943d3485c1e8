"""Turning an outbox payload into a subject, a plain-text body and an HTML body (Jinja2 templates).

Times are shown in the recipient's own zone, always with the zone named; a guest whose zone differs
from the host's also sees the host's local time. Templates live in `templates/<kind>.txt|.html`.
Messages about an account rather than a booking are in clients/mail/notices.py.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from kernel.calendar.zones import get_zone
from kernel.lexicon import parse_datetime

KINDS = (
    "held",
    "hold_moved",
    "hold_lost",
    "request_received",
    "confirmed",
    "declined",
    "expired",
    "cancelled",
    "rescheduled",
    "reminder",
)

SUBJECTS = {
    "held": "Held for you: {{ title }} with {{ host_name }}, {{ short_when }}",
    "hold_moved": "New time held for you: {{ title }} with {{ host_name }}, {{ short_when }}",
    "hold_lost": "No longer available: {{ title }} with {{ host_name }}",
    "request_received": "Approve or decline: {{ guest_name }} asks for {{ title }}, {{ short_when }}",
    "confirmed": "Confirmed: {{ title }} with {{ other_name }}, {{ short_when }}",
    "declined": "Declined: {{ title }} with {{ host_name }}, {{ short_when }}",
    "expired": "Expired: your hold for {{ title }} with {{ host_name }}",
    "cancelled": "Cancelled: {{ title }} with {{ other_name }}, {{ short_when }}",
    "rescheduled": "Rescheduled: {{ title }} with {{ other_name }}, now {{ short_when }}",
    "reminder": "Reminder: {{ title }} with {{ other_name }}, {{ short_when }}",
}


@dataclass(frozen=True)
class Links:
    booking: str  # the guest's page: status, finalize
    host_booking: str  # the host's dashboard page for this booking: approve, decline, cancel
    ics: str

    @classmethod
    def for_booking(cls, public_url: str, booking_id: str) -> Links:
        base = public_url.rstrip("/")
        return cls(
            booking=f"{base}/bookings/{booking_id}",
            host_booking=f"{base}/host/bookings/{booking_id}",
            ics=f"{base}/bookings/{booking_id}.ics",
        )


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@functools.cache
def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("clients.mail", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env


def render(payload: dict[str, Any], links: Links, public_url: str) -> Rendered:
    kind = payload["step"]
    if kind not in KINDS:
        raise ValueError(f"no templates for notification kind {kind!r}")
    return render_kind(kind, SUBJECTS[kind], template_context(payload, links, public_url))


def render_kind(kind: str, subject_template: str, context: dict[str, Any]) -> Rendered:
    """`templates/<kind>.txt|.html` and the subject, rendered with `context`."""
    env = _env()
    subject = env.from_string(subject_template).render(context)
    return Rendered(
        subject=" ".join(subject.split()),
        text=env.get_template(f"{kind}.txt").render(context),
        html=env.get_template(f"{kind}.html").render(context),
    )


def template_context(payload: dict[str, Any], links: Links, public_url: str) -> dict[str, Any]:
    role = payload["role"]
    zone = payload.get("recipientTimezone") or payload.get("timezone") or "UTC"
    host_zone = payload.get("timezone") or "UTC"
    start, end = _instant(payload.get("start")), _instant(payload.get("end"))
    hold = _instant(payload.get("holdExpiresAt"))
    names = {"host": payload["hostName"], "guest": payload["guestName"]}
    return {
        "role": role,
        "title": payload["title"],
        "host_name": names["host"],
        "guest_name": names["guest"],
        "other_name": names["guest" if role == "host" else "host"],
        "actor_name": names.get(payload.get("actor") or ""),
        "actor_is_you": payload.get("actor") == role,
        "when": span(start, end, zone) if start and end else None,
        "short_when": short(start, zone) if start else "",
        "host_when": span(start, end, host_zone) if start and end and host_zone != zone else None,
        "hold_until": moment(hold, zone) if hold else None,
        "duration": payload.get("durationMinutes"),
        "requires_approval": bool(payload.get("requiresApproval")),
        "location": payload.get("location"),
        "note": payload.get("note"),
        "reason": payload.get("reason"),
        "invitation": payload.get("ics"),
        "links": links,
        "public_url": public_url.rstrip("/"),
    }


def _instant(value: str | None) -> datetime | None:
    return parse_datetime(value) if value else None


def _zone_label(local: datetime, zone: str) -> str:
    abbreviation = local.tzname() or ""
    return zone if abbreviation in ("", zone) else f"{zone}, {abbreviation}"


# English names, whatever the process locale says.
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = "January February March April May June July August September October November December".split()


def _day(local: datetime) -> str:
    return f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}"


def span(start: datetime, end: datetime, zone: str) -> str:
    """`Tuesday 1 December 2026, 09:00–09:30 (America/New_York, EST)`."""
    tz = get_zone(zone)
    a, b = start.astimezone(tz), end.astimezone(tz)
    if a.date() == b.date():
        return f"{_day(a)}, {a:%H:%M}–{b:%H:%M} ({_zone_label(a, zone)})"
    return f"{_day(a)} {a:%H:%M} – {_day(b)} {b:%H:%M} ({_zone_label(a, zone)})"


def moment(at: datetime, zone: str) -> str:
    local = at.astimezone(get_zone(zone))
    return f"{_day(local)}, {local:%H:%M} ({_zone_label(local, zone)})"


def short(at: datetime, zone: str) -> str:
    """`Tue 1 Dec 2026 09:00 EST`, for subjects."""
    local = at.astimezone(get_zone(zone))
    day, month = _DAYS[local.weekday()][:3], _MONTHS[local.month - 1][:3]
    return f"{day} {local.day} {month} {local.year} {local:%H:%M} {local.tzname() or zone}"
