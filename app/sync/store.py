"""Idempotent writes of fetched figures: re-syncing a day replaces it, never duplicates it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import Date, Double, Integer, String, bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from app.core.clock import utcnow
from app.models import Observation, months
from app.models.base import UTCDateTime


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
    unique = list({(r.mapping_id, r.group, r.role, r.date): r for r in rows}.values())
    now = utcnow()
    spans: dict[int, tuple[date, date]] = {}
    for r in unique:
        lo, hi = spans.get(r.key_result_id, (r.date, r.date))
        spans[r.key_result_id] = (min(lo, r.date), max(hi, r.date))
    for kr_id, (lo, hi) in spans.items():
        months.mark(session, [kr_id], lo, hi)
    # On the session's connection, in its transaction, but not through the ORM's bulk insert:
    # that one walks every row's attributes in Python before the driver sees them. The months
    # are marked above, which is all the ORM hook (`months.MARKED`) would check.
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        columns = {name: [getattr(r, name) for r in unique] for name in _COLUMNS}
        connection.execute(
            _unnest_upsert(), {**columns, "sync_run_id": sync_run_id, "recorded_at": now}
        )
    else:
        shared = {"sync_run_id": sync_run_id, "recorded_at": now}
        values = [{name: getattr(r, name) for name in _COLUMNS} | shared for r in unique]
        connection.execute(_sqlite_upsert(), values)
    return len(unique)


#: The columns of a row that differ from row to row (the run and the time are the same for all).
_COLUMNS: dict[str, TypeEngine[Any]] = {
    "key_result_id": Integer(),
    "mapping_id": Integer(),
    "group": String(),
    "role": String(),
    "date": Date(),
    "value": Double(),
}


def _on_conflict(stmt: Any) -> Any:
    """The day's figure replaced: (mapping, group, role, date) is the unique key."""
    return stmt.on_conflict_do_update(
        index_elements=["mapping_id", "group", "role", "date"],
        set_={
            "value": stmt.excluded.value,
            "sync_run_id": stmt.excluded.sync_run_id,
            "key_result_id": stmt.excluded.key_result_id,
            "recorded_at": stmt.excluded.recorded_at,
        },
    )


@lru_cache(maxsize=1)
def _sqlite_upsert() -> Any:
    """SQLite: one statement, compiled once and run as executemany."""
    return _on_conflict(sqlite_insert(Observation))


@lru_cache(maxsize=1)
def _unnest_upsert() -> Any:
    """PostgreSQL: every row in one statement, a column an array (``unnest``). Run as
    executemany, the driver dumped, sent and awaited each of a run's ~250 rows on its own,
    about 20 us of CPU a row; the rows are unique on the conflict key, so one statement
    decides each of them as its own would have."""
    rows = (
        func.unnest(*(bindparam(name, type_=ARRAY(kind)) for name, kind in _COLUMNS.items()))
        .table_valued(*_COLUMNS)
        .render_derived()
    )
    source = select(
        *rows.c,
        bindparam("sync_run_id", type_=Integer()),
        bindparam("recorded_at", type_=UTCDateTime()),
    )
    return _on_conflict(
        pg_insert(Observation).from_select([*_COLUMNS, "sync_run_id", "recorded_at"], source)
    )
