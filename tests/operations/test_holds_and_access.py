"""Lost races counted where the worker exposes them; the debug pages closed to non-admins outside dev."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from api.main import create_app
from models.booking_store import LostRace, Placement, open_booking, place_hold
from models.settings import Settings
from models.types import utcnow
from tests.bookings.helpers import five_slot_record, make_request, seed_offer
from tests.conftest import make_settings
from tests.peers.pds_peer import Account, PdsPeer
from workers.telemetry import configure_telemetry


def conflicts(settings: Settings) -> float:
    text = generate_latest(configure_telemetry(settings, "test").registry()).decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "huddle_hold_conflicts_total"
    )


def test_a_hold_the_database_refuses_counts_as_a_conflict(settings: Settings, engine: Engine) -> None:
    uri = seed_offer(engine, five_slot_record())
    first, second = make_request(settings, uri), make_request(settings, uri)
    open_booking(engine, first)
    open_booking(engine, second)
    start = utcnow() + timedelta(days=1)
    slot = Placement(start, start + timedelta(minutes=30), start, start + timedelta(minutes=30), "test")

    def hold(request_id: str) -> Placement | None:
        return place_hold(
            engine,
            booking_id=request_id,
            host_did=first.host_did,
            search_start=start - timedelta(hours=1),
            search_end=start + timedelta(hours=1),
            choose=lambda _taken: slot,  # a matcher that ignores the holds it was shown: a lost race
            version=1,
            buffers=(0, 0),
            hold_expires_at=lambda: utcnow() + timedelta(minutes=15),
        )

    before = conflicts(settings)
    assert hold(first.booking_id) == slot
    with pytest.raises(LostRace):
        hold(second.booking_id)
    assert conflicts(settings) - before == 1


@dataclass
class ProductionApi:
    http: httpx.AsyncClient
    settings: Settings
    admin: Account
    pds: PdsPeer

    def token(self, account: Account) -> dict[str, str]:
        jwt = self.pds.service_auth(account, aud=self.settings.service_did, lxm="com.huddle.debug")
        return {"Authorization": f"Bearer {jwt}"}


@pytest_asyncio.fixture
async def production_api(database_url: str, pds_peer: PdsPeer) -> AsyncIterator[ProductionApi]:
    """The API outside dev mode, with one admin DID."""
    admin = pds_peer.create_account("admin")
    settings = make_settings(
        database_url,
        dev_mode=False,
        secret_key="a-real-secret-for-this-test",
        token_keys=Fernet.generate_key().decode(),
        plc_url=pds_peer.plc_url,
        handle_resolver_urls=pds_peer.pds_url,
        admin_dids=admin.did,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://huddle.test") as http:
            yield ProductionApi(http, settings, admin, pds_peer)


async def test_debug_pages_are_for_admins_outside_dev_mode(production_api: ProductionApi) -> None:
    api = production_api
    stranger = api.pds.create_account("stranger")
    for page in ("/debug/", "/debug/tracez", "/debug/metricz", "/debug/configz"):
        assert (await api.http.get(page)).status_code == 401, page
        refused = await api.http.get(page, headers=api.token(stranger))
        assert (refused.status_code, refused.json()["error"]) == (403, "Forbidden"), page
        allowed = await api.http.get(page, headers=api.token(api.admin))
        assert allowed.status_code == 200, (page, allowed.text)
    config = (await api.http.get("/debug/configz", headers=api.token(api.admin))).json()["settings"]
    assert config["secret_key"] == "[set]" and config["token_keys"] == "[set]"
    assert "a-real-secret-for-this-test" not in str(config)
