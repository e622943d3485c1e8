"""Replaying workflow histories against the code as it is now: the net under every change to workflows/.

A BookingWorkflow lives for weeks, so every deploy replays open bookings on new code. A history
recorded by an earlier version that no longer replays is a booking that would be stuck after the
upgrade. `replay` says which history broke and how; `tests/replay/test_histories.py` runs it on every
history committed under `tests/replay/histories/`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.booking import BookingWorkflow
from workflows.connector_maintenance import CalendarSyncWorkflow, ConnectorMaintenanceWorkflow
from workflows.drift_repair import DriftRepairWorkflow
from workflows.health import HealthCheckWorkflow
from workflows.hold_sweep import HoldSweepWorkflow
from workflows.housekeeping import HousekeepingWorkflow
from workflows.outbox_retry import OutboxRetryWorkflow

HISTORIES = Path(__file__).parent / "histories"

# Every workflow a worker serves (tests/replay/test_histories.py checks this against the wiring).
WORKFLOWS: list[type] = [
    BookingWorkflow,
    CalendarSyncWorkflow,
    ConnectorMaintenanceWorkflow,
    DriftRepairWorkflow,
    HealthCheckWorkflow,
    HoldSweepWorkflow,
    HousekeepingWorkflow,
    OutboxRetryWorkflow,
]


@dataclass(frozen=True)
class Broken:
    """A history the current code cannot replay: the booking it stands for would be stuck."""

    name: str
    error: str

    def __str__(self) -> str:
        return f"{self.name} no longer replays: {self.error}"


def recorded() -> list[Path]:
    """Every committed history, oldest version first (folders are named <date>-<commit>)."""
    return sorted(HISTORIES.glob("*/*.json"))


def history_name(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def load(path: Path) -> WorkflowHistory:
    data = json.loads(path.read_text())
    return WorkflowHistory.from_json(data["workflowId"], data["history"])


def dump(history: WorkflowHistory, workflow_type: str) -> str:
    """A history file: Temporal's own JSON history (what `temporal workflow show -o json` writes)
    wrapped with the id and type, so a failure names what it was."""
    body = {
        "workflowId": history.workflow_id,
        "workflowType": workflow_type,
        "history": history.to_json_dict(),
    }
    return json.dumps(body, indent=1, sort_keys=True) + "\n"


async def replay(
    histories: list[tuple[str, WorkflowHistory]], workflows: list[type] | None = None
) -> list[Broken]:
    """Replay each (name, history) on `workflows` (default: the current code); what broke, by name."""
    replayer = Replayer(workflows=workflows or WORKFLOWS)
    broken = []
    for name, history in histories:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            broken.append(Broken(name, f"{type(result.replay_failure).__name__}: {result.replay_failure}"))
    return broken
