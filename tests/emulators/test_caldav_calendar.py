"""Huddle's CalDAV client against a real Radicale: discovery, busy filtering, If-None-Match, auth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clients.calendar.caldav_provider import CaldavCalendar
from clients.calendar.errors import ProviderAuthError
from clients.calendar.providers import EventSpec
from tests.calendars.caldav_util import add_caldav_event, caldav_events
from tests.emulators.fixtures import Radicale, radicale_calendars

NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
HOUR = timedelta(hours=1)


def test_discovery_and_what_counts_as_busy(radicale_server: Radicale) -> None:
    user, password = radicale_server.account()
    work, home = radicale_calendars(radicale_server, user, password, ("Work", "Home"))
    add_caldav_event(radicale_server.url, user, password, work, NOW, NOW + HOUR)
    add_caldav_event(
        radicale_server.url, user, password, work, NOW + 2 * HOUR, NOW + 3 * HOUR, transp="TRANSPARENT"
    )
    add_caldav_event(
        radicale_server.url, user, password, home, NOW + 4 * HOUR, NOW + 5 * HOUR, status="CANCELLED"
    )
    add_caldav_event(
        radicale_server.url, user, password, home, NOW + 6 * HOUR, NOW + 7 * HOUR, my_partstat="DECLINED"
    )
    add_caldav_event(
        radicale_server.url, user, password, home, NOW + 8 * HOUR, NOW + 9 * HOUR, my_partstat="NEEDS-ACTION"
    )
    add_caldav_event(
        radicale_server.url, user, password, home, NOW + 10 * HOUR, NOW + 11 * HOUR, my_partstat="ACCEPTED"
    )

    client = CaldavCalendar(radicale_server.url, user, password, allow_http=True)
    try:
        assert sorted(c.name for c in client.list_calendars()) == ["Home", "Work"]
        read = client.busy([work, home], NOW, NOW + timedelta(days=1), unanswered_is_busy=True)
        assert sorted(iv.start for iv in read.intervals) == [NOW, NOW + 8 * HOUR, NOW + 10 * HOUR]
        strict = client.busy([work, home], NOW, NOW + timedelta(days=1), unanswered_is_busy=False)
        assert sorted(iv.start for iv in strict.intervals) == [NOW, NOW + 10 * HOUR]
        missing = client.busy([work.replace("/work/", "/nope/")], NOW, NOW + HOUR, unanswered_is_busy=True)
        assert list(missing.errors) == [work.replace("/work/", "/nope/")]
    finally:
        client.close()


def test_event_writes_are_idempotent(radicale_server: Radicale) -> None:
    user, password = radicale_server.account()
    (meetings,) = radicale_calendars(radicale_server, user, password, ("Meetings",))
    client = CaldavCalendar(radicale_server.url, user, password, allow_http=True)
    spec = EventSpec(
        key="booking-1@huddle.test", summary="Office hours", description="d", start=NOW, end=NOW + HOUR
    )
    try:
        href = client.create_event(meetings, spec)
        assert client.create_event(meetings, spec) == href  # 412 from If-None-Match: it is there
        assert caldav_events(radicale_server.url, user, password, meetings) == ["booking-1@huddle.test"]
        client.update_event(meetings, href, EventSpec(**{**spec.__dict__, "end": NOW + 2 * HOUR}))
        busy = client.busy([meetings], NOW, NOW + 3 * HOUR, unanswered_is_busy=True)
        assert [(iv.start, iv.end) for iv in busy.intervals] == [(NOW, NOW + 2 * HOUR)]
        client.delete_event(meetings, href)
        client.delete_event(meetings, href)
        assert caldav_events(radicale_server.url, user, password, meetings) == []
    finally:
        client.close()


def test_a_wrong_password_is_an_auth_error(radicale_server: Radicale) -> None:
    user, password = radicale_server.account()
    (work,) = radicale_calendars(radicale_server, user, password, ("Work",))
    client = CaldavCalendar(radicale_server.url, user, "changed-since", allow_http=True)
    try:
        with pytest.raises(ProviderAuthError):
            client.busy([work], NOW, NOW + HOUR, unanswered_is_busy=True)
    finally:
        client.close()
