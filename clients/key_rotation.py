"""`huddle rotate-keys`: re-encrypt every stored secret with the first key of HUDDLE_TOKEN_KEYS.

Each value is replaced only if it is still the one that was read (compare-and-set), so a token
refreshed meanwhile is never overwritten by the re-encrypted old one. Running it twice is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select, update

from clients.secrets import KeyRing, SecretUnreadable
from models.calendar_tables import CalendarOAuthState
from models.db import session_scope
from models.tables import CalendarConnector, OAuthSession

# Every encrypted column, by table. New tables with secrets add themselves here.
ENCRYPTED_COLUMNS: list[tuple[Any, tuple[str, ...]]] = [
    (CalendarConnector, ("access_token_enc", "refresh_token_enc", "token_cache_enc", "password_enc")),
    (CalendarOAuthState, ("flow_enc",)),
    (OAuthSession, ("dpop_key_enc", "access_token_enc", "refresh_token_enc")),
]


@dataclass
class RotationReport:
    rotated: dict[str, int] = field(default_factory=dict)
    current: int = 0
    unreadable: list[str] = field(default_factory=list)


def rotate_stored_secrets(engine: Engine, ring: KeyRing, batch: int = 500) -> RotationReport:
    report = RotationReport()
    for model, columns in ENCRYPTED_COLUMNS:
        table = model.__table__
        key = next(iter(table.primary_key.columns))
        name = table.name
        report.rotated.setdefault(name, 0)
        last: Any = None
        while True:
            query = select(key, *(table.c[c] for c in columns)).order_by(key).limit(batch)
            if last is not None:
                query = query.where(key > last)
            with engine.connect() as conn:
                rows = list(conn.execute(query))
            if not rows:
                break
            last = rows[-1][0]
            for row in rows:
                for column, value in zip(columns, row[1:], strict=True):
                    if value is None:
                        continue
                    if ring.is_current(value):
                        report.current += 1
                        continue
                    try:
                        fresh = ring.rotate(value)
                    except SecretUnreadable:
                        report.unreadable.append(f"{name}.{column} of {row[0]}")
                        continue
                    with session_scope(engine) as session:
                        result = session.execute(
                            update(table)
                            .where(key == row[0], table.c[column] == value)
                            .values({column: fresh})
                        )
                    report.rotated[name] += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return report
