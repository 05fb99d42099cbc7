"""closing a cycle: closed_at, frozen figures and final scores

Revision ID: 0014_close
Revises: 0013_events
Create Date: 2026-12-04 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014_close"
down_revision: str | None = "0013_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("cycles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("objectives", schema=None) as batch_op:
        batch_op.add_column(sa.Column("frozen_progress", JSON, nullable=True))
    with op.batch_alter_table("key_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("final_score", sa.Double(), nullable=True))
        batch_op.add_column(
            sa.Column("final_score_note", sa.Text(), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("frozen_progress", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("key_results", schema=None) as batch_op:
        batch_op.drop_column("frozen_progress")
        batch_op.drop_column("final_score_note")
        batch_op.drop_column("final_score")
    with op.batch_alter_table("objectives", schema=None) as batch_op:
        batch_op.drop_column("frozen_progress")
    with op.batch_alter_table("cycles", schema=None) as batch_op:
        batch_op.drop_column("closed_at")
