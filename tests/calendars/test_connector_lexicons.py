"""The `com.huddle.connector.*` methods as served agree with lexicons/com/huddle/connector/*.json.

Every call below goes to Huddle's real API (Google emulator, real Radicale): its input is first
checked against the method's lexicon (so the test only sends what the lexicon allows), and its answer
is checked against the lexicon's output, or its error name against the method's declared errors.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from api.main import create_app
from kernel.lexicon import LexiconValidationError, validate_input, validate_output, validate_params
from kernel.lexicon.catalog import lexicon_documents
from models.settings import Settings
from tests.calendars.helpers import Owner
from tests.emulators.fixtures import Radicale, radicale_calendars
from tests.emulators.google import GoogleEmulator

PREFIX = "com.huddle.connector."
# Errors any XRPC method may answer (auth, rate limits, a malformed call), declared nowhere in particular.
GENERIC_ERRORS = {
    "InvalidRequest",
    "AuthRequired",
    "AuthMissing",
    "InvalidToken",
    "ExpiredToken",
    "RateLimitExceeded",
}


def _main(nsid: str) -> dict[str, Any]:
    return lexicon_documents()[nsid]["defs"]["main"]


def call(owner: Owner, nsid: str, body: dict[str, Any] | None = None, **params: Any) -> httpx.Response:
    """Call `nsid` with an input its lexicon accepts; check the answer against the lexicon."""
    kind = _main(nsid)["type"]
    if kind == "procedure":
        validate_input(nsid, body or {})
        resp = owner.call(nsid, body or {})
    else:
        validate_params(
            nsid, {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()}
        )
        resp = owner.call(nsid, None, **params)
    if resp.status_code == 200:
        validate_output(nsid, resp.json())
    else:
        error = resp.json()["error"]
        declared = {e["name"] for e in _main(nsid).get("errors", [])}
        assert error in declared | GENERIC_ERRORS, (
            f"{nsid} answered {error}, which its lexicon does not declare"
        )
    return resp


def test_every_connector_route_has_a_lexicon_of_its_kind(settings: Settings) -> None:
    paths = create_app(settings).openapi()["paths"]
    routes = {
        path.removeprefix("/xrpc/"): {m.upper() for m in methods}
        for path, methods in paths.items()
        if path.startswith(f"/xrpc/{PREFIX}")
    }
    documents = {n for n in lexicon_documents() if n.startswith(PREFIX) and n != f"{PREFIX}defs"}
    assert set(routes) == documents
    for nsid, methods in routes.items():
        assert methods == ({"GET"} if _main(nsid)["type"] == "query" else {"POST"}), nsid


def test_google_connector_calls_agree_with_their_lexicons(owner: Owner, google: GoogleEmulator) -> None:
    account = google.add_account(f"host-{uuid.uuid4().hex[:8]}@gmail.test", others=("team@group.test",))
    start = call(owner, f"{PREFIX}startOAuth", {"provider": "google", "returnTo": "/host/calendars"}).json()
    google.login_as = account
    back = httpx.get(httpx.get(start["authorizationUrl"]).headers["location"], timeout=30)
    assert back.status_code == 303  # back to returnTo

    (view,) = call(owner, f"{PREFIX}list").json()["connectors"]
    cid = view["id"]
    found = call(owner, f"{PREFIX}listCalendars", connector=cid, refresh=True).json()["calendars"]
    assert {c["id"] for c in found} == {account, "team@group.test"}

    chosen = call(
        owner,
        f"{PREFIX}update",
        {"connector": cid, "busyCalendars": [account, "team@group.test"], "eventCalendar": None},
    ).json()["connector"]
    assert chosen["eventCalendar"] is None  # null, as the lexicon's `nullable` allows
    assert (
        call(owner, f"{PREFIX}update", {"connector": cid, "eventCalendar": account}).json()["connector"][
            "eventCalendar"
        ]
        == account
    )
    unknown = call(owner, f"{PREFIX}update", {"connector": cid, "busyCalendars": ["nope@group.test"]})
    assert (unknown.status_code, unknown.json()["error"]) == (400, "UnknownCalendar")

    # A revoked grant: the refresh is refused, the view says needs_reauth and why.
    google.revoke(account)
    google.expire_access_tokens(account)
    refused = call(owner, f"{PREFIX}listCalendars", connector=cid, refresh=True)
    assert (refused.status_code, refused.json()["error"]) == (409, "NeedsReauth")
    (broken,) = call(owner, f"{PREFIX}list").json()["connectors"]
    assert broken["state"] == "needs_reauth" and broken["stateReason"]
    again = call(owner, f"{PREFIX}startOAuth", {"provider": "google", "connector": cid}).json()
    assert again["authorizationUrl"].startswith(google.url)

    assert call(owner, f"{PREFIX}delete", {"connector": cid}).json() == {}
    gone = call(owner, f"{PREFIX}delete", {"connector": cid})
    assert (gone.status_code, gone.json()["error"]) == (404, "ConnectorNotFound")
    assert call(owner, f"{PREFIX}list").json() == {"connectors": []}


def test_caldav_connector_calls_agree_with_their_lexicons(owner: Owner, radicale_server: Radicale) -> None:
    user, password = radicale_server.account()
    radicale_calendars(radicale_server, user, password, ("Work",))
    body = {"serverUrl": radicale_server.url, "username": user, "password": password}
    view = call(owner, f"{PREFIX}connectCaldav", body).json()["connector"]
    assert view["provider"] == "caldav" and view["serverUrl"]
    wrong = call(owner, f"{PREFIX}connectCaldav", {**body, "password": "not-the-password"})
    assert (wrong.status_code, wrong.json()["error"]) == (400, "ConnectFailed")
    assert call(owner, f"{PREFIX}listCalendars", connector=view["id"]).json()["calendars"]


@pytest.mark.parametrize(
    ("nsid", "body"),
    [
        ("startOAuth", {}),
        ("startOAuth", {"provider": "google", "connector": "one"}),
        ("connectCaldav", {"serverUrl": "https://dav.example", "username": "u"}),
        ("update", {"busyCalendars": "all"}),
        ("update", {"eventCalendar": 7}),
        ("delete", {"connector": None}),
    ],
)
def test_inputs_the_lexicon_refuses_the_api_refuses(
    owner: Owner, google: GoogleEmulator, nsid: str, body: dict[str, Any]
) -> None:
    """Malformed calls about a connector the caller has: refused for their shape, not their target."""
    view = owner.connect_google(google, google.add_account(f"host-{uuid.uuid4().hex[:8]}@gmail.test"))
    body = {"connector": view["id"], **body} if nsid in ("update", "delete") else body
    with pytest.raises(LexiconValidationError):
        validate_input(PREFIX + nsid, body)
    resp = owner.call(PREFIX + nsid, body)
    assert resp.status_code == 400 and resp.json()["error"] == "InvalidRequest", resp.text
