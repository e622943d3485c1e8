"""Follow facts for offer policies, answered from the graph edges the firehose indexes.

"Does A follow B" lives in A's repo. The firehose keeps the edges of everyone Huddle knows; for an
actor whose follows were never read (a first-time guest, a host whose follows predate Huddle),
A's repo is read on first need and the answer comes from the edges it left. That read is cached
with a TTL in the database (`index_repos.fetched_at`), so every process and replica shares it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine
from sqlmodel import Session, select

from clients.repo_reader import RepoRefresher, reader_from_settings
from models import index_store
from models.settings import Settings
from models.tables import GraphEdge
from models.types import utcnow


class FollowGraph(Protocol):
    def follows(self, author_did: str, subject_did: str) -> bool: ...


class StoredFollowGraph:
    """Edges from graph_edges; with a `refresher`, an author's follows are read from their repo when
    Huddle has not read them within `refetch_after`. A repo that cannot be read raises
    `RepoUnavailable` (the activity retries) rather than answering "no"."""

    def __init__(
        self,
        engine: Engine,
        refresher: RepoRefresher | None = None,
        *,
        refetch_after: timedelta = timedelta(hours=6),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._refresher = refresher
        self._refetch_after = refetch_after
        self._clock = clock

    def follows(self, author_did: str, subject_did: str) -> bool:
        if self._edge(author_did, subject_did):
            return True
        if self._refresher is None:
            return False
        if index_store.repo_fetched_since(self._engine, author_did, self._clock() - self._refetch_after):
            return False
        self._refresher.refresh(author_did)
        return self._edge(author_did, subject_did)

    def _edge(self, author_did: str, subject_did: str) -> bool:
        with Session(self._engine) as session:
            query = select(GraphEdge.uri).where(
                GraphEdge.author_did == author_did, GraphEdge.subject_did == subject_did
            )
            return session.exec(query.limit(1)).first() is not None


def follow_graph(engine: Engine, settings: Settings) -> StoredFollowGraph:
    """The graph the booking policy uses: it reads repos only when Huddle indexes the network
    (a relay is configured); without one, the stored edges are all there is."""
    if not settings.relay_url:
        return StoredFollowGraph(engine)
    return StoredFollowGraph(
        engine,
        RepoRefresher(engine, reader_from_settings(settings)),
        refetch_after=timedelta(seconds=settings.graph_refetch_after_seconds),
    )
