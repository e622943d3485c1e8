"""The whole stack for browser tests: the app on a real port, real workers, the real PDS, Chromium.

The PDS sends the browser back to Huddle's callback, so the app runs in uvicorn on a free
127.0.0.1 port (in a thread with its own event loop), not in-process. Screenshots go to
`test-artifacts/web/<test>/` (git-ignored).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from sqlalchemy import Engine

from api.main import create_app
from models.db import session_scope
from models.settings import REPO_ROOT, Settings
from models.tables import OfferIndex, User
from tests.bookings.helpers import offer_record
from tests.emulators.fixtures import radicale_server  # noqa: F401  (a real CalDAV server, for the calendars page)
from tests.peers.pds_peer import Account, PdsPeer
from tests.web.chromium import ARGS, ensure_chromium

ARTIFACTS = REPO_ROOT / "test-artifacts" / "web"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """uvicorn serving `app` on 127.0.0.1:`port` in a thread (its lifespan runs there too)."""

    def __init__(self, app: Any, port: int) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{port}", daemon=True)

    def start(self, timeout: float = 60.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the web app did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@dataclass
class Shots:
    """Numbered screenshots of one test, each a readable page."""

    folder: Path
    taken: list[Path] = field(default_factory=list)

    async def take(self, page: Page, name: str, *, full_page: bool = True) -> Path:
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        await page.screenshot(path=str(path), full_page=full_page)
        self.taken.append(path)
        return path


@dataclass
class WebStack:
    url: str
    settings: Settings
    engine: Engine
    pds: PdsPeer
    browser: Browser
    shots: Shots

    async def new_page(self, **context: Any) -> Page:
        ctx: BrowserContext = await self.browser.new_context(
            accept_downloads=True, timezone_id=context.pop("timezone_id", "Europe/Paris"), **context
        )
        ctx.set_default_timeout(30_000)
        return await ctx.new_page()

    async def sign_in(self, page: Page, account: Account, *, shots: bool = False) -> None:
        """Through Huddle's form, then the PDS's own sign-in and consent pages, and back."""
        if "/login" not in page.url:
            await page.goto(f"{self.url}/login")
        if shots:
            await self.shots.take(page, "huddle-sign-in")
        await page.get_by_label("Your handle").fill(account.handle)
        await page.get_by_role("button", name="Continue to your server").click()
        password = page.get_by_placeholder("Enter your password")
        await password.fill(account.password)
        if shots:
            await self.shots.take(page, "pds-sign-in", full_page=False)
        await page.get_by_role("button", name="Sign in").click()
        authorize = page.get_by_role("button", name="Authorize")
        await authorize.wait_for()
        if shots:
            await self.shots.take(page, "pds-consent", full_page=False)
        await authorize.click()
        await page.wait_for_url(re.compile(re.escape(self.url) + r"/.*"))

    def index_offer(self, account: Account, **record: Any) -> str:
        """An offer record on the PDS, indexed as the firehose would (for hosts set up outside the UI)."""
        value = offer_record(**record)
        uri, cid = self.pds.create_record(account, "com.huddle.slotOffer", value)
        with session_scope(self.engine) as session:
            if session.get(User, account.did) is None:
                session.add(User(did=account.did, handle=account.handle))
            session.add(
                OfferIndex(
                    uri=uri,
                    did=account.did,
                    rkey=uri.rsplit("/", 1)[1],
                    cid=cid,
                    record=value,
                    title=value["title"],
                    timezone=value["timezone"],
                    policy=value.get("policy", "anyone"),
                    requires_approval=value.get("requiresApproval", False),
                )
            )
        return uri


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder = ARTIFACTS / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return Shots(folder)


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    if os.environ.get("HUDDLE_SKIP_BROWSER") == "1":
        pytest.skip("browser tests disabled by HUDDLE_SKIP_BROWSER=1")
    executable = await asyncio.to_thread(ensure_chromium)
    async with async_playwright() as pw:
        found = await pw.chromium.launch(executable_path=str(executable), args=ARGS)
        try:
            yield found
        finally:
            await found.close()


StartWeb = Callable[..., Awaitable[WebStack]]


@pytest_asyncio.fixture
async def start_web(
    worker: Settings, engine: Engine, pds_peer: PdsPeer, browser: Browser, shots: Shots
) -> AsyncIterator[StartWeb]:
    """`await start_web(**settings overrides)`: the app served on a free port beside this test's workers."""
    servers: list[Server] = []

    async def start(**overrides: Any) -> WebStack:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        settings = worker.model_copy(
            update={
                "plc_url": pds_peer.plc_url,
                "handle_resolver_urls": pds_peer.pds_url,
                "public_url": url,
                "hold_seconds_override": 180,
                "web_status_poll_seconds": 1.0,
                **overrides,
            }
        )
        server = Server(create_app(settings), port)
        await asyncio.to_thread(server.start)
        servers.append(server)
        return WebStack(url, settings, engine, pds_peer, browser, shots)

    try:
        yield start
    finally:
        for server in servers:
            await asyncio.to_thread(server.stop)
