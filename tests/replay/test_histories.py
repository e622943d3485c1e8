"""Every history recorded by an earlier version replays on the code as it is now.

A failure here names the history (`<version>/<path>`): the change it points at would leave every
booking open on that path stuck after a deploy. Put the change behind `workflow.patched(...)` (see
docs/versioning.md); never edit or delete a recorded history to make this pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from temporalio.client import Client

from models.settings import Settings
from tests.replay.harness import WORKFLOWS, history_name, load, recorded, replay
from workers.worker import worker_parts

# Every workflow type a deploy can find open (all of them): each has at least one recorded history.
REQUIRED = {
    "BookingWorkflow",
    "CalendarSyncWorkflow",
    "ConnectorMaintenanceWorkflow",
    "DriftRepairWorkflow",
    "HoldSweepWorkflow",
    "HousekeepingWorkflow",
    "OutboxRetryWorkflow",
}


@pytest.mark.parametrize("path", recorded(), ids=history_name)
async def test_a_recorded_history_replays(path: Path) -> None:
    broken = await replay([(history_name(path), load(path))])
    assert not broken, str(broken[0])


def test_every_long_lived_workflow_has_recorded_histories() -> None:
    types = {json.loads(p.read_text())["workflowType"] for p in recorded()}
    assert REQUIRED <= types, f"no recorded history of {sorted(REQUIRED - types)}"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_replayer_knows_every_workflow_a_worker_serves(
    settings: Settings, engine: Engine, temporal_client: Client
) -> None:
    parts = worker_parts(settings, engine, temporal_client)
    served = {cls for classes in parts.workflows.values() for cls in classes}
    assert served == set(WORKFLOWS)
