"""Huddle's Google client against the emulator: limits, error mapping, idempotent inserts, sync tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from clients.calendar.errors import (
    ProviderAuthError,
    ProviderRateLimited,
    ProviderUnavailable,
    SyncTokenExpired,
)
from clients.calendar.google import GoogleCalendar, GoogleOAuth
from clients.calendar.providers import EventSpec
from tests.emulators.google import GoogleEmulator

NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)


class Tokens:
    """Access tokens as Huddle's ConnectorTokens hands them out, counting refreshes."""

    def __init__(self, google: GoogleEmulator, account: str) -> None:
        self.access, self.refresh = google.grant(account)
        self.oauth = GoogleOAuth(
            client_id=google.client_id,
            client_secret=google.client_secret,
            auth_uri=f"{google.url}/o/oauth2/v2/auth",
            token_uri=f"{google.url}/token",
        )
        self.refreshes = 0

    def current(self) -> str:
        return self.access

    def refreshed(self) -> str:
        self.refreshes += 1
        self.access = self.oauth.refresh(self.refresh)["access_token"]
        return self.access


def _client(google: GoogleEmulator, *others: str, timeout: float = 3.0) -> tuple[GoogleCalendar, Tokens, str]:
    account = google.add_account(f"a-{uuid.uuid4().hex[:8]}@gmail.test", others=others)
    tokens = Tokens(google, account)
    return GoogleCalendar(tokens, api_endpoint=google.api_endpoint, timeout=timeout), tokens, account


def _spec(key: str = "huddle-b1-1") -> EventSpec:
    return EventSpec(
        key=key,
        summary="Office hours with guest",
        description="d",
        start=NOW,
        end=NOW + timedelta(minutes=30),
    )


def test_freebusy_is_asked_in_pieces_google_accepts(google: GoogleEmulator) -> None:
    others = tuple(f"c{i}-{uuid.uuid4().hex[:6]}@group.test" for i in range(55))
    client, _, account = _client(google, *others)
    google.add_event(others[-1], NOW + timedelta(days=100), NOW + timedelta(days=100, hours=1))
    google.add_event(account, NOW + timedelta(days=1), NOW + timedelta(days=1, hours=1))

    read = client.busy([account, *others], NOW, NOW + timedelta(days=130), unanswered_is_busy=True)

    assert read.errors == {}
    assert [iv.start for iv in read.intervals] == [NOW + timedelta(days=1), NOW + timedelta(days=100)]
    assert google.faults.count("POST", "/freeBusy$") == 2 * 3  # ≤ 50 calendars × ≤ 60 days
    # Asked in one piece, Google itself refuses both limits.
    refused = httpx.post(
        f"{google.api_endpoint}freeBusy",
        json={"timeMin": NOW.isoformat(), "timeMax": (NOW + timedelta(days=91)).isoformat(), "items": []},
        headers={"Authorization": f"Bearer {google.grant(account)[0]}"},
    )
    assert refused.status_code == 400 and refused.json()["error"]["errors"][0]["reason"] == "timeRangeTooLong"


def test_a_calendar_that_cannot_be_read_is_an_error_never_free(google: GoogleEmulator) -> None:
    client, _, account = _client(google)
    read = client.busy([account, "gone@group.test"], NOW, NOW + timedelta(days=1), unanswered_is_busy=True)
    assert read.errors == {"gone@group.test": "notFound"}


def test_what_counts_as_busy(google: GoogleEmulator) -> None:
    client, _, account = _client(google)
    hour = timedelta(hours=1)
    google.add_event(account, NOW, NOW + hour)  # busy
    google.add_event(account, NOW + 2 * hour, NOW + 3 * hour, transparency="transparent")
    google.add_event(account, NOW + 4 * hour, NOW + 5 * hour, self_response="declined")
    google.add_event(account, NOW + 6 * hour, NOW + 7 * hour, self_response="needsAction")
    google.add_event(account, NOW + 8 * hour, NOW + 9 * hour, self_response="accepted")
    cancelled = google.add_event(account, NOW + 10 * hour, NOW + 11 * hour)
    google.delete_event(account, cancelled)

    def starts(unanswered_is_busy: bool) -> list[datetime]:
        read = client.busy([account], NOW, NOW + timedelta(days=1), unanswered_is_busy=unanswered_is_busy)
        return [iv.start for iv in read.intervals]

    assert starts(True) == [NOW, NOW + 6 * hour, NOW + 8 * hour]  # freeBusy counts unanswered ones
    assert starts(False) == [NOW, NOW + 8 * hour]  # events.list lets Huddle leave them out
    assert google.faults.count("GET", "/events$") >= 1


def test_errors_are_sorted_by_what_to_do(google: GoogleEmulator) -> None:
    client, _, account = _client(google)
    google.faults.add("POST", "/freeBusy$", status=429, headers={"Retry-After": "7"})
    with pytest.raises(ProviderRateLimited) as limited:
        client.busy([account], NOW, NOW + timedelta(days=1), unanswered_is_busy=True)
    assert limited.value.retry_after == 7.0
    google.faults.add(
        "POST",
        "/freeBusy$",
        status=403,
        body={
            "error": {
                "code": 403,
                "message": "Rate Limit Exceeded",
                "errors": [{"reason": "rateLimitExceeded"}],
            }
        },
    )
    with pytest.raises(ProviderRateLimited):
        client.busy([account], NOW, NOW + timedelta(days=1), unanswered_is_busy=True)
    google.faults.add("POST", "/freeBusy$", status=503)
    with pytest.raises(ProviderUnavailable):
        client.busy([account], NOW, NOW + timedelta(days=1), unanswered_is_busy=True)


def test_an_expired_access_token_is_refreshed_once(google: GoogleEmulator) -> None:
    client, tokens, account = _client(google)
    google.expire_access_tokens(account)
    assert client.busy([account], NOW, NOW + timedelta(days=1), unanswered_is_busy=True).errors == {}
    assert tokens.refreshes == 1
    google.revoke(account)
    with pytest.raises(ProviderAuthError, match="invalid_grant"):
        client.busy([account], NOW, NOW + timedelta(days=1), unanswered_is_busy=True)


def test_inserting_again_after_a_lost_response_makes_no_second_event(google: GoogleEmulator) -> None:
    client, _, account = _client(google, timeout=1.0)
    google.faults.add("POST", r"/events$", lose_response=3.0)
    with pytest.raises(ProviderUnavailable):
        client.create_event(account, _spec())
    assert len(google.live_events(account)) == 1  # the insert happened; only the answer was lost
    event_id = client.create_event(account, _spec())  # the retry: 409 duplicate, then a patch
    assert [e["id"] for e in google.live_events(account)] == [event_id]
    assert google.faults.served("POST", r"/events$")[-1][0] == 409
    client.delete_event(account, event_id)
    client.delete_event(account, event_id)  # 410 deleted: fine
    assert google.live_events(account) == []


def test_sync_tokens_and_the_full_sync_after_410(google: GoogleEmulator) -> None:
    client, _, account = _client(google)
    google.add_event(account, NOW, NOW + timedelta(hours=1))
    full, token = client.changes(account, None, NOW - timedelta(days=1))
    assert full.unknown and len(full.ranges) == 1 and token
    later = google.add_event(account, NOW + timedelta(days=2), NOW + timedelta(days=2, hours=1))
    changed, token = client.changes(account, token, NOW)
    assert [iv.start for iv in changed.ranges] == [NOW + timedelta(days=2)] and not changed.unknown
    google.delete_event(account, later)
    deleted, token = client.changes(account, token, NOW)
    assert deleted.unknown and deleted.ranges == []  # a deletion tells no times
    google.invalidate_sync_tokens(account)
    with pytest.raises(SyncTokenExpired):
        client.changes(account, token, NOW)


def test_watch_channels_announce_themselves_and_stop(google: GoogleEmulator) -> None:
    client, _, account = _client(google)
    received: list[dict[str, str]] = []
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from tests.emulators.server import ServerThread

    async def hook(request: Request) -> Response:
        received.append(dict(request.headers))
        return Response(status_code=200)

    server = ServerThread(Starlette(routes=[Route("/hook", hook, methods=["POST"])])).start()
    try:
        grant = client.watch(
            account,
            "chan-1-" + uuid.uuid4().hex,
            "secret-token",
            f"{server.url}/hook",
            NOW + timedelta(days=30),
        )
        assert grant.expires_at <= datetime.now(UTC) + timedelta(days=7, seconds=5)  # Google's cap
        google.add_event(account, NOW, NOW + timedelta(hours=1))
        sent = google.wait_for_deliveries(len(google.deliveries))
        states = [h["x-goog-resource-state"] for h in received]
        assert states[:2] == ["sync", "exists"] and sent
        assert {h["x-goog-channel-token"] for h in received} == {"secret-token"}
        assert [int(h["x-goog-message-number"]) for h in received] == list(range(1, len(received) + 1))
        channel_id = received[0]["x-goog-channel-id"]
        client.stop(channel_id, grant.external_id)
        assert google.active_channels(account) == []
    finally:
        server.stop()
