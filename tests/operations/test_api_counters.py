"""On the API's /metrics: identity lookups it made, webhook deliveries by outcome, the outbox backlog."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from clients.secrets import digest
from models.calendar_tables import CalendarChannel
from models.db import session_scope
from models.tables import OutboxMessage
from models.types import utcnow
from tests.operations.conftest import TracedApi
from tests.operations.scrape import Samples, parse, value


async def scrape(api: TracedApi) -> Samples:
    resp = await api.http.get("/metrics")
    assert resp.status_code == 200
    return parse(resp.text)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_identity_lookups_of_a_request_are_counted_and_in_its_trace(traced_api: TracedApi) -> None:
    api = traced_api
    host, _ = api.host()
    guest = api.pds.create_account("guest")
    before = await scrape(api)
    held = (await api.call(guest, "com.huddle.match", {"host": host.did, "durationMinutes": 30})).json()
    assert held["state"] == "held", held
    after = await scrape(api)

    # The caller's DID document was fetched to check the token's signature.
    assert moved(before, after, "huddle_provider_calls_total", provider="identity", status="200") >= 1
    tracez = (await api.http.get("/debug/tracez")).json()["operations"]
    server = next(op for op in tracez if op["operation"] == "POST /xrpc/com.huddle.match")["recent"][0]
    spans = (await api.http.get("/debug/tracez", params={"trace": server["traceId"]})).json()["spans"]
    lookups = [s for s in spans if s["name"].startswith("identity ")]
    assert lookups and all(s["kind"] == "CLIENT" for s in lookups), [s["name"] for s in spans]
    assert guest.did not in json.dumps(lookups)  # the DID is in the PLC path; paths are never kept


async def test_webhook_deliveries_are_counted_by_outcome(traced_api: TracedApi) -> None:
    api = traced_api
    token = f"channel-token-{uuid.uuid4().hex}"
    channel_id = f"ch-{uuid.uuid4().hex[:12]}"
    with session_scope(api.engine) as session:
        session.add(
            CalendarChannel(
                id=channel_id,
                connector_id=1,
                provider="google",
                calendar_id="primary",
                token_digest=digest(token),
                expires_at=utcnow() + timedelta(days=1),
            )
        )

    def google(channel: str, channel_token: str | None, state: str = "exists") -> dict[str, str]:
        headers = {"X-Goog-Channel-ID": channel, "X-Goog-Resource-State": state}
        if channel_token is not None:
            headers["X-Goog-Channel-Token"] = channel_token
        return headers

    before = await scrape(api)
    answers = [
        (await api.http.post("/webhooks/google", headers=google(channel_id, "not-the-token"))).status_code,
        (await api.http.post("/webhooks/google", headers=google("no-such-channel", token))).status_code,
        (await api.http.post("/webhooks/google", headers=google(channel_id, token, "sync"))).status_code,
        (await api.http.post("/webhooks/google")).status_code,
        (await api.http.post("/webhooks/microsoft", params={"validationToken": "abc"})).status_code,
        (
            await api.http.post(
                "/webhooks/microsoft",
                json={"value": [{"subscriptionId": "nope", "clientState": "guess"}]},
            )
        ).status_code,
    ]
    after = await scrape(api)

    assert answers == [403, 404, 200, 400, 200, 403]
    name = "huddle_webhook_deliveries_total"
    assert {
        (provider, outcome): moved(before, after, name, provider=provider, outcome=outcome)
        for provider, outcome in [
            ("google", "refused"),
            ("google", "unknown_channel"),
            ("google", "sync"),
            ("google", "malformed"),
            ("microsoft", "validation"),
            ("microsoft", "refused"),
        ]
    } == {
        ("google", "refused"): 1,
        ("google", "unknown_channel"): 1,
        ("google", "sync"): 1,
        ("google", "malformed"): 1,
        ("microsoft", "validation"): 1,
        ("microsoft", "refused"): 1,
    }


async def test_outbox_backlog_is_read_from_the_database_at_scrape_time(traced_api: TracedApi) -> None:
    api = traced_api
    now = utcnow()
    with session_scope(api.engine) as session:
        for n, (state, age) in enumerate([("pending", 900), ("pending", 30), ("sent", 5000), ("failed", 10)]):
            session.add(
                OutboxMessage(
                    dedupe_key=f"ops-test:{n}",
                    kind="confirmed",
                    recipient="ann@example.test",
                    state=state,
                    created_at=now - timedelta(seconds=age),
                )
            )
    samples = await scrape(api)
    assert {s: value(samples, "huddle_outbox_messages", state=s) for s in ("pending", "sent", "failed")} == {
        "pending": 2,
        "sent": 1,
        "failed": 1,
    }
    # The oldest message still waiting has waited 15 minutes: the retry schedule is behind.
    assert 900 <= value(samples, "huddle_outbox_oldest_waiting_seconds") < 960
