"""Idempotent writes of fetched figures: re-syncing a day replaces it, never duplicates it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.models import Observation
from app.sync.clock import utcnow

#: Rows per INSERT statement: large enough to be fast, small enough for SQLite's bind limit.
CHUNK = 500


@dataclass(frozen=True)
class Row:
    key_result_id: int
    mapping_id: int
    group: str
    role: str
    date: date
    value: float


def replace_history(session: Session, mapping_ids: Iterable[int]) -> None:
    """A changed mapping measures something else now: its old figures must not linger."""
    ids = list(mapping_ids)
    if ids:
        session.execute(delete(Observation).where(Observation.mapping_id.in_(ids)))


def upsert(session: Session, rows: Sequence[Row], sync_run_id: int) -> int:
    """ON CONFLICT on (mapping, group, role, date), on PostgreSQL and SQLite alike."""
    if not rows:
        return 0
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # The last figure for a day wins when a connector repeats one within a fetch.
    unique = {(r.mapping_id, r.group, r.role, r.date): r for r in rows}
    values = [
        {
            "key_result_id": r.key_result_id,
            "mapping_id": r.mapping_id,
            "group": r.group,
            "role": r.role,
            "date": r.date,
            "value": r.value,
            "sync_run_id": sync_run_id,
        }
        for r in unique.values()
    ]
    for start in range(0, len(values), CHUNK):
        stmt = insert(Observation).values(values[start : start + CHUNK])
        stmt = stmt.on_conflict_do_update(
            index_elements=["mapping_id", "group", "role", "date"],
            set_={
                "value": stmt.excluded.value,
                "sync_run_id": stmt.excluded.sync_run_id,
                "key_result_id": stmt.excluded.key_result_id,
                "recorded_at": utcnow(),
            },
        )
        session.execute(stmt)
    return len(values)
