"""Apply the Alembic migration chain (used by `huddle migrate`, `huddle dev` and the tests)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from models.settings import REPO_ROOT


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    # ConfigParser interpolation would eat a '%' in a password.
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def migrate(database_url: str, revision: str = "heads") -> None:
    """Bring the database at `database_url` up to `revision` (default: every branch head).

    Areas of the schema grow as separate branches off a common base, so `heads`, not `head`.
    """
    command.upgrade(alembic_config(database_url), revision)
