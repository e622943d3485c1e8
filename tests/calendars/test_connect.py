"""Connecting calendars through Huddle's API: Google and Microsoft OAuth, CalDAV credentials."""

from __future__ import annotations

import ssl
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.calendars.helpers import Owner, posted_form
from tests.emulators.fixtures import Radicale, radicale_calendars
from tests.emulators.google import GoogleEmulator
from tests.emulators.graph import GraphEmulator
from tests.emulators.server import TlsFiles

SECRET_WORDS = ("token", "password", "secret", "cache")


def _no_secrets(view: dict[str, object]) -> None:
    assert not [k for k in view if any(w in k.lower() for w in SECRET_WORDS)], view


def test_google_connect_with_offline_access_and_reconnect(owner: Owner, google: GoogleEmulator) -> None:
    account = google.add_account(f"host-{uuid.uuid4().hex[:8]}@gmail.test", others=("team@group.test",))
    view = owner.connect_google(google, account)

    assert (view["provider"], view["account"], view["state"]) == ("google", account, "ok")
    assert view["busyCalendars"] == [account] and view["eventCalendar"] == account
    assert {c["id"] for c in view["calendars"]} >= {account, "team@group.test"}
    _no_secrets(view)
    # A second consent for the same account refreshes that connector instead of adding one.
    again = owner.connect_google(google, account)
    assert again["id"] == view["id"]
    assert [c["id"] for c in owner.connectors()] == [view["id"]]


def test_oauth_state_is_single_use(owner: Owner, google: GoogleEmulator) -> None:
    account = google.add_account(f"host-{uuid.uuid4().hex[:8]}@gmail.test")
    start = owner.call("com.huddle.connector.startOAuth", {"provider": "google"}).json()
    google.login_as = account
    callback = httpx.get(start["authorizationUrl"]).headers["location"]
    assert httpx.get(callback, timeout=30).status_code == 200
    replay = httpx.get(callback, timeout=30)
    assert replay.status_code == 400 and replay.json()["error"] == "ConnectFailed"
    forged = httpx.get(callback.replace("state=", "state=x"), timeout=30)
    assert forged.status_code == 400


def test_denied_consent_connects_nothing(owner: Owner, google: GoogleEmulator) -> None:
    start = owner.call("com.huddle.connector.startOAuth", {"provider": "google"}).json()
    google.deny_next = True
    callback = httpx.get(start["authorizationUrl"]).headers["location"]
    answer = httpx.get(callback, timeout=30)
    assert answer.status_code == 400 and "access_denied" in answer.json()["message"]
    assert owner.connectors() == []


def test_microsoft_connect_keeps_the_msal_cache(
    owner: Owner, graph: GraphEmulator, tls_files: TlsFiles
) -> None:
    upn = f"host-{uuid.uuid4().hex[:8]}@contoso.test"
    default = graph.add_user(upn, others=("Work",))
    view = owner.connect_microsoft(graph, tls_files, upn)
    assert (view["provider"], view["account"], view["state"]) == ("microsoft", upn, "ok")
    assert view["busyCalendars"] == [default] and view["eventCalendar"] == default
    assert sorted(c["name"] for c in view["calendars"]) == ["Calendar", "Work"]
    _no_secrets(view)


def test_microsoft_sends_the_code_back_in_a_post_body_once(
    owner: Owner, graph: GraphEmulator, tls_files: TlsFiles
) -> None:
    upn = f"host-{uuid.uuid4().hex[:8]}@contoso.test"
    graph.add_user(upn)
    start = owner.call("com.huddle.connector.startOAuth", {"provider": "microsoft"}).json()
    assert parse_qs(urlsplit(start["authorizationUrl"]).query)["response_mode"] == ["form_post"]
    graph.login_as = upn
    page = httpx.get(start["authorizationUrl"], verify=ssl.create_default_context(cafile=str(tls_files.ca)))
    action, fields = posted_form(page.text)
    assert "code" in fields and "code=" not in action  # the code is in no URL
    assert httpx.post(action, data=fields, timeout=30).status_code == 200
    replay = httpx.post(action, data=fields, timeout=30)
    assert replay.status_code == 400 and replay.json()["error"] == "ConnectFailed"
    assert [c["account"] for c in owner.connectors()] == [upn]


def test_caldav_connect_discovers_calendars_and_refuses_wrong_passwords(
    owner: Owner, radicale_server: Radicale
) -> None:
    user, password = radicale_server.account()
    work, home = radicale_calendars(radicale_server, user, password, ("Work", "Home"))

    wrong = owner.connect_caldav(radicale_server.url, user, "not-the-password")
    assert wrong.status_code == 400 and "refused the username or password" in wrong.json()["message"]
    resp = owner.connect_caldav(radicale_server.url, user, password)
    assert resp.status_code == 200, resp.text
    view = resp.json()["connector"]
    assert (view["provider"], view["account"], view["state"]) == ("caldav", user, "ok")
    assert sorted(view["busyCalendars"]) == sorted([work, home])
    _no_secrets(view)


def test_choosing_calendars(owner: Owner, google: GoogleEmulator) -> None:
    account = google.add_account(
        f"host-{uuid.uuid4().hex[:8]}@gmail.test", others=(f"{uuid.uuid4().hex}@group.test",)
    )
    view = owner.connect_google(google, account)
    other = next(c["id"] for c in view["calendars"] if c["id"] != account)

    chosen = owner.choose(view["id"], busy=[account, other], event=other)
    assert chosen["busyCalendars"] == [account, other] and chosen["eventCalendar"] == other
    assert owner.choose(view["id"], event=None)["eventCalendar"] is None

    unknown = owner.call("com.huddle.connector.update", {"connector": view["id"], "busyCalendars": ["nope"]})
    assert unknown.status_code == 400 and unknown.json()["error"] == "UnknownCalendar"
    listed = owner.call("com.huddle.connector.listCalendars", None, connector=view["id"], refresh="true")
    assert {c["id"] for c in listed.json()["calendars"]} == {account, other}


def test_connectors_are_private_to_their_owner(owner: Owner, google: GoogleEmulator, huddle_api: str) -> None:
    from tests.identity.helpers import DidWebHost

    account = google.add_account(f"host-{uuid.uuid4().hex[:8]}@gmail.test")
    view = owner.connect_google(google, account)
    stranger = Owner(DidWebHost(), huddle_api)
    try:
        assert stranger.connectors() == []
        peek = stranger.call("com.huddle.connector.update", {"connector": view["id"], "eventCalendar": None})
        assert peek.status_code == 404
    finally:
        stranger.host.close()
    anonymous = httpx.get(f"{huddle_api}/xrpc/com.huddle.connector.list")
    assert anonymous.status_code == 401
