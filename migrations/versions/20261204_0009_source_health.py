"""source health: failures in a row, last attempt, auth refusals, pause, credentials' end

Revision ID: 0009_health
Revises: 0008
Create Date: 2026-12-04 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_health"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    "consecutive_failures",
    "last_attempt_at",
    "last_run_status",
    "last_run_warned",
    "auth_error",
    "paused_at",
    "credentials_expire_at",
)


def upgrade() -> None:
    with op.batch_alter_table("data_sources", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("last_attempt_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("last_run_status", sa.String(length=16)))
        batch_op.add_column(
            sa.Column("last_run_warned", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("auth_error", sa.Text()))
        batch_op.add_column(sa.Column("paused_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("credentials_expire_at", sa.DateTime(timezone=True)))
    _from_run_history()


def _from_run_history() -> None:
    """Sources that already ran start with the health their history gives, not as new ones.

    The last finished run gives the status, its warnings and the last attempt; the failed runs
    since the last one that was not failed give the count. Nobody is paused by the history:
    pausing is the scheduler's decision, made from now on.
    """
    bind = op.get_bind()
    runs = sa.table(
        "sync_runs",
        sa.column("id", sa.Integer()),
        sa.column("data_source_id", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("finished_at", sa.DateTime(timezone=True)),
        sa.column("warnings", sa.JSON()),
    )
    sources = sa.table(
        "data_sources",
        sa.column("id", sa.Integer()),
        sa.column("consecutive_failures", sa.Integer()),
        sa.column("last_attempt_at", sa.DateTime(timezone=True)),
        sa.column("last_run_status", sa.String()),
        sa.column("last_run_warned", sa.Boolean()),
    )
    rows = bind.execute(
        sa.select(runs.c.data_source_id, runs.c.status, runs.c.finished_at, runs.c.warnings)
        .where(runs.c.status != "running", runs.c.finished_at.is_not(None))
        .order_by(runs.c.data_source_id, runs.c.id.desc())
    ).all()
    seen: dict[int, dict[str, object]] = {}
    failures: dict[int, int] = {}
    counting: set[int] = set()
    for source_id, status, finished_at, warnings in rows:
        if source_id not in seen:
            seen[source_id] = {
                "last_attempt_at": finished_at,
                "last_run_status": status,
                "last_run_warned": bool(warnings),
            }
            failures[source_id] = 0
            counting.add(source_id)
        if source_id in counting:
            if status == "failed":
                failures[source_id] += 1
            else:
                counting.discard(source_id)
    for source_id, values in seen.items():
        bind.execute(
            sa.update(sources)
            .where(sources.c.id == source_id)
            .values(**values, consecutive_failures=failures[source_id])
        )


def downgrade() -> None:
    with op.batch_alter_table("data_sources", schema=None) as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
