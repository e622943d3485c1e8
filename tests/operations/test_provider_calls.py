"""Every call to a provider is on the process's /metrics and /debug/tracez: counted by status, traced.

What an operator checks: after a booking is confirmed against the Google emulator, the worker's
`huddle_provider_calls_total{provider="google",status="200"}` moved and its /debug/tracez shows the
CLIENT span of the event insert inside the activity that made it; failures are counted by what they
were (a status, `timeout`, `connection`), and no span names an email, a path or a token.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine

from api.booking_commands import send_command
from clients.calendar.caldav_provider import CaldavCalendar
from clients.calendar.errors import ProviderAuthError, ProviderUnavailable
from clients.calendar.google import GoogleCalendar
from clients.calendar.microsoft import MicrosoftCalendar
from clients.mail.smtp import SmtpConfig, SmtpTransport
from clients.mail.transport import Envelope, PermanentMailError, TransientMailError
from kernel.booking.messages import CommandInput
from models.settings import Settings
from tests.bookings.helpers import book, five_slot_record, make_request, seed_offer
from tests.calendars.conftest import api_port, huddle_api, owner, settings  # noqa: F401  (fixtures)
from tests.calendars.helpers import Owner, eventually
from tests.emulators.fixtures import (  # noqa: F401  (fixtures)
    Radicale,
    google,
    google_server,
    graph,
    graph_server,
    radicale_server,
    tls_files,
)
from tests.emulators.google import GoogleEmulator
from tests.emulators.test_google_calendar import Tokens
from tests.notifications.smtp_peer import SmtpPeer
from tests.operations.scrape import free_port, kept_spans, process_pages, scrape, trace_spans, value
from workers.temporal_client import connect_temporal
from workers.worker import build_workers, run_workers

# For tests of clients alone: no database, no Temporal, just this process's pages.
PAGES_ONLY = Settings(_env_file=None, dev_mode=True)  # type: ignore[call-arg]


@pytest_asyncio.fixture
async def traced_worker(settings: Settings, engine: Engine) -> AsyncIterator[Settings]:  # noqa: F811
    """All task queues served on a client with the tracing interceptor, as `huddle worker` runs them."""
    client = await connect_temporal(settings)
    executor = ThreadPoolExecutor(max_workers=64)
    stop = asyncio.Event()
    task = asyncio.create_task(run_workers(build_workers(client, settings, engine, executor=executor), stop))
    yield settings
    stop.set()
    await task
    executor.shutdown(wait=True)


async def test_a_confirmed_booking_counts_and_traces_its_google_calls(
    traced_worker: Settings,
    engine: Engine,
    owner: Owner,  # noqa: F811
    google: GoogleEmulator,  # noqa: F811
) -> None:
    worker = traced_worker
    account = google.add_account(f"host-{uuid.uuid4().hex[:8]}@gmail.test")
    await asyncio.to_thread(owner.connect_google, google, account)
    uri = seed_offer(engine, five_slot_record(), host=owner.did)
    client = await connect_temporal(worker)

    with process_pages(worker) as pages:
        before = await asyncio.to_thread(scrape, pages)
        request = make_request(worker, uri, host=owner.did)
        assert (await book(client, worker, engine, request)).state == "held"
        confirmed = await send_command(
            client, engine, request.booking_id, "finalize", CommandInput(request.guest_did)
        )
        assert confirmed.state == "confirmed"
        await asyncio.to_thread(
            eventually, lambda: google.live_events(account), timeout=60, what="the event in Google"
        )
        after = await asyncio.to_thread(scrape, pages)
        inserts = await asyncio.to_thread(kept_spans, pages, "google calendar.events.insert")
        assert inserts, "no CLIENT span for the event insert"
        trace = await asyncio.to_thread(trace_spans, pages, inserts[0]["traceId"])

    ok = {"provider": "google", "status": "200"}
    name = "huddle_provider_calls_total"
    assert value(after, name, **ok) - value(before, name, **ok) >= 2  # busy read, then the insert
    assert value(after, "huddle_provider_call_duration_seconds_count", provider="google") > value(
        before, "huddle_provider_call_duration_seconds_count", provider="google"
    )
    span = inserts[0]
    assert span["kind"] == "CLIENT" and span["status"] == "UNSET"
    assert span["attributes"]["http.response.status_code"] == 200
    assert span["attributes"]["server.address"] == "127.0.0.1"
    # It hangs off the activity that wrote the event, in the booking's trace.
    parent = next(s for s in trace if s["spanId"] == span["parentSpanId"])
    assert parent["name"] == "RunActivity:create_calendar_events", [s["name"] for s in trace]
    # The calendar id is the account's email, and in every request path: never in a span.
    assert account not in json.dumps(trace) and "/calendars/" not in json.dumps(trace)


def test_provider_failures_are_counted_by_what_went_wrong(
    google: GoogleEmulator,  # noqa: F811
    radicale_server: Radicale,  # noqa: F811
) -> None:
    account = google.add_account(f"a-{uuid.uuid4().hex[:8]}@gmail.test")
    calendar = GoogleCalendar(Tokens(google, account), api_endpoint=google.api_endpoint, timeout=1.0)
    closed = f"http://127.0.0.1:{free_port()}/v1.0"
    microsoft = MicrosoftCalendar(Tokens(google, account), graph_url=closed, timeout=1.0)
    user, _ = radicale_server.account()
    caldav = CaldavCalendar(radicale_server.url, user, "wrong-password", allow_http=True, timeout=5)

    with process_pages(PAGES_ONLY) as pages:
        before = scrape(pages)
        google.faults.add("GET", r"/users/me/calendarList$", status=503)
        with pytest.raises(ProviderUnavailable):
            calendar.list_calendars()
        google.faults.add("GET", r"/users/me/calendarList$", lose_response=3.0)
        with pytest.raises(ProviderUnavailable):
            calendar.list_calendars()
        with pytest.raises(ProviderUnavailable):
            microsoft.me()
        with pytest.raises(ProviderAuthError):
            caldav.list_calendars()
        after = scrape(pages)
        tracez = httpx.get(f"{pages}/debug/tracez").text
        listed = kept_spans(pages, "google calendar.calendarList.list")

    def moved(provider: str, status: str) -> float:
        labels = {"provider": provider, "status": status}
        return value(after, "huddle_provider_calls_total", **labels) - value(
            before, "huddle_provider_calls_total", **labels
        )

    assert moved("google", "503") == 1
    assert moved("google", "timeout") == 1
    assert moved("microsoft", "connection") == 1
    assert moved("caldav", "401") >= 1
    errors = [s for s in listed if s["status"] == "ERROR"]
    assert {s["attributes"]["error.type"] for s in errors} >= {"503", "timeout"}
    # Neither the bearer token, the password nor the account's email is in any span.
    for secret in (calendar._credentials.token, "wrong-password", account):
        assert secret not in tracez
    calendar.close()
    microsoft.close()
    caldav.close()


def test_smtp_sends_are_counted_by_the_relays_reply() -> None:
    relay = SmtpPeer()
    relay.start()
    refused = f"nobody-{uuid.uuid4().hex[:6]}@example.test"
    relay.recorder.refuse_rcpt[refused] = "550 5.1.1 no such user"
    message = b"Subject: hello\r\n\r\nhi\r\n"
    try:
        with process_pages(PAGES_ONLY) as pages:
            before = scrape(pages)
            with SmtpTransport(SmtpConfig.from_url(relay.url, timeout=5)).session() as session:
                ok = Envelope("<a@huddle.test>", "no-reply@huddle.test", "ann@example.test", message)
                assert session.send(ok, lambda: True)
                with pytest.raises(PermanentMailError):
                    session.send(
                        Envelope("<b@huddle.test>", "no-reply@huddle.test", refused, message), lambda: True
                    )
            relay.stop()
            with pytest.raises(TransientMailError):
                with SmtpTransport(SmtpConfig.from_url(relay.url, timeout=5)).session() as session:
                    session.send(ok, lambda: True)
            after = scrape(pages)
            sends = kept_spans(pages, "smtp send")
    finally:
        relay.stop()

    for status in ("250", "550", "connection"):
        labels = {"provider": "smtp", "status": status}
        assert (
            value(after, "huddle_provider_calls_total", **labels)
            - value(before, "huddle_provider_calls_total", **labels)
            == 1
        ), status
    assert sends and all(s["kind"] == "CLIENT" for s in sends)
    assert refused not in json.dumps(sends) and "ann@example.test" not in json.dumps(sends)
