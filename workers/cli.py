"""The `huddle` command line."""

from __future__ import annotations

import asyncio
import signal
import sys

import click

from workers.logs import configure_logging
from workers.temporal_client import QUEUE_ROLES


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def main() -> None:
    """Huddle: an ATProto AppView for booking time with people."""
    configure_logging()


@main.command()
def dev() -> None:
    """Run the whole stack locally (Temporal, worker, API, firehose)."""
    from models.settings import get_settings
    from workers.devstack import run_dev

    sys.exit(run_dev(get_settings()))


@main.command()
@click.option("--host", default=None, help="Interface to bind (default HUDDLE_API_HOST).")
@click.option("--port", default=None, type=int, help="Port (default HUDDLE_API_PORT).")
def api(host: str | None, port: int | None) -> None:
    """Serve the HTTP API: XRPC, web pages, webhooks."""
    import uvicorn

    from api.main import create_app
    from models.settings import get_settings

    settings = get_settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level="info",
        access_log=False,
    )


@main.command()
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(QUEUE_ROLES),
    help="Task queue role to serve (repeatable; default: all).",
)
def worker(roles: tuple[str, ...]) -> None:
    """Run a Temporal worker for Huddle's task queues."""
    from workers.worker_main import run_worker_process

    asyncio.run(run_worker_process(list(roles or QUEUE_ROLES)))


@main.command()
def firehose() -> None:
    """Index offers and follows from the firehose."""
    from workers.firehose_main import run_firehose_process

    asyncio.run(run_firehose_process())


@main.command()
@click.argument("actor")
def backfill(actor: str) -> None:
    """Read a repo's offers and follows into the index (ACTOR: a DID or a handle)."""
    from workers.firehose.backfill import backfill_command

    backfill_command(actor)


@main.command()
@click.option("--revision", default="heads", show_default=True, help="Target revision.")
def migrate(revision: str) -> None:
    """Apply database migrations to HUDDLE_DATABASE_URL."""
    from models.migrate import migrate as apply
    from models.settings import get_settings

    apply(get_settings().database_url, revision)
    click.echo(f"migrated to {revision}")


@main.command()
def health() -> None:
    """Round-trip a workflow through every task queue."""
    from workers.health_check import run_health_check

    answers = asyncio.run(run_health_check())
    for queue, answer in answers.items():
        click.echo(f"{queue}: {answer}")


@main.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt stored tokens and passwords with the first key of HUDDLE_TOKEN_KEYS."""
    from clients.key_rotation import rotate_stored_secrets
    from clients.secrets import KeyRing
    from models.db import make_engine
    from models.settings import get_settings

    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        report = rotate_stored_secrets(engine, KeyRing.from_settings(settings))
    finally:
        engine.dispose()
    for table, count in report.rotated.items():
        click.echo(f"{table}: {count} re-encrypted")
    click.echo(f"already current: {report.current}")
    if report.unreadable:
        unreadable = ", ".join(report.unreadable)
        click.echo(f"no key decrypts {len(report.unreadable)} values: {unreadable}", err=True)
        sys.exit(1)


def install_stop_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Set `stop` on SIGINT/SIGTERM so long-running commands shut down gracefully."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


if __name__ == "__main__":
    main()
