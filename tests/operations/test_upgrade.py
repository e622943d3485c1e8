"""Issue 15 item 3: an upgrade with bookings in flight. Bookings made by commit 999d23c's code (held,
confirmed, and a one-minute hold) go on under the current checkout's code after the operator stops
everything and starts the new version on the same database and the same Temporal database file."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select
from temporalio.client import Client

from api.booking_commands import read_booking, send_command
from clients.mail.sink import MailSink
from kernel.booking.ids import workflow_id
from kernel.booking.messages import CommandInput
from kernel.lexicon.views import BookingView
from models.db import make_engine
from models.migrate import alembic_config
from models.settings import REPO_ROOT
from models.tables import AuditEntry
from models.types import utcnow
from tests.bookings.helpers import book, final_view, make_request
from tests.conftest import PG_ADMIN_URL, REQUIRE_POSTGRES, make_settings
from tests.notifications.helpers import check_itip
from tests.operations.scrape import free_port
from tests.operations.upgrade_stack import Version, old_checkout, temporal_server

pytestmark = [pytest.mark.slow, pytest.mark.temporal]

OLD_COMMIT = "999d23c"
SHORT_HOLD_SECONDS = 60
# The hold's timer fires at hold_expires_at; the workflow task and the projection write follow within
# a few seconds on a busy two-core machine. Past this it did not expire "on time".
EXPIRY_SLACK = timedelta(seconds=15)
GUEST_MAIL, HOST_MAIL = "guest@example.test", "host@example.test"


@pytest.fixture(scope="module")
def old_code(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Version]:
    """The old commit in its own work tree, shared by both database variants."""
    with old_checkout(OLD_COMMIT, tmp_path_factory.mktemp("old-checkout") / "huddle") as root:
        yield Version(OLD_COMMIT, root)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (not the conftest's migrated one): the old version's migrate creates it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'huddle.db'}"
        return
    name = f"huddle_upgrade_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"Postgres is required (HUDDLE_REQUIRE_POSTGRES=1) but unreachable: {exc}")
        pytest.skip(f"Postgres unreachable at {PG_ADMIN_URL}: {exc}")
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


@pytest_asyncio.fixture
async def engine_for(empty_database: str) -> AsyncIterator[Engine]:
    engine = make_engine(empty_database)
    yield engine
    engine.dispose()


def _at(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)


async def _until(what: str, check: Any, within: float) -> Any:
    """Poll `check()` (sync) until it returns something truthy; fail saying `what` after `within` s."""
    deadline = time.monotonic() + within
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what}: not within {within:.0f} s"
        await asyncio.sleep(0.2)
    return found


def _outbox(engine: Engine, booking: str) -> dict[str, str]:
    """A booking's outbox rows, <kind>:<role> → state. Plain SQL: before the upgrade the schema is
    the old version's, which the current models need not match."""
    query = text("SELECT dedupe_key, state FROM outbox WHERE booking_id = :b")
    with engine.connect() as conn:
        return {key.split(":", 1)[1]: state for key, state in conn.execute(query, {"b": booking})}


def _outbox_settled(engine: Engine, wanted: dict[str, set[str]]) -> bool:
    """Each booking's outbox holds the `wanted` rows and none of its rows waits to be sent."""
    for booking, keys in wanted.items():
        rows = _outbox(engine, booking)
        if not keys <= rows.keys() or {"pending", "sending"} & set(rows.values()):
            return False
    return True


def _mail(sink: MailSink, booking: str) -> list[tuple[str, str]]:
    return sorted((e.kind or "", e.recipient) for e in sink.messages(200, booking_id=booking))


async def test_bookings_in_flight_survive_an_upgrade(
    old_code: Version, empty_database: str, engine_for: Engine, tmp_path: Path
) -> None:
    engine = engine_for
    new = Version("current", REPO_ROOT)
    port, ui_port = free_port(), free_port()
    temporal_db, temporal_log = tmp_path / "temporal.db", tmp_path / "temporal.log"
    sink = MailSink(tmp_path / "mail")
    # One operator's settings, the same for both versions: bookings carry their task queue prefix.
    settings = {
        "HUDDLE_DATABASE_URL": empty_database,
        "HUDDLE_TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
        "HUDDLE_TEMPORAL_NAMESPACE": "default",
        "HUDDLE_TASK_QUEUE_PREFIX": f"up{uuid.uuid4().hex[:8]}",
        "HUDDLE_MAIL_SINK_DIR": str(sink.directory),
        "HUDDLE_HOSTNAME": "huddle.test",
        "HUDDLE_PUBLIC_URL": "https://huddle.test",
        "HUDDLE_RELAY_URL": "",
        "HUDDLE_WORKER_METRICS_PORT": "0",
        "HUDDLE_FIREHOSE_METRICS_PORT": "0",
    }
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    old_dir.mkdir()
    new_dir.mkdir()

    # The old code is what runs: its modules come from its work tree, not the venv's editable install.
    for origin in old_code.origin(settings, old_dir):
        assert Path(origin).is_relative_to(old_code.root), origin
    for origin in new.origin(settings, new_dir):
        assert Path(origin).is_relative_to(REPO_ROOT), origin

    # ---- the old version: migrate an empty database, run its worker, book.
    with temporal_server(port, ui_port, temporal_db, temporal_log):
        old_code.migrate(settings, old_dir)
        with old_code.worker(settings, old_dir):
            made = old_code.drive(settings, old_dir, UPGRADE_SHORT_HOLD_SECONDS=str(SHORT_HOLD_SECONDS))
            # Mail goes out beside each step: let the old worker settle it (sent, or skipped as out of
            # date, as the held notice of a booking finalized at once may be), so that what the new
            # version sends after the upgrade, and what it must not send again, is exact.
            wanted = {
                made["held"]["id"]: {"held:guest"},
                made["confirmed"]["id"]: {"held:guest", "confirmed:guest", "confirmed:host"},
                made["short"]["id"]: {"held:guest"},
            }
            await _until("the old version's outbox settled", lambda: _outbox_settled(engine, wanted), 30)
    before = {booking: _mail(sink, booking) for booking in wanted}
    assert all(("held", GUEST_MAIL) in before[made[b]["id"]] for b in ("held", "short")), before
    assert all(Path(m).is_relative_to(old_code.root) for m in made["modules"]), made["modules"]
    held, confirmed, short = made["held"], made["confirmed"], made["short"]
    assert (held["state"], confirmed["state"], short["state"]) == ("held", "confirmed", "held"), made
    short_expires = _at(short["hold_expires_at"])
    # The short hold must still be running when the new version takes over, or nothing is tested.
    assert short_expires - utcnow() > timedelta(seconds=20), "the old version took too long to book"

    # ---- everything is stopped; the operator starts the new version on the same data.
    with temporal_server(port, ui_port, temporal_db, temporal_log) as address:
        new.migrate(settings, new_dir)
        heads = set(ScriptDirectory.from_config(alembic_config(empty_database)).get_heads())
        with engine.connect() as conn:
            applied = {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
        assert applied == heads, f"migrated to {applied}, the current code's heads are {heads}"

        with new.worker(settings, new_dir):
            client = await Client.connect(address)
            await _after_the_upgrade(client, engine, settings, sink, made, before, short_expires)


async def _after_the_upgrade(
    client: Client,
    engine: Engine,
    settings: dict[str, str],
    sink: MailSink,
    made: dict[str, Any],
    before: dict[str, list[tuple[str, str]]],
    short_expires: datetime,
) -> None:
    held, confirmed, short = made["held"], made["confirmed"], made["short"]
    # The new code replays each old history: queries answer with the state the old code left.
    for booking, state in ((held, "held"), (confirmed, "confirmed"), (short, "held")):
        handle = client.get_workflow_handle(workflow_id(booking["id"]))
        view = await handle.query("view", result_type=BookingView)
        assert (view.state, view.start and view.start.isoformat()) == (state, booking["start"])
        assert read_booking(engine, booking["id"]).state == state  # type: ignore[union-attr]
    # The held booking finalizes to confirmed.
    view = await send_command(client, engine, held["id"], "finalize", CommandInput(held["guest"]))
    assert (view.state, view.awaiting, view.hold_expires_at) == ("confirmed", (), None)
    assert read_booking(engine, held["id"]).state == "confirmed"  # type: ignore[union-attr]
    expected = sorted([*before[held["id"]], ("confirmed", GUEST_MAIL), ("confirmed", HOST_MAIL)])
    await _until(
        f"confirmation mail of {held['id']}: {_mail(sink, held['id'])}",
        lambda: _mail(sink, held["id"]) == expected,
        30,
    )

    # The confirmed booking cancels; both people get a CANCEL for the invitation they had.
    view = await send_command(
        client, engine, confirmed["id"], "cancel", CommandInput(confirmed["host"], reason="upgrade test")
    )
    assert (view.state, view.reason) == ("cancelled", "upgrade test")
    assert (await final_view(client, confirmed["id"])).state == "cancelled"
    assert read_booking(engine, confirmed["id"]).state == "cancelled"  # type: ignore[union-attr]
    cancels = await _until(
        f"CANCEL mail of {confirmed['id']}: {_mail(sink, confirmed['id'])}",
        lambda: (
            [e for e in sink.messages(200, booking_id=confirmed["id"]) if e.kind == "cancelled"]
            if {r for k, r in _mail(sink, confirmed["id"]) if k == "cancelled"} == {GUEST_MAIL, HOST_MAIL}
            else None
        ),
        30,
    )
    # Only the CANCELs are new: what the old version sent is not sent again.
    assert _mail(sink, confirmed["id"]) == sorted(
        [*before[confirmed["id"]], ("cancelled", GUEST_MAIL), ("cancelled", HOST_MAIL)]
    )
    for entry in cancels:
        message = sink.read(entry.name)
        assert message is not None and message.calendar is not None, entry
        event = check_itip(message.calendar, "CANCEL").events[0]
        assert event["UID"] == f"{confirmed['id']}@huddle.test"

    # A new request books normally under the new code, on the old version's offer.
    current = make_settings(
        settings["HUDDLE_DATABASE_URL"],
        client,
        task_queue_prefix=settings["HUDDLE_TASK_QUEUE_PREFIX"],
        mail_sink_dir=settings["HUDDLE_MAIL_SINK_DIR"],
    )
    fresh = await book(client, current, engine, make_request(current, made["offer"], hold_seconds=None))
    assert fresh.state == "held" and fresh.start is not None
    assert fresh.start.isoformat() != held["start"], "the new hold took the confirmed booking's time"

    # The one-minute hold, started by the old code, expires on time under the new code.
    remaining = (short_expires - utcnow() + EXPIRY_SLACK).total_seconds()
    assert remaining > 0, f"the test reached the short hold's expiry check {-remaining:.0f} s late"
    ended = await asyncio.wait_for(final_view(client, short["id"]), timeout=remaining)
    observed = utcnow()
    assert ended.state == "expired" and ended.hold_expires_at is None
    assert short_expires <= ended.updated_at <= short_expires + EXPIRY_SLACK, (
        f"expired at {ended.updated_at}, its hold ran until {short_expires}"
    )
    assert observed <= short_expires + EXPIRY_SLACK
    row = read_booking(engine, short["id"])
    assert row is not None and row.state == "expired"
    with Session(engine) as session:
        actions = session.exec(
            select(AuditEntry.action).where(AuditEntry.booking_id == short["id"]).order_by(col(AuditEntry.id))
        ).all()
    assert list(actions)[-1] == "hold_expired", actions
    # The expiry ran on the new code, which sends the notice itself (workflows/patches.py
    # EXPIRED_NOTICE_SENT_AT_ONCE) before the workflow ends: no retry sweep is needed for it.
    await _until(
        f"expiry mail of {short['id']}: {_mail(sink, short['id'])}",
        lambda: _mail(sink, short["id"]) == sorted([*before[short["id"]], ("expired", GUEST_MAIL)]),
        30,
    )
