"""network index: repos kept in sync with the firehose, refused offer records

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "index_repos",
        sa.Column("did", sa.String(length=2048), nullable=False),
        sa.Column("rev", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fetch_error", sa.String(length=1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("did"),
    )
    op.create_table(
        "offer_rejections",
        sa.Column("uri", sa.String(length=2048), nullable=False),
        sa.Column("cid", sa.String(length=256), nullable=False),
        sa.Column("did", sa.String(length=2048), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("message", sa.String(length=1000), nullable=False),
        sa.Column("rev", sa.String(length=64), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("uri", "cid"),
    )
    with op.batch_alter_table("offer_rejections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_offer_rejections_did"), ["did"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("offer_rejections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_offer_rejections_did"))
    op.drop_table("offer_rejections")
    op.drop_table("index_repos")
