"""Real browser, real PDS, real workers: a host signs in and publishes office hours; a guest books.

Chromium drives Huddle's pages and the PDS's own sign-in and consent pages. Every page visited is
saved as a screenshot under test-artifacts/web/<test>/.
"""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlmodel import Session, select

from clients.identity import IdentityResolver
from clients.oauth import AuthorizationServerError, ClientConfig, Discovery, OAuthClient, TokenSet
from clients.oauth.jwt import SigningKey
from clients.secrets import KeyRing
from models.db import session_scope
from models.tables import Booking, CalendarConnector, OAuthSession, OfferIndex
from models.types import utcnow
from tests.emulators.fixtures import Radicale, radicale_calendars
from tests.peers.pds_peer import PdsPeer
from tests.web.conftest import StartWeb, WebStack

pytestmark = [pytest.mark.pds, pytest.mark.temporal, pytest.mark.slow]
# One database is enough for the pages; the booking machinery's own tests cover both.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _session_rows(web: WebStack, did: str) -> list[OAuthSession]:
    with Session(web.engine) as session:
        return list(session.exec(select(OAuthSession).where(OAuthSession.did == did)).all())


async def _fill_hours(page: Page, day: str, start: str, end: str) -> None:
    await page.locator(f"#hours_{day}_0_start").fill(start)
    await page.locator(f"#hours_{day}_0_end").fill(end)


@SQLITE_ONLY
async def test_host_publishes_guest_books_host_approves_both_see_it_confirmed(
    start_web: StartWeb, pds_peer: PdsPeer
) -> None:
    pds = pds_peer
    host = pds.create_account("host")
    guest = pds.create_account("guest")
    web = await start_web(admin_dids=host.did)
    shots = web.shots

    # ---- the host signs in through the PDS and publishes office hours
    hp = await web.new_page()
    await hp.goto(web.url)
    await shots.take(hp, "home-signed-out")
    await web.sign_in(hp, host, shots=True)
    await hp.goto(f"{web.url}/host")
    await expect(hp.get_by_role("heading", name="Your host dashboard")).to_be_visible()
    await shots.take(hp, "host-dashboard-empty")
    await hp.get_by_role("link", name="Add office hours").click()
    await hp.get_by_label("Title").fill("Mentoring hours")
    await hp.get_by_label("Description").fill("Career questions, code review, anything.")
    await hp.get_by_label("Where").fill("https://meet.example/host")
    await hp.get_by_label("Time zone of these hours").select_option("Europe/Paris")
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        await _fill_hours(hp, day, "00:00", "23:30")
    await hp.get_by_label("Meeting lengths, in minutes").fill("30, 60")
    await hp.locator("#min_notice").fill("0")
    await hp.get_by_label("I approve each request myself").check()
    await shots.take(hp, "office-hours-editor")
    await hp.get_by_role("button", name="Save and publish").click()
    await expect(hp.get_by_role("status")).to_contain_text("published on your PDS")
    await shots.take(hp, "host-dashboard-published")

    # The record is on the host's PDS, and Huddle's index has it already (no firehose runs here).
    records = pds.list_records(host.did, "com.huddle.slotOffer")
    assert [r["value"]["title"] for r in records] == ["Mentoring hours"]
    published = records[0]["value"]
    assert published["requiresApproval"] is True and published["durations"] == [30, 60]
    assert published["timezone"] == "Europe/Paris" and published["minNoticeMinutes"] == 0
    with Session(web.engine) as session:
        indexed = session.get(OfferIndex, records[0]["uri"])
    assert indexed is not None and indexed.cid == records[0]["cid"] and indexed.requires_approval

    # ---- the guest finds the host, asks for a meeting and gets a held time
    gp = await web.new_page(timezone_id="America/New_York")
    await web.sign_in(gp, guest)
    await gp.goto(web.url)
    await gp.get_by_label("Whom do you want to meet?").fill(host.handle)
    await shots.take(gp, "guest-find-host")
    await gp.get_by_role("button", name="Find their office hours").click()
    await expect(gp.get_by_role("heading", name=f"Meet @{host.handle}")).to_be_visible()
    await expect(gp.get_by_text("The host approves each request before it is confirmed.")).to_be_visible()
    await expect(gp.get_by_text("Anyone with an ATProto account")).to_be_visible()
    await shots.take(gp, "host-page")
    await gp.get_by_role("link", name=re.compile("Ask for a meeting")).click()
    # The guest's zone comes from the browser (huddle.js), for their preferred hours.
    await expect(gp.get_by_label("Your time zone")).to_have_value("America/New_York")
    await gp.get_by_label("30 minutes").check()
    await gp.get_by_label(re.compile("A note for")).fill("Hi! I would like to talk about my first PR.")
    await gp.get_by_label(re.compile("Your email")).fill("guest@example.test")
    await shots.take(gp, "request-form")
    await gp.get_by_role("button", name="Find me a time").click()
    await expect(gp.get_by_role("heading", name=re.compile("A time is held for you"))).to_be_visible()
    await expect(gp.locator(".countdown")).to_contain_text("left")
    await expect(gp.locator(".big-time")).to_contain_text("(America/New_York)")
    await shots.take(gp, "status-held")
    booking_id = gp.url.rsplit("/", 1)[-1]

    # A signed-in browser reads the booking over XRPC with its cookie; writes need its CSRF token.
    answer = await gp.request.get(f"{web.url}/xrpc/com.huddle.getBooking?booking={booking_id}")
    assert answer.status == 200 and (await answer.json())["state"] == "held"
    refused = await gp.request.post(f"{web.url}/xrpc/com.huddle.finalize", data={"booking": booking_id})
    assert refused.status == 403 and (await refused.json())["error"] == "InvalidCsrfToken"

    await gp.get_by_role("button", name="Finalize: take this time").click()
    await expect(gp.get_by_text(re.compile("Waiting for @.* to approve"))).to_be_visible()
    await shots.take(gp, "status-waiting-for-host")

    # ---- the host approves from the dashboard
    await hp.goto(f"{web.url}/host")
    await expect(hp.get_by_role("heading", name="Waiting for your answer")).to_be_visible()
    await shots.take(hp, "host-dashboard-waiting")
    await hp.locator(f"a[href='/host/bookings/{booking_id}']").first.click()
    await expect(hp.get_by_text("Hi! I would like to talk about my first PR.")).to_be_visible()
    await shots.take(hp, "host-booking-to-answer")
    await hp.get_by_role("button", name="Approve").click()
    await expect(hp.get_by_role("heading", name=re.compile("confirmed"))).to_be_visible()
    await shots.take(hp, "host-booking-confirmed")

    # ---- the guest's page turns to confirmed by itself (live polling), with the invitation
    await expect(gp.get_by_role("link", name=re.compile("Download the invitation"))).to_be_visible(
        timeout=30_000
    )
    await expect(gp.get_by_role("heading", name=re.compile("Confirmed"))).to_be_visible()
    await shots.take(gp, "status-confirmed")
    async with gp.expect_download() as download_info:
        await gp.get_by_role("link", name=re.compile("Download the invitation")).click()
    download = await download_info.value
    ics = open(await download.path(), encoding="utf-8").read()  # noqa: ASYNC230 (a small local file)
    assert "BEGIN:VCALENDAR" in ics and "METHOD:REQUEST" in ics
    with Session(web.engine) as session:
        row = session.get(Booking, booking_id)
    assert row is not None and row.state == "confirmed" and row.guest_email == "guest@example.test"

    # ---- the guest asks for another time: Huddle picks it, the meeting stays confirmed
    await gp.get_by_role("button", name="Find another time").click()
    await expect(gp.get_by_role("status")).to_contain_text("Huddle found another time")
    await expect(gp.get_by_role("heading", name=re.compile("Confirmed"))).to_be_visible()
    await shots.take(gp, "status-rescheduled")
    with Session(web.engine) as session:
        moved = session.get(Booking, booking_id)
    assert moved is not None and moved.state == "confirmed"
    assert moved.start_at is not None and moved.start_at != row.start_at

    mobile = await web.new_page(viewport={"width": 390, "height": 844}, timezone_id="America/New_York")
    await web.sign_in(mobile, guest)
    await mobile.goto(f"{web.url}/bookings/{booking_id}")
    await shots.take(mobile, "status-confirmed-mobile")
    await mobile.goto(f"{web.url}/bookings")
    await shots.take(mobile, "my-meetings-mobile")

    # ---- the host's other pages
    await hp.goto(f"{web.url}/host/bookings?when=all")
    await expect(hp.get_by_role("cell", name=f"@{guest.handle}")).to_be_visible()
    await shots.take(hp, "host-bookings")
    await hp.goto(f"{web.url}/host/preview")
    await expect(hp.locator("main ol li")).to_have_count(5)
    await shots.take(hp, "preview-free-slots")
    await hp.goto(f"{web.url}/colony")
    await expect(hp.get_by_role("heading", name=re.compile("Colony"))).to_be_visible()
    await expect(hp.locator(f"a[href*='booking-{booking_id}']")).to_be_visible()
    await shots.take(hp, "colony")
    other = await gp.goto(f"{web.url}/colony")
    assert other is not None and other.status == 403  # the guest is not an operator

    # ---- an expired access token is refreshed before the next write to the PDS
    with session_scope(web.engine) as session:
        rows = session.exec(select(OAuthSession).where(OAuthSession.did == host.did)).all()
        before = {r.id: r.access_token_enc for r in rows}
        for r in rows:
            r.expires_at = utcnow() - timedelta(minutes=1)
            session.add(r)
    await hp.goto(f"{web.url}/host")
    await hp.get_by_role("link", name=re.compile("^Edit")).click()
    await hp.get_by_label("Title").fill("Mentoring hours (updated)")
    await hp.get_by_role("button", name="Save and publish").click()
    await expect(hp.get_by_role("status")).to_contain_text("published on your PDS")
    assert [r["value"]["title"] for r in pds.list_records(host.did, "com.huddle.slotOffer")] == [
        "Mentoring hours (updated)"
    ]
    refreshed = [r for r in _session_rows(web, host.did) if r.id in before]
    assert refreshed and all(r.access_token_enc != before[r.id] for r in refreshed)
    assert all(r.expires_at is not None and r.expires_at > utcnow() for r in refreshed)

    # ---- signing out revokes the session at the PDS and forgets it here
    keys = KeyRing.from_settings(web.settings)
    [row_before] = [r for r in _session_rows(web, guest.did)][:1]
    tokens = TokenSet(
        did=row_before.did,
        issuer=row_before.issuer,
        pds_url=row_before.pds_url,
        access_token=keys.decrypt(row_before.access_token_enc),
        refresh_token=keys.decrypt_optional(row_before.refresh_token_enc),
        scope=row_before.scope,
        expires_at=row_before.expires_at,
    )
    dpop_key = SigningKey.from_json(keys.decrypt(row_before.dpop_key_enc))
    cookies = await gp.context.cookies()
    await gp.goto(web.url)
    await gp.get_by_role("button", name="Sign out").click()
    await expect(gp.get_by_role("status")).to_contain_text("You are signed out")
    await shots.take(gp, "signed-out")
    # The old cookie is worthless now…
    stale = await web.browser.new_context()
    await stale.add_cookies(cookies)  # type: ignore[arg-type]
    again = await stale.request.get(f"{web.url}/xrpc/com.huddle.getBooking?booking={booking_id}")
    assert again.status == 401
    # …and so is the refresh token at the PDS.
    async with httpx.AsyncClient() as http:
        identity = IdentityResolver(plc_url=pds.plc_url, dev_mode=True, handle_resolver_urls=[pds.pds_url])
        client = OAuthClient(
            ClientConfig.loopback(f"{web.url}/oauth/callback", web.settings.oauth_scope),
            Discovery(http, identity, dev_mode=True),
            http,
        )
        with pytest.raises(AuthorizationServerError) as refused_refresh:
            await client.refresh(tokens, dpop_key)
        assert refused_refresh.value.error == "invalid_grant"
        await identity.aclose()
    assert not [r for r in _session_rows(web, guest.did) if r.id == row_before.id]
    await stale.close()


@SQLITE_ONLY
async def test_denied_unavailable_and_expired_pages_say_what_to_do_next(
    start_web: StartWeb, pds_peer: PdsPeer
) -> None:
    picky = pds_peer.create_account("picky")
    open_host = pds_peer.create_account("open")
    guest = pds_peer.create_account("guest")
    web = await start_web(hold_seconds_override=4)
    web.index_offer(picky, policy="followers", title="Followers only")
    web.index_offer(open_host, title="Open office hours")
    shots = web.shots

    # A signed-out guest is sent to sign in, then straight back to the form they wanted.
    page = await web.new_page()
    await page.goto(f"{web.url}/hosts/{picky.handle}/request")
    assert "/login?next=" in page.url
    await web.sign_in(page, guest)
    assert page.url.endswith(f"/hosts/{picky.handle}/request")

    await page.get_by_role("button", name="Find me a time").click()
    await expect(page.get_by_role("heading", name=re.compile("You cannot book this host"))).to_be_visible()
    await expect(page.get_by_text(re.compile("Follow the host"))).to_be_visible()
    await shots.take(page, "status-denied")

    await page.goto(f"{web.url}/hosts/{open_host.handle}/request")
    await page.get_by_label("Not before").fill("2020-01-01")
    await page.get_by_label("Not after").fill("2020-01-02")
    await page.get_by_role("button", name="Find me a time").click()
    await expect(page.get_by_role("heading", name=re.compile("No free time found"))).to_be_visible()
    await expect(page.get_by_role("link", name="Ask again")).to_be_visible()
    await shots.take(page, "status-unavailable")

    # A form with a bad range is shown again with the problem named, nothing booked.
    await page.goto(f"{web.url}/hosts/{open_host.handle}/request")
    await page.get_by_label("From").fill("10:00")
    await page.get_by_role("button", name="Find me a time").click()
    await expect(page.get_by_role("alert")).to_contain_text("both a start and an end")
    await shots.take(page, "request-form-error")

    # A hold nobody confirms runs out; the open page turns to "expired" by itself.
    await page.goto(f"{web.url}/hosts/{open_host.handle}/request")
    await page.get_by_role("button", name="Find me a time").click()
    await expect(page.get_by_role("heading", name=re.compile("A time is held for you"))).to_be_visible()
    await expect(page.get_by_role("heading", name=re.compile("The hold ran out"))).to_be_visible(
        timeout=30_000
    )
    await expect(page.get_by_role("button", name=re.compile("Finalize"))).to_have_count(0)
    await shots.take(page, "status-expired")

    # Someone else's meeting is not found (no hint that it exists); a stale sign-in link is explained.
    booking_id = page.url.rsplit("/", 1)[-1]
    stranger = await web.new_page()
    await web.sign_in(stranger, open_host)
    mine = await stranger.goto(f"{web.url}/bookings/{booking_id}")
    assert mine is not None and mine.status == 200  # the host of that booking may look
    nobody = await stranger.goto(f"{web.url}/bookings/nosuchbooking")
    assert nobody is not None and nobody.status == 404
    stale = await page.goto(f"{web.url}/oauth/callback?state=stale&iss=x&code=y")
    assert stale is not None and stale.status == 400
    await expect(page.get_by_role("heading", name="This sign-in link has expired")).to_be_visible()
    await shots.take(page, "sign-in-link-expired")


@SQLITE_ONLY
async def test_host_connects_a_caldav_calendar_and_chooses_its_calendars(
    start_web: StartWeb, pds_peer: PdsPeer, radicale_server: Radicale
) -> None:
    host = pds_peer.create_account("caldav")
    web = await start_web()
    web.index_offer(host, title="Office hours")
    username, password = radicale_server.account()
    radicale_calendars(radicale_server, username, password, ("Work", "Personal"))
    shots = web.shots

    page = await web.new_page()
    await web.sign_in(page, host)
    await page.goto(f"{web.url}/host")
    await page.get_by_role("link", name="Connect or manage calendars").click()
    await page.get_by_label("Server address").fill(radicale_server.url)
    await page.get_by_label("Username").fill(username)
    await page.get_by_label(re.compile("App password")).fill("wrong-password")
    await page.get_by_role("button", name="Connect CalDAV").click()
    await expect(page.get_by_role("alert")).to_be_visible()
    await shots.take(page, "calendars-refused")

    await page.get_by_label("Server address").fill(radicale_server.url)
    await page.get_by_label("Username").fill(username)
    await page.get_by_label(re.compile("App password")).fill(password)
    await page.get_by_role("button", name="Connect CalDAV").click()
    await expect(page.get_by_role("status")).to_contain_text("Connected")
    await page.get_by_role("checkbox", name="Work").check()
    await page.get_by_role("checkbox", name="Personal").check()
    await page.get_by_role("radio", name="Work").check()
    await page.get_by_role("button", name="Save choices").click()
    await expect(page.get_by_role("status")).to_contain_text("Saved")
    await expect(page.get_by_role("radio", name="Work")).to_be_checked()
    await shots.take(page, "calendars-connected")
    with Session(web.engine) as session:
        [row] = session.exec(select(CalendarConnector).where(CalendarConnector.owner_did == host.did)).all()
    assert row.provider == "caldav" and len(row.busy_calendar_ids) == 2 and row.event_calendar_id

    # The preview reads the connected calendar the way matching does (no error, slots listed).
    await page.goto(f"{web.url}/host/preview")
    await expect(page.locator("main ol li")).to_have_count(5)
    await shots.take(page, "preview-with-calendar")
