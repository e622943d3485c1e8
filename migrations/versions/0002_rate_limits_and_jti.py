"""service-auth jti replay guard and rate-limit buckets

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "service_auth_jtis",
        sa.Column("iss", sa.String(length=2048), nullable=False),
        sa.Column("jti", sa.String(length=256), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("iss", "jti"),
    )
    with op.batch_alter_table("service_auth_jtis", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_auth_jtis_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "rate_limit_buckets",
        sa.Column("key", sa.String(length=2100), nullable=False),
        sa.Column("tat", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("rate_limit_buckets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rate_limit_buckets_tat"), ["tat"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("rate_limit_buckets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rate_limit_buckets_tat"))
    op.drop_table("rate_limit_buckets")
    with op.batch_alter_table("service_auth_jtis", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_auth_jtis_expires_at"))
    op.drop_table("service_auth_jtis")
