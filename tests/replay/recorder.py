"""`keep_history`: a test that drives a workflow path hands its history here.

In every run the history is replayed at once on the current code (a workflow that cannot replay its
own fresh history is non-deterministic). When `HUDDLE_RECORD_HISTORIES` names a folder (`make
histories` sets it), the history is also written there under the path's name, to be committed: from
then on `tests/replay/test_histories.py` replays it on every later version of the code.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from temporalio.client import Client

from tests.replay.harness import dump, replay

_written: dict[str, str] = {}  # history name -> the test that wrote it


def record_into() -> Path | None:
    folder = os.environ.get("HUDDLE_RECORD_HISTORIES")
    return Path(folder) if folder else None


async def keep_history(client: Client, workflow_id: str, name: str, *, run_id: str | None = None) -> None:
    """Replay this workflow's history now; write it as `<name>.json` when recording."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    history = await handle.fetch_history()
    broken = await replay([(name, history)])
    assert not broken, str(broken[0])
    folder = record_into()
    if folder is None:
        return
    # A test parametrized over databases walks the same path twice: the first run is kept. Two
    # different tests must not claim one name, or one of their paths would go unrecorded.
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split("[")[0].split(" ")[0]
    if name in _written:
        assert _written[name] == test, f"{test} and {_written[name]} both record {name!r}"
        return
    workflow_type = (await handle.describe()).workflow_type
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(dump(history, workflow_type))
    _written[name] = test


async def keep_latest(client: Client, workflow_type: str, task_queue: str, name: str) -> None:
    """The same, for the newest run of a workflow a schedule started (its id is the schedule's)."""
    query = f'WorkflowType = "{workflow_type}" AND TaskQueue = "{task_queue}"'
    deadline = asyncio.get_running_loop().time() + 10
    while not (runs := [wf async for wf in client.list_workflows(query)]):
        # Visibility is eventually consistent: a run that just started may not be listed yet.
        assert asyncio.get_running_loop().time() < deadline, f"no {workflow_type} ran on {task_queue}"
        await asyncio.sleep(0.2)
    newest = max(runs, key=lambda wf: wf.start_time)
    await keep_history(client, newest.id, name, run_id=newest.run_id)
