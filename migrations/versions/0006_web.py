"""web app: ATProto OAuth logins in flight, refresh leases

Revision ID: 0006
Revises: 0002
Create Date: 2026-11-25

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "oauth_login_requests",
        sa.Column("state_digest", sa.String(length=64), nullable=False),
        sa.Column("browser_digest", sa.String(length=64), nullable=False),
        sa.Column("issuer", sa.String(length=2048), nullable=False),
        sa.Column("expected_did", sa.String(length=2048), nullable=True),
        sa.Column("pds_url", sa.String(length=2048), nullable=True),
        sa.Column("secrets_enc", sa.String(), nullable=False),
        sa.Column("return_to", sa.String(length=2048), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("state_digest"),
    )
    with op.batch_alter_table("oauth_login_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oauth_login_requests_expires_at"), ["expires_at"], unique=False)
    op.create_table(
        "oauth_refresh_leases",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_id"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("oauth_refresh_leases")
    with op.batch_alter_table("oauth_login_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_login_requests_expires_at"))
    op.drop_table("oauth_login_requests")
