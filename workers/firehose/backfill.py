"""`huddle backfill <did-or-handle>`: read one repo's offers and follows into the index now."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import Engine

from clients.identity import IdentityError, IdentityResolver
from clients.repo_reader import RepoRefresher, RepoUnavailable, reader_from_settings
from models.index_store import SnapshotOutcome
from models.settings import Settings


class BackfillError(Exception):
    """The actor could not be resolved or its repo read."""


@dataclass(frozen=True)
class BackfillReport:
    did: str
    outcome: SnapshotOutcome

    def lines(self) -> list[str]:
        counts = self.outcome.counts
        lines = [
            f"{self.did}: offers indexed {counts['offer_put']}, removed {counts['offer_delete']}; "
            f"follows added {counts['follow_put']}, removed {counts['follow_delete']}"
        ]
        if self.outcome.stale:
            lines.append("  the firehose had already applied newer commits; nothing to change")
        lines += [f"  refused {r.uri}: {r.reason} at {r.path!r}: {r.message}" for r in self.outcome.rejected]
        return lines


async def resolve_actor(settings: Settings, actor: str) -> str:
    """The DID of `actor` (a DID, or a handle verified both ways)."""
    resolver = IdentityResolver(
        plc_url=settings.plc_url,
        dev_mode=settings.dev_mode,
        handle_resolver_urls=[u for u in settings.handle_resolver_urls.split(",") if u.strip()],
    )
    async with resolver:
        try:
            return await resolver.resolve_actor(actor)
        except IdentityError as exc:
            raise BackfillError(f"cannot resolve {actor!r}: {exc}") from exc


def backfill(settings: Settings, engine: Engine, actor: str) -> BackfillReport:
    did = asyncio.run(resolve_actor(settings, actor))
    reader = reader_from_settings(settings)
    try:
        outcome = RepoRefresher(engine, reader).refresh(did)
    except RepoUnavailable as exc:
        raise BackfillError(f"cannot read the repo of {did}: {exc}") from exc
    finally:
        reader.close()
    return BackfillReport(did, outcome)


def backfill_command(actor: str) -> None:
    """The CLI: backfill with the process settings, print what changed; a ClickException on failure."""
    import click

    from models.db import make_engine
    from models.settings import get_settings

    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        click.echo("\n".join(backfill(settings, engine, actor).lines()))
    except BackfillError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
