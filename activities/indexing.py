"""What the index queue's workflows ask of the world: read repos from their PDSes into the index."""

from __future__ import annotations

import logging

from sqlalchemy import Engine
from temporalio import activity

from clients.repo_reader import RepoRefresher
from models import index_store
from workflows.drift_repair import RepoPage, RepoRepair

log = logging.getLogger("huddle.index")

_CHANGES = ("offer_put", "offer_delete", "follow_put", "follow_delete")


class IndexingActivities:
    def __init__(self, engine: Engine, refresher: RepoRefresher) -> None:
        self._engine = engine
        self._refresher = refresher

    @activity.defn(name="list_repos_to_repair")
    def list_repos_to_repair(self, page: RepoPage) -> list[str]:
        """Known hosts, and repos whose last read failed, in DID order after `page.after`."""
        return index_store.repos_to_repair(self._engine, page.after, page.limit)

    @activity.defn(name="repair_repo")
    def repair_repo(self, did: str) -> RepoRepair:
        """Read one repo and correct the index; RepoUnavailable fails the attempt (Temporal retries)."""
        outcome = self._refresher.refresh(did)
        writes = sum(outcome.counts[kind] for kind in _CHANGES)
        if writes:
            log.warning("drift repair corrected %d index rows of %s", writes, did)
        return RepoRepair(did=did, changed=writes > 0, writes=writes)
