"""The index task queue's workflows and activities, and the drift-repair schedule."""

from __future__ import annotations

from sqlalchemy import Engine
from temporalio.client import Client, Schedule

from activities.indexing import IndexingActivities
from clients.repo_reader import RepoRefresher, reader_from_settings
from models.settings import Settings
from workers.periodic import periodic_schedule
from workers.worker import WorkerParts
from workflows.drift_repair import DriftRepairInput, DriftRepairWorkflow


def add_index_parts(parts: WorkerParts, settings: Settings, engine: Engine, client: Client) -> None:
    indexing = IndexingActivities(engine, RepoRefresher(engine, reader_from_settings(settings)))
    parts.workflows["index"].append(DriftRepairWorkflow)
    parts.activities["index"] += [indexing.list_repos_to_repair, indexing.repair_repo]


def drift_repair_schedule(settings: Settings) -> tuple[str, Schedule]:
    """Re-reads known repos from their PDS, mending whatever the stream missed."""
    return periodic_schedule(
        settings,
        "drift-repair",
        DriftRepairWorkflow.run,
        DriftRepairInput(),
        role="index",
        every_seconds=settings.drift_repair_interval_seconds,
    )
