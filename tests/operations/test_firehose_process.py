"""`huddle firehose` as its own process: its /metrics answers, and each written batch is one span."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from models.settings import Settings
from models.tables import OfferIndex
from tests.firehose.helpers import offer_record
from tests.operations.processes import huddle_process, wait_for_metrics
from tests.operations.scrape import free_port, kept_spans, scrape, trace_spans, value
from tests.peers.pds_peer import PdsPeer
from workers.telemetry import debug_peers


@pytest.fixture
def firehose_process(settings: Settings, pds_peer: PdsPeer, tmp_path: Path) -> Iterator[str]:
    """`huddle firehose` reading the test PDS into this test's database; yields its metrics URL."""
    port = free_port()
    env = {
        "HUDDLE_DATABASE_URL": settings.database_url,
        "HUDDLE_RELAY_URL": f"ws://127.0.0.1:{pds_peer.pds_port}",
        "HUDDLE_PLC_URL": f"http://127.0.0.1:{pds_peer.plc_port}",
        "HUDDLE_HANDLE_RESOLVER_URLS": pds_peer.base_url,
        "HUDDLE_FIREHOSE_FLUSH_SECONDS": "0.02",
        "HUDDLE_FIREHOSE_KNOWN_REFRESH_SECONDS": "0.3",
        "HUDDLE_WORKER_METRICS_PORT": "0",
        "HUDDLE_FIREHOSE_METRICS_PORT": str(port),
    }
    with huddle_process("firehose", env, tmp_path) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_for_metrics(proc, base, tmp_path / "firehose.log")
        yield base


def test_the_firehose_process_serves_its_metrics_and_a_span_per_batch(
    firehose_process: str, pds_peer: PdsPeer, engine: Engine
) -> None:
    host = pds_peer.create_account("fhops")
    uri, _ = pds_peer.create_record(host, "com.huddle.slotOffer", offer_record(f"Ops {uuid.uuid4().hex[:6]}"))

    deadline = time.monotonic() + 30
    while True:
        with Session(engine) as session:
            if session.get(OfferIndex, uri) is not None:
                break
        assert time.monotonic() < deadline, "the offer was not indexed within 30 s"
        time.sleep(0.1)

    samples = scrape(firehose_process)
    assert sum(v for (name, _), v in samples.items() if name == "huddle_firehose_events_total") >= 1
    assert (
        value(samples, "huddle_firehose_index_writes_total", source=_source(pds_peer), kind="offer_put") >= 1
    )

    batches = kept_spans(firehose_process, "firehose batch")
    assert batches and all(b["kind"] == "CONSUMER" for b in batches)
    written = [b for b in batches if b["attributes"]["huddle.firehose.events"] >= 1]
    assert written and written[0]["attributes"]["huddle.firehose.frames"] >= 1
    # A newcomer's repo is read from its PDS: the calls hang off the read, counted as `pds`.
    deadline = time.monotonic() + 15
    while not (reads := kept_spans(firehose_process, "firehose repo read")):
        assert time.monotonic() < deadline, "no repo read span within 15 s"
        time.sleep(0.1)
    calls = [s for s in trace_spans(firehose_process, reads[0]["traceId"]) if s["kind"] == "CLIENT"]
    assert calls and all(s["attributes"]["huddle.provider"] == "pds" for s in calls)
    assert value(scrape(firehose_process), "huddle_provider_calls_total", provider="pds", status="200") >= 1


def _source(peer: PdsPeer) -> str:
    return f"ws://127.0.0.1:{peer.pds_port}"


def test_in_dev_the_api_merges_the_spans_of_the_worker_and_the_firehose() -> None:
    dev = Settings(_env_file=None, dev_mode=True)  # type: ignore[call-arg]
    assert debug_peers(dev) == ["http://127.0.0.1:9464", "http://127.0.0.1:9465"]
    assert debug_peers(dev.model_copy(update={"firehose_metrics_port": 0})) == ["http://127.0.0.1:9464"]
    production = Settings(_env_file=None, secret_key="s" * 32, token_keys="k")  # type: ignore[call-arg]
    assert debug_peers(production) == []
