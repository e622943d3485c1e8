"""Huddle's Graph client against the emulator: getSchedule windows, calendarView, transactionId, errors."""

from __future__ import annotations

import ssl
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from clients.calendar.errors import ProviderRateLimited, ProviderRequestError, ProviderUnavailable
from clients.calendar.microsoft import MicrosoftCalendar
from clients.calendar.providers import EventSpec
from tests.emulators.graph import GraphEmulator
from tests.emulators.server import TlsFiles

NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)


class Tokens:
    def __init__(self, graph: GraphEmulator, upn: str) -> None:
        self.graph, self.upn = graph, upn
        self.access = graph.grant(upn)

    def current(self) -> str:
        return self.access

    def refreshed(self) -> str:
        self.access = self.graph.grant(self.upn)
        return self.access


def _client(
    graph: GraphEmulator, tls: TlsFiles, *, personal: bool = False, timeout: float = 3.0
) -> tuple[MicrosoftCalendar, str, str]:
    upn = f"u-{uuid.uuid4().hex[:8]}@contoso.test"
    default = graph.add_user(upn, personal=personal, others=("Work",))
    client = MicrosoftCalendar(
        Tokens(graph, upn),
        graph_url=graph.graph_url,
        mailbox=upn,
        account_kind="personal" if personal else "work",
        default_calendar_id=default,
        timeout=timeout,
        verify=str(tls.ca),
    )
    return client, upn, default


def test_get_schedule_windows_stay_under_62_days(graph: GraphEmulator, tls_files: TlsFiles) -> None:
    client, upn, default = _client(graph, tls_files)
    graph.add_event(default, NOW + timedelta(days=120), NOW + timedelta(days=120, hours=1))
    graph.add_event(default, NOW + timedelta(hours=2), NOW + timedelta(hours=3), response="notResponded")
    graph.add_event(default, NOW + timedelta(hours=4), NOW + timedelta(hours=5), response="declined")
    graph.add_event(default, NOW + timedelta(hours=6), NOW + timedelta(hours=7), show_as="oof")

    read = client.busy([default], NOW, NOW + timedelta(days=130), unanswered_is_busy=True)
    assert [iv.start for iv in read.intervals] == [
        NOW + timedelta(hours=2),
        NOW + timedelta(hours=6),
        NOW + timedelta(days=120),
    ]
    assert graph.faults.count("POST", "/getSchedule$") == 3
    unanswered_free = client.busy([default], NOW, NOW + timedelta(days=1), unanswered_is_busy=False)
    assert [iv.start for iv in unanswered_free.intervals] == [NOW + timedelta(hours=6)]
    # In one piece, Graph refuses the window.
    refused = httpx.post(
        f"{graph.graph_url}/me/calendar/getSchedule",
        json={
            "schedules": [upn],
            "startTime": {"dateTime": NOW.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "endTime": {
                "dateTime": (NOW + timedelta(days=62)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
        },
        headers={"Authorization": f"Bearer {graph.grant(upn)}"},
        verify=ssl.create_default_context(cafile=str(tls_files.ca)),
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "ErrorTimeIntervalTooBig"


def test_other_calendars_and_personal_accounts_use_calendar_view(
    graph: GraphEmulator, tls_files: TlsFiles
) -> None:
    client, upn, default = _client(graph, tls_files, personal=True)
    work = graph.calendar_named(upn, "Work")
    for day in range(520):  # more than one page of 500
        graph.add_event(work, NOW + timedelta(hours=day), NOW + timedelta(hours=day, minutes=30))
    graph.add_event(default, NOW, NOW + timedelta(hours=1), show_as="free")
    graph.add_event(default, NOW + timedelta(hours=1), NOW + timedelta(hours=2), response="notResponded")

    read = client.busy([default, work], NOW, NOW + timedelta(days=30), unanswered_is_busy=False)
    assert len(read.intervals) == 520 and read.errors == {}
    assert graph.faults.count("POST", "/getSchedule$") == 0
    assert graph.faults.count("GET", r"/calendars/[^/]+/calendarView$") == 1 + 2  # default + work (2 pages)
    missing = client.busy(["AAMk-no-such-calendar"], NOW, NOW + timedelta(days=1), unanswered_is_busy=True)
    assert list(missing.errors) == ["AAMk-no-such-calendar"]


def test_transaction_ids_make_creates_idempotent(graph: GraphEmulator, tls_files: TlsFiles) -> None:
    client, _, default = _client(graph, tls_files, timeout=1.0)
    spec = EventSpec(
        key=f"huddle-{uuid.uuid4().hex}-1",
        summary="s",
        description="d",
        start=NOW,
        end=NOW + timedelta(hours=1),
    )
    graph.faults.add("POST", r"/events$", lose_response=3.0)
    with pytest.raises(ProviderUnavailable):
        client.create_event(default, spec)
    first = client.create_event(default, spec)
    again = client.create_event(default, spec)
    assert first == again and [e["id"] for e in graph.live_events(default)] == [first]
    client.delete_event(default, first)
    client.delete_event(default, first)  # 404: gone already
    assert graph.live_events(default) == []


def test_throttling_and_outages(graph: GraphEmulator, tls_files: TlsFiles) -> None:
    client, _, default = _client(graph, tls_files)
    graph.faults.add("POST", "/getSchedule$", status=429, headers={"Retry-After": "3"})
    with pytest.raises(ProviderRateLimited) as limited:
        client.busy([default], NOW, NOW + timedelta(days=1), unanswered_is_busy=True)
    assert limited.value.retry_after == 3.0
    graph.faults.add("POST", "/getSchedule$", status=504)
    with pytest.raises(ProviderUnavailable):
        client.busy([default], NOW, NOW + timedelta(days=1), unanswered_is_busy=True)


def test_a_subscription_needs_an_endpoint_that_echoes_the_validation_token(
    graph: GraphEmulator, tls_files: TlsFiles
) -> None:
    client, _, default = _client(graph, tls_files)
    with pytest.raises(ProviderRequestError, match="validation request failed"):
        client.subscribe(default, "state", "http://127.0.0.1:9/nothing-listens", NOW + timedelta(days=2))
    too_long = httpx.post(
        f"{graph.graph_url}/subscriptions",
        json={
            "changeType": "created",
            "notificationUrl": "http://127.0.0.1:9/x",
            "resource": f"/me/calendars/{default}/events",
            "expirationDateTime": (datetime.now(UTC) + timedelta(days=8)).isoformat(),
        },
        headers={"Authorization": f"Bearer {client._token}"},
        verify=ssl.create_default_context(cafile=str(tls_files.ca)),
    )
    assert too_long.status_code == 400 and "10080 minutes" in too_long.json()["error"]["message"]
