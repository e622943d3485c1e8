"""`GET /bookings/{id}.ics`: the invitation for the booking's host and guest, nobody else."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from models.settings import Settings
from tests.identity.helpers import DidWebHost
from tests.notifications.helpers import check_itip, seed_booking, vevent

METHOD = "com.huddle.getBooking"


@pytest.fixture
def people() -> Iterator[dict[str, DidWebHost]]:
    hosts = {name: DidWebHost() for name in ("host", "guest", "stranger")}
    yield hosts
    for host in hosts.values():
        host.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _get(client: TestClient, settings: Settings, booking: str, who: DidWebHost | None, lxm: str = METHOD):
    headers = {"Authorization": f"Bearer {who.token(lxm, aud=settings.service_did)}"} if who else {}
    return client.get(f"/bookings/{booking}.ics", headers=headers)


def test_host_and_guest_download_the_invitation(
    engine: Engine, settings: Settings, client: TestClient, people: dict[str, DidWebHost]
) -> None:
    booking = seed_booking(engine, host=people["host"].did, guest=people["guest"].did)
    for who in ("host", "guest"):
        response = _get(client, settings, booking, people[who])
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "text/calendar; charset=utf-8; method=REQUEST"
        assert response.headers["content-disposition"] == f'attachment; filename="huddle-{booking}.ics"'
        assert response.headers["cache-control"] == "private, no-store"
        event = vevent(check_itip(response.content, "REQUEST"))
        assert str(event["UID"]) == f"{booking}@huddle.test"
        assert event.decoded("SEQUENCE") == 3


def test_after_a_cancellation_it_is_the_cancel_with_a_higher_sequence(
    engine: Engine, settings: Settings, client: TestClient, people: dict[str, DidWebHost]
) -> None:
    booking = seed_booking(
        engine, states=("held", "confirmed", "cancelled"), host=people["host"].did, guest=people["guest"].did
    )
    response = _get(client, settings, booking, people["guest"])
    assert response.status_code == 200 and "method=CANCEL" in response.headers["content-type"]
    event = vevent(check_itip(response.content, "CANCEL"))
    assert str(event["UID"]) == f"{booking}@huddle.test" and event.decoded("SEQUENCE") == 4


def test_strangers_and_unknown_bookings_look_the_same(
    engine: Engine, settings: Settings, client: TestClient, people: dict[str, DidWebHost]
) -> None:
    booking = seed_booking(engine, host=people["host"].did, guest=people["guest"].did)
    stranger = _get(client, settings, booking, people["stranger"])
    unknown = _get(client, settings, "nosuchbooking", people["stranger"])
    assert stranger.status_code == unknown.status_code == 404
    assert stranger.json() == unknown.json() == {"error": "NotFound", "message": "booking not found"}


def test_a_token_is_required_and_must_be_for_reading_bookings(
    engine: Engine, settings: Settings, client: TestClient, people: dict[str, DidWebHost]
) -> None:
    booking = seed_booking(engine, host=people["host"].did, guest=people["guest"].did)
    assert _get(client, settings, booking, None).status_code == 401
    assert _get(client, settings, booking, people["guest"], lxm="com.huddle.cancel").status_code == 401


def test_a_booking_without_an_invitation_says_so(
    engine: Engine, settings: Settings, client: TestClient, people: dict[str, DidWebHost]
) -> None:
    held = seed_booking(engine, states=("held",), host=people["host"].did, guest=people["guest"].did)
    response = _get(client, settings, held, people["guest"])
    assert response.status_code == 409 and response.json()["error"] == "InvalidState"
    declined = seed_booking(
        engine, states=("held", "cancelled"), host=people["host"].did, guest=people["guest"].did
    )
    assert _get(client, settings, declined, people["guest"]).status_code == 409
