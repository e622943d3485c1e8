"""Driving Huddle's calendar features the way an owner does: XRPC calls, browser redirects."""

from __future__ import annotations

import html
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, select

from models.calendar_tables import CalendarChannel
from tests.emulators.google import GoogleEmulator
from tests.emulators.graph import GraphEmulator
from tests.emulators.server import TlsFiles
from tests.identity.helpers import DidWebHost


@dataclass
class Owner:
    """A Huddle user (a did:web we control) calling Huddle's API with service-auth tokens."""

    host: DidWebHost
    api_url: str

    @property
    def did(self) -> str:
        return self.host.did

    def call(self, nsid: str, body: dict[str, Any] | None = None, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.host.token(nsid)}"}
        url = f"{self.api_url}/xrpc/{nsid}"
        if body is None:
            return httpx.get(url, params=params, headers=headers, timeout=30)
        return httpx.post(url, json=body, headers=headers, timeout=30)

    def connectors(self) -> list[dict[str, Any]]:
        resp = self.call("com.huddle.connector.list", None)
        assert resp.status_code == 200, resp.text
        return list(resp.json()["connectors"])

    def connector(self, connector_id: int) -> dict[str, Any]:
        return next(c for c in self.connectors() if c["id"] == connector_id)

    def connect_google(self, google: GoogleEmulator, account: str) -> dict[str, Any]:
        resp = self.call("com.huddle.connector.startOAuth", {"provider": "google"})
        assert resp.status_code == 200, resp.text
        google.login_as = account
        consent = httpx.get(resp.json()["authorizationUrl"], follow_redirects=False)
        assert consent.status_code == 302, consent.text
        back = httpx.get(consent.headers["location"], timeout=30)
        assert back.status_code == 200, back.text
        return dict(back.json()["connector"])

    def connect_microsoft(self, graph: GraphEmulator, tls: TlsFiles, upn: str) -> dict[str, Any]:
        resp = self.call("com.huddle.connector.startOAuth", {"provider": "microsoft"})
        assert resp.status_code == 200, resp.text
        graph.login_as = upn
        consent = httpx.get(
            resp.json()["authorizationUrl"],
            follow_redirects=False,
            verify=ssl.create_default_context(cafile=str(tls.ca)),
        )
        # Microsoft answers with a page that POSTs the code back (response_mode=form_post).
        assert consent.status_code == 200, consent.text
        action, fields = posted_form(consent.text)
        back = httpx.post(action, data=fields, timeout=30)
        assert back.status_code == 200, back.text
        return dict(back.json()["connector"])

    def connect_caldav(self, url: str, username: str, password: str) -> httpx.Response:
        return self.call(
            "com.huddle.connector.connectCaldav",
            {"serverUrl": url, "username": username, "password": password},
        )

    def choose(self, connector_id: int, *, busy: list[str] | None = None, event: Any = ...) -> dict[str, Any]:
        body: dict[str, Any] = {"connector": connector_id}
        if busy is not None:
            body["busyCalendars"] = busy
        if event is not ...:
            body["eventCalendar"] = event
        resp = self.call("com.huddle.connector.update", body)
        assert resp.status_code == 200, resp.text
        return dict(resp.json()["connector"])


def eventually(check: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy (or raise with `what`)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def active_channels(engine: Engine, connector_id: int) -> list[CalendarChannel]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(CalendarChannel).where(
                    CalendarChannel.connector_id == connector_id,
                    CalendarChannel.state == "active",
                    CalendarChannel.external_id.isnot(None),  # type: ignore[union-attr]
                )
            )
        )


def posted_form(page: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the auto-submitting form a form_post answer carries."""
    action = re.search(r'<form[^>]* action="([^"]+)"', page)
    assert action is not None, page
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    return html.unescape(action.group(1)), {k: html.unescape(v) for k, v in fields.items()}
