"""The API served in-process (lifespan and all) beside real workers, with callers from the real PDS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio
from sqlalchemy import Engine

from api.main import create_app
from models.db import session_scope
from models.settings import Settings
from models.tables import OfferIndex, User
from tests.bookings.helpers import offer_record
from tests.peers.pds_peer import Account, PdsPeer


@dataclass
class Api:
    http: httpx.AsyncClient
    settings: Settings
    engine: Engine
    pds: PdsPeer

    def token(self, account: Account, nsid: str, aud: str | None = None) -> dict[str, str]:
        jwt = self.pds.service_auth(account, aud=aud or self.settings.service_did, lxm=nsid)
        return {"Authorization": f"Bearer {jwt}"}

    async def call(
        self, account: Account | None, nsid: str, body: Any = None, **params: Any
    ) -> httpx.Response:
        headers = self.token(account, nsid) if account else {}
        if body is None and params is not None and nsid.split(".")[-1].startswith(("get", "list")):
            return await self.http.get(f"/xrpc/{nsid}", params=params, headers=headers)
        return await self.http.post(f"/xrpc/{nsid}", json=body, headers=headers)

    def host(self, prefix: str = "host", **record: Any) -> tuple[Account, str]:
        """A host with an account on the PDS and an offer record there, indexed as the firehose would."""
        account = self.pds.create_account(prefix)
        value = offer_record(**record)
        uri, cid = self.pds.create_record(account, "com.huddle.slotOffer", value)
        with session_scope(self.engine) as session:
            session.add(User(did=account.did, handle=account.handle, email=f"{prefix}@example.test"))
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
        return account, uri


@pytest_asyncio.fixture
async def api(worker: Settings, engine: Engine, pds_peer: PdsPeer) -> AsyncIterator[Api]:
    settings = worker.model_copy(
        update={
            "plc_url": pds_peer.plc_url,
            "handle_resolver_urls": pds_peer.pds_url,
            "hold_seconds_override": 60,
        }
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://huddle.test") as http:
            yield Api(http, settings, engine, pds_peer)
