"""The index task queue's workflows and activities, and the drift-repair schedule."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from activities.indexing import IndexingActivities
from clients.repo_reader import RepoRefresher, reader_from_settings
from models.settings import Settings
from workers.worker import WorkerParts
from workflows.drift_repair import DriftRepairInput, DriftRepairWorkflow


def add_index_parts(parts: WorkerParts, settings: Settings, engine: Engine, client: Client) -> None:
    indexing = IndexingActivities(engine, RepoRefresher(engine, reader_from_settings(settings)))
    parts.workflows["index"].append(DriftRepairWorkflow)
    parts.activities["index"] += [indexing.list_repos_to_repair, indexing.repair_repo]


def drift_repair_schedule(settings: Settings) -> tuple[str, Schedule]:
    schedule_id = f"{settings.task_queue_prefix}-drift-repair"
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            DriftRepairWorkflow.run,
            DriftRepairInput(),
            id=f"{schedule_id}-run",
            task_queue=settings.task_queue("index"),
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(seconds=settings.drift_repair_interval_seconds))]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    return schedule_id, schedule
