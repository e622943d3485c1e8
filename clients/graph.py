"""Follow facts for offer policies, answered from the graph edges the firehose indexes."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Engine
from sqlmodel import Session, select

from models.tables import GraphEdge


class FollowGraph(Protocol):
    def follows(self, author_did: str, subject_did: str) -> bool: ...


class StoredFollowGraph:
    """Edges from the graph_edges table (the firehose issue adds backfill for unknown actors)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def follows(self, author_did: str, subject_did: str) -> bool:
        with Session(self._engine) as session:
            query = select(GraphEdge.uri).where(
                GraphEdge.author_did == author_did, GraphEdge.subject_did == subject_did
            )
            return session.exec(query.limit(1)).first() is not None
