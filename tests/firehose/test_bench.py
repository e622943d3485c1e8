"""The firehose benchmark runs end to end on a small stream and its consumer indexes it correctly."""

from __future__ import annotations

from bench.firehose import run
from bench.firehose.mix import WEIGHTS, build, load_templates


def test_the_recorded_fixture_has_every_kind_of_the_mix() -> None:
    assert set(load_templates()) >= set(WEIGHTS)


def test_the_stream_keeps_every_repo_rev_chain() -> None:
    stream = build(2000, seed=4)
    from libipld import decode_dag_cbor_multi

    last: dict[str, str] = {}
    for seq, frame in enumerate(stream.frames, start=1):
        header, body = decode_dag_cbor_multi(frame)
        assert body["seq"] == seq
        if header["t"] == "#commit":
            assert body["since"] == last.get(body["repo"])
            last[body["repo"]] = body["rev"]


def test_run_returns_rows_and_the_index_matches_the_stream() -> None:
    rows = run(events=3000, seed=2)
    assert {tuple(sorted(r)) for r in rows} == {("baseline", "bench", "case", "metric", "ratio", "value")}
    speed, _per_cpu, _blocks, correct = rows
    assert speed["value"] > 0 and speed["baseline"] > 0
    assert correct["value"] == correct["baseline"] == 2  # seed 2 leaves two live offers
