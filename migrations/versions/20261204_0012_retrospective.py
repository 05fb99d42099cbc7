"""closing a cycle: retrospective entries, carried-over objectives and key results

Revision ID: 0012_retro
Revises: 0011_notify
Create Date: 2026-12-04 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_retro"
down_revision: str | None = "0011_notify"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retrospective_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.Column("objective_id", sa.Integer(), nullable=True),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cycle_id"],
            ["cycles.id"],
            name=op.f("fk_retrospective_entries_cycle_id_cycles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["objective_id"],
            ["objectives.id"],
            name=op.f("fk_retrospective_entries_objective_id_objectives"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrospective_entries")),
    )
    with op.batch_alter_table("retrospective_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_retrospective_entries_cycle_id"), ["cycle_id"])
        batch_op.create_index(batch_op.f("ix_retrospective_entries_objective_id"), ["objective_id"])
    with op.batch_alter_table("objectives", schema=None) as batch_op:
        batch_op.add_column(sa.Column("carried_from_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_objectives_carried_from_id"), ["carried_from_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_objectives_carried_from_id_objectives"),
            "objectives",
            ["carried_from_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("key_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("carried_from_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_key_results_carried_from_id"), ["carried_from_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_key_results_carried_from_id_key_results"),
            "key_results",
            ["carried_from_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("key_results", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_key_results_carried_from_id_key_results"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_key_results_carried_from_id"))
        batch_op.drop_column("carried_from_id")
    with op.batch_alter_table("objectives", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_objectives_carried_from_id_objectives"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_objectives_carried_from_id"))
        batch_op.drop_column("carried_from_id")
    with op.batch_alter_table("retrospective_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retrospective_entries_objective_id"))
        batch_op.drop_index(batch_op.f("ix_retrospective_entries_cycle_id"))
    op.drop_table("retrospective_entries")
