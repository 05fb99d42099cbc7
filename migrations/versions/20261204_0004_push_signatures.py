"""push signatures: a signed push is accepted once; a replay within its 5 minutes is refused

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 13:48:43
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "push_signatures",
        sa.Column("data_source_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["data_source_id"],
            ["data_sources.id"],
            name=op.f("fk_push_signatures_data_source_id_data_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("data_source_id", "digest", name=op.f("pk_push_signatures")),
    )
    with op.batch_alter_table("push_signatures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_push_signatures_signed_at"), ["signed_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("push_signatures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_push_signatures_signed_at"))
    op.drop_table("push_signatures")
