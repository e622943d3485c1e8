"""calendar connectors: busy cache, events for bookings, webhook channels, sync state, connect flows

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-25

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "calendar_busy_cache",
        sa.Column("connector_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("range_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("range_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("busy", sa.JSON(), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("connector_id"),
    )

    op.create_table(
        "calendar_channels",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("calendar_id", sa.String(length=1024), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("calendar_channels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calendar_channels_connector_id"), ["connector_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calendar_channels_external_id"), ["external_id"], unique=False)

    op.create_table(
        "calendar_connector_details",
        sa.Column("connector_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("scopes", sa.String(length=2000), nullable=False),
        sa.Column("account_kind", sa.String(length=16), nullable=False),
        sa.Column("calendars", sa.JSON(), nullable=False),
        sa.Column("calendars_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("connector_id"),
    )

    op.create_table(
        "calendar_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.String(length=64), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("calendar_id", sa.String(length=1024), nullable=False),
        sa.Column("event_key", sa.String(length=255), nullable=False),
        sa.Column("provider_event_id", sa.String(length=1024), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("booking_id", "connector_id", name="uq_calendar_events_booking"),
    )
    with op.batch_alter_table("calendar_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calendar_events_booking_id"), ["booking_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calendar_events_connector_id"), ["connector_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calendar_events_state"), ["state"], unique=False)

    op.create_table(
        "calendar_oauth_states",
        sa.Column("state_digest", sa.String(length=64), nullable=False),
        sa.Column("owner_did", sa.String(length=2048), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=True),
        sa.Column("flow_enc", sa.Text(), nullable=False),
        sa.Column("return_to", sa.String(length=2048), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("state_digest"),
    )
    with op.batch_alter_table("calendar_oauth_states", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calendar_oauth_states_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "calendar_sync_state",
        sa.Column("connector_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("calendar_id", sa.String(length=1024), nullable=False),
        sa.Column("sync_token", sa.Text(), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("connector_id", "calendar_id"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("calendar_sync_state")
    with op.batch_alter_table("calendar_oauth_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calendar_oauth_states_expires_at"))
    op.drop_table("calendar_oauth_states")
    with op.batch_alter_table("calendar_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calendar_events_state"))
        batch_op.drop_index(batch_op.f("ix_calendar_events_connector_id"))
        batch_op.drop_index(batch_op.f("ix_calendar_events_booking_id"))
    op.drop_table("calendar_events")
    op.drop_table("calendar_connector_details")
    with op.batch_alter_table("calendar_channels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calendar_channels_external_id"))
        batch_op.drop_index(batch_op.f("ix_calendar_channels_connector_id"))
    op.drop_table("calendar_channels")
    op.drop_table("calendar_busy_cache")
