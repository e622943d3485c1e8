"""Any CalDAV server (RFC 4791) through the `caldav` package: discovery, time-range REPORTs, events.

Busy times come from a calendar-query REPORT with a time range, expanded by the server, then
filtered here (TRANSP, STATUS, the owner's PARTSTAT) the same way as the other providers. Events
are PUT under a name derived from the booking with `If-None-Match: *`: a retry after a lost response
gets 412 and knows the event is there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import caldav
import requests
from caldav.lib import error as dav_error
from icalendar import Calendar, Event

from clients.calendar.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRequestError,
    ProviderUnavailable,
    from_status,
)
from clients.calendar.providers import BusyRead, CalendarInfo, EventSpec
from clients.calltrace import trace_session
from kernel.calendar.intervals import Interval

PRODID = "-//Huddle//Huddle booking//EN"


class CaldavCalendar:
    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        timeout: float = 20.0,
        verify: str | bool = True,
        allow_http: bool = False,
    ) -> None:
        self._username = username
        self._client = caldav.DAVClient(  # type: ignore[operator]
            url=url,
            username=username,
            password=password,
            timeout=int(timeout),
            ssl_verify_cert=verify,
            require_tls=not allow_http,
            rate_limit_handle=False,
            enable_rfc6764=False,
        )
        trace_session(self._client.session, "caldav")

    def close(self) -> None:
        self._client.close()

    def _guard(self, what: str, call: Any) -> Any:
        try:
            return call()
        except dav_error.AuthorizationError as exc:
            raise ProviderAuthError(
                f"the CalDAV server refused the credentials ({what})", status=exc.status
            ) from exc
        except dav_error.RateLimitError as exc:
            raise ProviderRateLimited(
                f"the CalDAV server is rate limiting ({what})",
                retry_after=exc.retry_after_seconds,
                status=exc.status,
            ) from exc
        except dav_error.NotFoundError as exc:
            raise ProviderNotFound(f"{what}: not found on the CalDAV server", status=404) from exc
        except dav_error.DAVError as exc:
            status = exc.status or 0
            if status >= 500 or status == 0:
                raise ProviderUnavailable(f"CalDAV {what} failed: {exc.reason}", status=status) from exc
            raise from_status(status, f"CalDAV {what} failed: {exc.reason}") from exc
        except requests.RequestException as exc:
            raise ProviderUnavailable(f"CalDAV server unreachable ({what}): {exc!r}") from exc

    # ------------------------------------------------------------------ calendars

    def list_calendars(self) -> list[CalendarInfo]:
        calendars = self._guard("discovery", lambda: self._client.principal().get_calendars())
        found = []
        for index, calendar in enumerate(calendars):
            name = self._guard("calendar name", calendar.get_display_name) or str(calendar.url)
            found.append(
                CalendarInfo(id=str(calendar.url), name=str(name), primary=index == 0, writable=True)
            )
        return found

    # ------------------------------------------------------------------ busy

    def busy(
        self, calendar_ids: list[str], start: datetime, end: datetime, *, unanswered_is_busy: bool
    ) -> BusyRead:
        read = BusyRead()
        for calendar_id in calendar_ids:
            calendar = self._client.calendar(url=calendar_id)
            try:
                found = self._guard(
                    "time-range report",
                    lambda c=calendar: c.search(start=start, end=end, event=True, expand=True),
                )
            except (ProviderNotFound, ProviderRequestError) as exc:
                if isinstance(exc, ProviderAuthError):
                    raise
                read.errors[calendar_id] = str(exc)
                continue
            for item in found:
                component = item.icalendar_component
                if _blocks_time(component, self._username, unanswered_is_busy):
                    span = _span(component)
                    if span is not None and span.end > start and span.start < end:
                        read.intervals.append(span)
        return read

    # ------------------------------------------------------------------ events

    def create_event(self, calendar_id: str, spec: EventSpec) -> str:
        href = event_href(calendar_id, spec.key)
        resp = self._guard(
            "event create",
            lambda: self._client.put(
                href, _ics(spec), {"Content-Type": "text/calendar; charset=utf-8", "If-None-Match": "*"}
            ),
        )
        if resp.status == 412:
            return href  # there already: a retry after the server stored our first PUT
        _check(resp.status, "event create")
        return href

    def update_event(self, calendar_id: str, event_id: str, spec: EventSpec) -> None:
        resp = self._guard(
            "event update",
            lambda: self._client.put(event_id, _ics(spec), {"Content-Type": "text/calendar; charset=utf-8"}),
        )
        _check(resp.status, "event update")

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        try:
            resp = self._guard("event delete", lambda: self._client.delete(event_id))
        except ProviderNotFound:
            return
        if resp.status != 404:
            _check(resp.status, "event delete")


def event_href(calendar_url: str, uid: str) -> str:
    safe = quote(uid.replace("@", "-at-"), safe="")
    return f"{calendar_url.rstrip('/')}/{safe}.ics"


def _check(status: int, what: str) -> None:
    if status >= 400:
        error: ProviderError = from_status(status, f"CalDAV {what} answered {status}")
        raise error


def _ics(spec: EventSpec) -> str:
    """A calendar object resource: no METHOD (RFC 4791 §4.1), one VEVENT with our UID."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    event = Event()
    event.add("uid", spec.key)
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", spec.start.astimezone(UTC))
    event.add("dtend", spec.end.astimezone(UTC))
    event.add("summary", spec.summary)
    event.add("description", spec.description)
    if spec.location:
        event.add("location", spec.location)
    event.add("transp", "OPAQUE")
    event.add("status", "CONFIRMED")
    calendar.add_component(event)
    return str(calendar.to_ical().decode())


def _blocks_time(component: Any, username: str, unanswered_is_busy: bool) -> bool:
    if str(component.get("transp", "OPAQUE")).upper() == "TRANSPARENT":
        return False
    if str(component.get("status", "")).upper() == "CANCELLED":
        return False
    partstat = _own_partstat(component, username)
    if partstat == "DECLINED":
        return False
    return not (partstat == "NEEDS-ACTION" and not unanswered_is_busy)


def _own_partstat(component: Any, username: str) -> str | None:
    """The owner's answer to an invitation, when the owner is an attendee we can recognise."""
    attendees = component.get("attendee")
    if attendees is None:
        return None
    if not isinstance(attendees, list):
        attendees = [attendees]
    me = username.lower()
    for attendee in attendees:
        address = str(attendee).lower().removeprefix("mailto:")
        if address == me or (("@" not in me) and address.split("@")[0] == me):
            return str(attendee.params.get("PARTSTAT", "NEEDS-ACTION")).upper()
    return None


def _span(component: Any) -> Interval | None:
    start = component.get("dtstart")
    if start is None:
        return None
    begin = _moment(start.dt)
    if component.get("dtend") is not None:
        finish = _moment(component["dtend"].dt)
    elif component.get("duration") is not None:
        finish = begin + component["duration"].dt
    else:
        finish = begin + (timedelta(days=1) if not isinstance(start.dt, datetime) else timedelta(0))
    if finish < begin:
        return None
    return Interval(begin, finish)


def _moment(value: datetime | date) -> datetime:
    """All-day dates and floating times are taken in UTC (CalDAV gives us no better zone here)."""
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
