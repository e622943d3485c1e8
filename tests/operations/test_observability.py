"""What an operator checks: counters move after a booking, one trace per booking, secrets never shown."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from api.ratelimit import BucketPolicy, RateLimiter
from tests.operations.conftest import TracedApi


async def scrape(api: TracedApi) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    resp = await api.http.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(resp.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_show_the_booking_counters_moving(traced_api: TracedApi) -> None:
    api = traced_api
    host, _ = api.host()
    guest = api.pds.create_account("guest")
    before = await scrape(api)

    held = (await api.call(guest, "com.huddle.match", {"host": host.did, "durationMinutes": 30})).json()
    assert held["state"] == "held", held
    done = (await api.call(guest, "com.huddle.finalize", {"booking": held["id"]})).json()
    assert done["state"] == "confirmed", done
    after = await scrape(api)

    moved = {
        name: value(after, name, **labels) - value(before, name, **labels)
        for name, labels in [
            ("huddle_booking_transitions_total", {"state": "held", "action": "held"}),
            ("huddle_match_latency_seconds_count", {"outcome": "held"}),
        ]
    }
    assert moved == {"huddle_booking_transitions_total": 1, "huddle_match_latency_seconds_count": 1}
    confirmed = [
        k for k in after if k[0] == "huddle_booking_transitions_total" and ("state", "confirmed") in k[1]
    ]
    assert confirmed and sum(after[k] - before.get(k, 0.0) for k in confirmed) == 1
    # The projection's totals, the same from every replica.
    assert value(after, "huddle_bookings", state="confirmed") == 1
    assert value(after, "huddle_match_latency_seconds_bucket", outcome="held", le="+Inf") >= 1


async def test_one_booking_is_one_trace_of_api_workflow_and_activity_spans(traced_api: TracedApi) -> None:
    api = traced_api
    host, _ = api.host()
    guest = api.pds.create_account("guest")
    held = (await api.call(guest, "com.huddle.match", {"host": host.did, "durationMinutes": 30})).json()
    assert held["state"] == "held", held

    tracez = (await api.http.get("/debug/tracez")).json()
    by_name = {op["operation"]: op for op in tracez["operations"]}
    server = by_name["POST /xrpc/com.huddle.match"]["recent"][0]
    assert server["kind"] == "SERVER" and server["attributes"]["http.response.status_code"] == 200

    spans = (await api.http.get("/debug/tracez", params={"trace": server["traceId"]})).json()["spans"]
    names = [s["name"] for s in spans]
    assert "POST /xrpc/com.huddle.match" in names
    # The API starts the workflow with its first update (update-with-start), inside its own span.
    assert "StartUpdateWithStartWorkflow:BookingWorkflow" in names, names
    assert any(n.startswith("RunWorkflow:BookingWorkflow") for n in names), names
    assert any(n.startswith("RunActivity:") for n in names), names
    assert {s["traceId"] for s in spans} == {server["traceId"]}
    # Every span but the server's hangs off another span of this trace.
    ids = {s["spanId"] for s in spans}
    assert [s["name"] for s in spans if s["parentSpanId"] not in ids] == ["POST /xrpc/com.huddle.match"]


async def test_rate_limit_rejections_are_counted(traced_api: TracedApi) -> None:
    api = traced_api
    api.app.state.rate_limiter = RateLimiter(
        api.engine, per_caller=BucketPolicy(1, 0.001), per_ip=BucketPolicy(100, 1.0)
    )
    caller = api.pds.create_account("caller")
    before = await scrape(api)
    first = await api.call(caller, "com.huddle.cancel", {"booking": "nope"})
    second = await api.call(caller, "com.huddle.cancel", {"booking": "nope"})
    assert (first.status_code, second.status_code) == (404, 429)
    after = await scrape(api)
    name, labels = "huddle_rate_limit_rejections_total", {"method": "com.huddle.cancel"}
    assert value(after, name, **labels) - value(before, name, **labels) == 1


async def test_debug_pages_show_metrics_and_config_with_secrets_redacted(traced_api: TracedApi) -> None:
    api = traced_api
    secrets = {
        "secret_key": "s3cret-key-do-not-print",
        "token_keys": "tokenkey-do-not-print",
        "smtp_url": "smtp://mailer:smtp-pass-do-not-print@mail.example:587",
        "google_client_secret": "google-do-not-print",
        "oauth_client_keys": '{"d": "private-do-not-print"}',
    }
    api.app.state.huddle.settings = api.settings.model_copy(update=secrets)
    page = await api.http.get("/debug/configz")
    assert page.status_code == 200
    assert "do-not-print" not in page.text
    config = page.json()
    assert config["settings"]["secret_key"] == "[set]" and config["settings"]["token_keys"] == "[set]"
    assert config["settings"]["calendar_allow_private_servers"] is False  # not a secret: shown as is
    assert config["settings"]["smtp_url"] == "smtp://mailer:[redacted]@mail.example:587"
    assert config["build"]["huddle"] and "prometheus-text" in config["build"]["exporters"]
    # The database URL keeps its host but never its password.
    assert not re.search(r"://[^/]*:[^@\[]+@", config["settings"]["database_url"])

    metricz = (await api.http.get("/debug/metricz")).json()["metrics"]
    assert all("attributes" in row for rows in metricz.values() for row in rows)
    assert (await api.http.get("/debug/")).status_code == 200
