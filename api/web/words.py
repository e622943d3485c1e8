"""Offers, policies, states and times in plain words, for the pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from kernel.lexicon import SlotOffer

DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
_SHORT = {key: name[:3] for key, name in DAY_NAMES.items()}


def zone(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    """The zone named `name` if it is a real IANA zone, else `fallback`'s."""
    for candidate in (name, fallback, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def zone_names() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))


def when(moment: datetime | None, tz: str | None) -> str:
    """`Tue 1 Dec 2026, 14:30 (Europe/Paris)`: always with the zone named."""
    if moment is None:
        return "—"
    z = zone(tz)
    local = moment.astimezone(z)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} ({z.key})"


def clock(moment: datetime | None, tz: str | None) -> str:
    """`14:30` in the zone (for ranges whose date was already said)."""
    if moment is None:
        return "—"
    return f"{moment.astimezone(zone(tz)):%H:%M}"


def meeting_time(start: datetime | None, end: datetime | None, tz: str | None) -> str:
    """`Tue 1 Dec 2026, 14:30–15:00 (Europe/Paris)`."""
    if start is None or end is None:
        return "no time yet"
    z = zone(tz)
    a, b = start.astimezone(z), end.astimezone(z)
    if a.date() == b.date():
        return f"{a:%a} {a.day} {a:%b %Y, %H:%M}–{b:%H:%M} ({z.key})"
    return f"{when(start, tz)} – {when(end, tz)}"


def minutes(n: int) -> str:
    if n % 1440 == 0:
        days = n // 1440
        return f"{days} day" + ("s" if days != 1 else "")
    if n % 60 == 0:
        hours = n // 60
        return f"{hours} hour" + ("s" if hours != 1 else "")
    if n > 60:
        return f"{n // 60} h {n % 60} min"
    return f"{n} minutes"


def join_or(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def days_phrase(days: tuple[str, ...]) -> str:
    """`Mon–Fri`, `Mon, Wed, Fri`, `every day`."""
    idx = sorted(DAY_KEYS.index(d) for d in set(days) if d in DAY_KEYS)
    if len(idx) == 7:
        return "every day"
    if len(idx) >= 3 and idx == list(range(idx[0], idx[-1] + 1)):
        return f"{_SHORT[DAY_KEYS[idx[0]]]}–{_SHORT[DAY_KEYS[idx[-1]]]}"
    return ", ".join(_SHORT[DAY_KEYS[i]] for i in idx)


def policy_words(policy: str, host: str) -> str:
    return {
        "anyone": "Anyone with an ATProto account (for example Bluesky) may ask for a meeting.",
        "followers": f"Only people who follow {host} may ask for a meeting.",
        "mutuals": f"Only people who follow {host} and whom {host} follows back may ask for a meeting.",
    }.get(
        policy,
        f"Only mutual follows of {host} may ask (the offer names a policy Huddle does not know, "
        "so the strictest one applies).",
    )


@dataclass(frozen=True)
class OfferSummary:
    """An offer described for guests: each line one fact in words."""

    hours: list[str]
    durations: str
    facts: list[str]


def summarize(offer: SlotOffer) -> OfferSummary:
    hours = [f"{days_phrase(w.days)}, {w.start}–{w.end}" for w in offer.windows]
    facts = [
        f"Book at least {minutes(offer.min_notice_minutes)} ahead, up to {offer.horizon_days} days ahead.",
        f"Huddle picks the best free time for you and holds it for {minutes(offer.hold_minutes)} "
        "while you confirm.",
    ]
    if offer.buffer_before_minutes or offer.buffer_after_minutes:
        facts.append(
            f"The host keeps {minutes(offer.buffer_before_minutes)} free before and "
            f"{minutes(offer.buffer_after_minutes)} after each meeting."
            if offer.buffer_before_minutes and offer.buffer_after_minutes
            else f"The host keeps {minutes(offer.buffer_before_minutes or offer.buffer_after_minutes)} free "
            + ("before" if offer.buffer_before_minutes else "after")
            + " each meeting."
        )
    if offer.max_per_day:
        facts.append(f"At most {offer.max_per_day} meeting{'s' if offer.max_per_day != 1 else ''} a day.")
    if offer.requires_approval:
        facts.append("The host approves each request before it is confirmed.")
    else:
        facts.append("Once you confirm the proposed time, the meeting is booked.")
    if offer.location:
        facts.append(f"Where: {offer.location}")
    closed = [o.date.isoformat() for o in offer.date_overrides if not o.windows]
    if closed:
        facts.append("Closed on " + ", ".join(closed[:10]) + ("…" if len(closed) > 10 else "") + ".")
    return OfferSummary(
        hours=hours,
        durations=join_or([str(d) for d in offer.durations]) + " minutes",
        facts=facts,
    )


@dataclass(frozen=True)
class StateWords:
    title: str
    detail: str
    next_step: str


STATES = {
    "pending": StateWords(
        "Finding a time",
        "Huddle is checking the host's calendar and picking the best free time for you.",
        "This page updates by itself.",
    ),
    "held": StateWords(
        "A time is held for you",
        "This time is reserved for you while you decide.",
        "Confirm it before the hold runs out, or cancel to let it go.",
    ),
    "confirmed": StateWords(
        "Confirmed",
        "The meeting is booked.",
        "Add it to your calendar with the invitation file below.",
    ),
    "denied": StateWords(
        "You cannot book this host",
        "The host only takes requests from some people.",
        "Follow the host (or ask them to follow you back), then ask again.",
    ),
    "unavailable": StateWords(
        "No free time found",
        "There was no free time that fits your request.",
        "Try a different length, a wider range of dates, or other preferred hours.",
    ),
    "expired": StateWords(
        "The hold ran out",
        "The time was not confirmed in time, so it was released.",
        "Ask again: Huddle will pick the best time that is free now.",
    ),
    "declined": StateWords(
        "The host declined",
        "The host did not accept this request.",
        "You may ask for another time, or contact the host.",
    ),
    "cancelled": StateWords(
        "Cancelled",
        "This meeting was cancelled.",
        "Ask again if you still want to meet.",
    ),
}


def state_words(state: str) -> StateWords:
    return STATES.get(state, StateWords(state, "", ""))
