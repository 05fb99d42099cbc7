"""Idempotent writes of fetched figures: re-syncing a day replaces it, never duplicates it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.models import Observation, months


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
        months.mark_mappings(session, ids)
        session.execute(
            delete(Observation).where(Observation.mapping_id.in_(ids)),
            execution_options=months.MARKED,
        )


def clear_window(session: Session, mapping_ids: Iterable[int], start: date, end: date) -> None:
    """Days the platform answered completely: what it no longer gives must not linger.

    Runs in the run's transaction before the upsert, so a failed run clears nothing.
    """
    ids = list(mapping_ids)
    if ids:
        months.mark_mappings(session, ids, start, end)
        session.execute(
            delete(Observation).where(
                Observation.mapping_id.in_(ids), Observation.date.between(start, end)
            ),
            execution_options=months.MARKED,
        )


def upsert(session: Session, rows: Sequence[Row], sync_run_id: int) -> int:
    """ON CONFLICT on (mapping, group, role, date), on PostgreSQL and SQLite alike."""
    if not rows:
        return 0
    # The last figure for a day wins when a connector repeats one within a fetch.
    unique = {(r.mapping_id, r.group, r.role, r.date): r for r in rows}
    now = utcnow()
    values = [
        {
            "key_result_id": r.key_result_id,
            "mapping_id": r.mapping_id,
            "group": r.group,
            "role": r.role,
            "date": r.date,
            "value": r.value,
            "sync_run_id": sync_run_id,
            "recorded_at": now,
        }
        for r in unique.values()
    ]
    spans: dict[int, tuple[date, date]] = {}
    for r in unique.values():
        lo, hi = spans.get(r.key_result_id, (r.date, r.date))
        spans[r.key_result_id] = (min(lo, r.date), max(hi, r.date))
    for kr_id, (lo, hi) in spans.items():
        months.mark(session, [kr_id], lo, hi)
    # On the session's connection, in its transaction, but not through the ORM's bulk insert:
    # that one walks every row's attributes in Python before the driver sees them. The months
    # are marked above, which is all the ORM hook (`months.MARKED`) would check.
    connection = session.connection()
    connection.execute(_upsert_statement(connection.dialect.name), values)
    return len(values)


@lru_cache(maxsize=2)
def _upsert_statement(dialect: str) -> Any:
    """One statement, compiled once and run as executemany: SQLAlchemy batches the rows
    (insertmanyvalues) instead of compiling a fresh VALUES list for every chunk."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(Observation)
    return stmt.on_conflict_do_update(
        index_elements=["mapping_id", "group", "role", "date"],
        set_={
            "value": stmt.excluded.value,
            "sync_run_id": stmt.excluded.sync_run_id,
            "key_result_id": stmt.excluded.key_result_id,
            "recorded_at": stmt.excluded.recorded_at,
        },
    )
