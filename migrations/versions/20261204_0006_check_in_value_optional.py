"""check-in value optional: on a key result fed by mappings a check-in carries a note only

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("check_ins", schema=None) as batch_op:
        batch_op.alter_column("value", existing_type=sa.Double(), nullable=True)


def downgrade() -> None:
    # The older schema can't hold a check-in without a value; inventing one would put a figure
    # nobody typed into the history, so the downgrade stops and says why instead.
    without = op.get_bind().scalar(sa.text("SELECT count(*) FROM check_ins WHERE value IS NULL"))
    if without:
        raise RuntimeError(
            f"{without} check-in(s) carry no value, which revision 0005 can't hold: "
            "delete them (or give them a value) before downgrading"
        )
    with op.batch_alter_table("check_ins", schema=None) as batch_op:
        batch_op.alter_column("value", existing_type=sa.Double(), nullable=False)
