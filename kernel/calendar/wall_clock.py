"""Wall-clock notation used by offers and preferences: weekday names and "HH:MM"."""

from __future__ import annotations

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60


def parse_hhmm(text: str, *, end_of_day: bool = False) -> int:
    """Minutes after midnight for "HH:MM"; "24:00" only when ``end_of_day``. ValueError otherwise."""
    if len(text) != 5 or text[2] != ":" or not (text[:2] + text[3:]).isascii():
        raise ValueError(f"not an HH:MM time: {text!r}")
    hours, minutes = text[:2], text[3:]
    if not (hours.isdigit() and minutes.isdigit()):
        raise ValueError(f"not an HH:MM time: {text!r}")
    h, m = int(hours), int(minutes)
    if h == 24 and m == 0 and end_of_day:
        return MINUTES_PER_DAY
    if h > 23 or m > 59:
        raise ValueError(f"not a time of day: {text!r}")
    return h * 60 + m


def format_hhmm(minutes: int) -> str:
    """ "HH:MM" for minutes after midnight (1440 is "24:00")."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def format_days(days: tuple[str, ...] | list[str]) -> str:
    """Weekday names as people write them: consecutive runs joined, e.g. "Mon–Fri, Sun"."""
    indexes = sorted({WEEKDAYS.index(d) for d in days if d in WEEKDAYS})
    runs: list[list[int]] = []
    for i in indexes:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    names = [WEEKDAYS[i].capitalize() for i in range(7)]
    parts = [names[r[0]] if len(r) == 1 else f"{names[r[0]]}–{names[r[-1]]}" for r in runs]
    if len(runs) == 1 and len(runs[0]) == 7:
        return "Every day"
    return ", ".join(parts)
