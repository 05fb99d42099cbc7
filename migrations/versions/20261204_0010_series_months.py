"""series months: each series' daily values reduced per calendar month, for uncached reads

Revision ID: 0010_months
Revises: 0009_health
Create Date: 2026-12-04 17:10:00

The rows are derived from `observations` and filled here for what is already stored; from now
on every write rewrites the months it touches (`app.models.months`). The backfill is written
out in SQL, not imported from the app, so that it stays what it was when this ran.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_months"
down_revision: str | None = "0009_health"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Readable figures only (`app.core.values.readable`: |value| <= 1e15), several rows of one day
#: summed with their mapping's scale; moments from the month's first day.
_SERIES = """
INSERT INTO series_months (key_result_id, "group", role, month, n, total, minimum, maximum,
                           last_date, last_value, sx, sxy, sxx)
SELECT kr, g, r, m, count(*), sum(v), min(v), max(v), max(d), max(lv), sum(x), sum(x * v),
       sum(x * x)
FROM (
    SELECT kr, g, r, d, m, v, {day} - 1 AS x,
           first_value(v) OVER (PARTITION BY kr, g, r, m ORDER BY d DESC) AS lv
    FROM (
        SELECT o.key_result_id AS kr, o."group" AS g, o.role AS r, o.date AS d,
               {month} AS m, sum(o.value * coalesce(mp.scale, 1.0)) AS v
        FROM observations AS o LEFT OUTER JOIN mappings AS mp ON mp.id = o.mapping_id
        WHERE abs(o.value) <= 1e15
        GROUP BY o.key_result_id, o."group", o.role, o.date
    ) AS daily
) AS ranked
GROUP BY kr, g, r, m
"""
_DAYS = """
INSERT INTO key_result_months (key_result_id, month, days)
SELECT kr, m, count(DISTINCT d)
FROM (SELECT o.key_result_id AS kr, o.date AS d, {month} AS m FROM observations AS o) AS days_of
GROUP BY kr, m
"""
_DIALECT = {
    "postgresql": {
        "month": "CAST(date_trunc('month', CAST(o.date AS TIMESTAMP WITHOUT TIME ZONE)) AS DATE)",
        "day": "CAST(EXTRACT(day FROM d) AS INTEGER)",
    },
    "sqlite": {
        "month": "date(o.date, 'start of month')",
        "day": "CAST(strftime('%d', d) AS INTEGER)",
    },
}


def upgrade() -> None:
    op.create_table(
        "series_months",
        sa.Column("key_result_id", sa.Integer(), nullable=False),
        sa.Column("group", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("total", sa.Double(), nullable=False),
        sa.Column("minimum", sa.Double(), nullable=False),
        sa.Column("maximum", sa.Double(), nullable=False),
        sa.Column("last_date", sa.Date(), nullable=False),
        sa.Column("last_value", sa.Double(), nullable=False),
        sa.Column("sx", sa.Double(), nullable=False),
        sa.Column("sxy", sa.Double(), nullable=False),
        sa.Column("sxx", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_result_id"],
            ["key_results.id"],
            name=op.f("fk_series_months_key_result_id_key_results"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "key_result_id", "group", "role", "month", name=op.f("pk_series_months")
        ),
    )
    op.create_table(
        "key_result_months",
        sa.Column("key_result_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_result_id"],
            ["key_results.id"],
            name=op.f("fk_key_result_months_key_result_id_key_results"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_result_id", "month", name=op.f("pk_key_result_months")),
    )
    parts = _DIALECT.get(op.get_bind().dialect.name, _DIALECT["sqlite"])
    op.execute(_SERIES.format(**parts))
    op.execute(_DAYS.format(**parts))


def downgrade() -> None:
    op.drop_table("key_result_months")
    op.drop_table("series_months")
