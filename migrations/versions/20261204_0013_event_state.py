"""events: what was last announced per key result and source, and the weekly digests sent

Revision ID: 0013_events
Revises: 0012_retro
Create Date: 2026-12-04 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_events"
down_revision: str | None = "0012_retro"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "key_result_event_states",
        sa.Column("key_result_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("previous_status", sa.String(length=16), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_result_id"],
            ["key_results.id"],
            name=op.f("fk_key_result_event_states_key_result_id_key_results"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_result_id", name=op.f("pk_key_result_event_states")),
    )
    op.create_table(
        "source_event_states",
        sa.Column("data_source_id", sa.Integer(), nullable=False),
        sa.Column("sunset_version", sa.String(length=100), nullable=True),
        sa.Column("reauth_for", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["data_source_id"],
            ["data_sources.id"],
            name=op.f("fk_source_event_states_data_source_id_data_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("data_source_id", name=op.f("pk_source_event_states")),
    )
    op.create_table(
        "digests_sent",
        sa.Column("week", sa.String(length=10), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("week", name=op.f("pk_digests_sent")),
    )


def downgrade() -> None:
    op.drop_table("digests_sent")
    op.drop_table("source_event_states")
    op.drop_table("key_result_event_states")
