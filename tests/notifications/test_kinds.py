"""Every kind of outbox row the code writes has templates and renders; connector notices go out at once.

The kinds are collected from the source, not listed by hand: a step the booking workflow notifies
(`_notify("x")`, or `"enqueue_notifications", "x"`), a recipient list in activities/notifications.py,
and any literal `"kind": "x"` written into the outbox elsewhere (clients/calendar/store.py).
"""

from __future__ import annotations

import ast
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from activities.notifications import RECIPIENTS
from clients.calendar.store import ConnectorStore
from clients.mail import notices, render
from clients.mail.message import MailIdentity, compose
from clients.mail.outbox import sender_from_settings
from clients.secrets import KeyRing
from models.db import session_scope
from models.settings import Settings
from models.tables import OutboxMessage, User
from tests.notifications.helpers import activities, body, effect, rows, seed_booking
from tests.notifications.smtp_peer import Received, SmtpPeer

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("activities", "api", "clients", "models", "workers", "workflows")
TEMPLATES = ROOT / "clients" / "mail" / "templates"


def _constant(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def enqueued_kinds() -> set[str]:
    kinds = set(RECIPIENTS)
    for folder in PRODUCTION:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Dict):  # an outbox row written as a dict
                    for key, value in zip(node.keys, node.values, strict=True):
                        if _constant(key) == "kind" and (kind := _constant(value)):
                            kinds.add(kind)
                if not isinstance(node, ast.Call):
                    continue
                args = [_constant(a) for a in node.args]
                if (
                    isinstance(node.func, ast.Attribute)
                    and node.func.attr == "_notify"
                    and args[:1] != [None]
                ):
                    kinds.add(str(args[0]))
                if "enqueue_notifications" in args:  # the workflow's side effect: (role, activity, step)
                    step = args[args.index("enqueue_notifications") + 1 :][:1]
                    kinds.update(s for s in step if s)
    return kinds


def test_the_collection_finds_both_sources() -> None:
    kinds = enqueued_kinds()
    assert {"held", "confirmed", "expired", "calendar_needs_reauth"} <= kinds


def test_every_enqueued_kind_has_a_subject_and_both_templates() -> None:
    registered = set(render.KINDS) | set(notices.KINDS)
    assert enqueued_kinds() <= registered, "a kind is enqueued that nothing can render"
    for kind in registered:
        assert (TEMPLATES / f"{kind}.txt").is_file() and (TEMPLATES / f"{kind}.html").is_file(), kind
    assert set(render.SUBJECTS) >= set(render.KINDS) and set(notices.SUBJECTS) == set(notices.KINDS)


@pytest.mark.parametrize("kind", sorted(set(RECIPIENTS)))
def test_every_booking_kind_renders_for_each_recipient(engine: Engine, settings: Settings, kind: str) -> None:
    booking = seed_booking(engine)
    assert activities(engine, settings).enqueue_notifications(effect(booking, kind)) == len(RECIPIENTS[kind])
    identity = MailIdentity.from_settings(settings)
    for row in rows(engine, booking):
        message = compose(row, identity)
        assert message.data and row.kind == kind


def _connector(
    engine: Engine, settings: Settings, *, email: str | None, zone: str | None
) -> tuple[ConnectorStore, int]:
    owner = f"did:plc:owner{uuid.uuid4().hex[:16]}"
    with session_scope(engine) as session:
        session.add(User(did=owner, handle="owner.test", email=email, timezone=zone))
    store = ConnectorStore(engine, KeyRing.from_settings(settings))
    connector_id = store.upsert(
        owner_did=owner,
        provider="microsoft",
        account="owner@contoso.test",
        secrets={"token_cache": '{"RefreshToken": {"x": {"secret": "0.AAA-refresh-secret"}}}'},
        default_busy=["cal"],
        default_event="cal",
    )
    return store, connector_id


def _notices(engine: Engine) -> list[OutboxMessage]:
    with Session(engine) as session:
        query = select(OutboxMessage).where(OutboxMessage.kind == "calendar_needs_reauth")
        return list(session.exec(query))


def test_the_notice_names_the_calendar_in_the_hosts_zone_and_redacts_the_reason(
    engine: Engine, settings: Settings
) -> None:
    store, connector_id = _connector(engine, settings, email="owner@example.test", zone="America/New_York")
    store.mark_needs_reauth(
        connector_id, "microsoft refused: invalid_grant (refresh_token=0.AAA-refresh-secret)"
    )
    store.mark_needs_reauth(connector_id, "again")  # not a new transition: no second row
    (row,) = _notices(engine)
    assert row.booking_id is None and row.recipient == "owner@example.test"
    envelope = compose(row, MailIdentity.from_settings(settings))
    parsed = Received(envelope.sender, [envelope.recipient], envelope.data).message
    text, html = body(parsed, "plain"), body(parsed, "html")
    for where in (envelope.data.decode(), text, html, str(row.payload)):
        assert "0.AAA-refresh-secret" not in where
    assert "Microsoft calendar (owner@contoso.test)" in text
    assert "(America/New_York, " in text and "invalid_grant" in text
    assert f"https://huddle.test/host/calendars#c-{connector_id}" in text
    assert f'href="https://huddle.test/host/calendars#c-{connector_id}"' in html
    assert parsed["References"] == f"<connector.{connector_id}@huddle.test>"


def test_no_address_no_notice_and_an_unknown_zone_reads_utc(engine: Engine, settings: Settings) -> None:
    store, silent = _connector(engine, settings, email=None, zone=None)
    store.mark_needs_reauth(silent, "invalid_grant")
    assert _notices(engine) == []
    store, told = _connector(engine, settings, email="owner@example.test", zone="Not/AZone")
    store.mark_needs_reauth(told, "invalid_grant")
    (row,) = _notices(engine)
    assert row.payload["recipientTimezone"] == "UTC"


def test_the_sweep_sends_a_notice_at_once_and_skips_one_whose_calendar_was_reconnected(
    engine: Engine, settings: Settings, smtp_server: SmtpPeer
) -> None:
    store, first = _connector(engine, settings, email="first@example.test", zone="Europe/Paris")
    store.mark_needs_reauth(first, "invalid_grant")
    store, second = _connector(engine, settings, email="second@example.test", zone="Europe/Paris")
    store.mark_needs_reauth(second, "invalid_grant")
    # The second owner reconnects before the sweep runs: a "reconnect" mail would now be wrong.
    connector = store.get(second)
    assert connector is not None
    store.upsert(
        owner_did=connector.owner_did,
        provider="microsoft",
        account=connector.account,
        secrets={"token_cache": "{}"},
        default_busy=[],
        default_event=None,
    )

    sender = sender_from_settings(engine, settings)
    week = timedelta(days=7)
    report = sender.send_due(retry_after=week, give_up_after=week * 2, limit=50)
    assert (report.sent, report.skipped) == (1, 1)
    assert [r.rcpt_tos for r in smtp_server.received] == [["first@example.test"]]
    states = {r.recipient: (r.state, r.last_error) for r in _notices(engine)}
    assert states == {
        "first@example.test": ("sent", None),
        "second@example.test": ("skipped", "not sent: the calendar was reconnected"),
    }
    assert sender.send_due(retry_after=week, give_up_after=week * 2, limit=50).sent == 0
