"""The monthly reductions of every series (`SeriesMonth`, `KeyResultMonth`), kept exact by writes.

An uncached read adds up a series' full months from these rows and reads raw days only for
the parts of its windows that cover a month in part (`app.okr.progress_service`). For that to
be exact, every write that can move a day's value rewrites the months it touched, in its own
transaction. A write *marks* the key results and days it touched; the marks become rewritten
rows when the session commits, or earlier when a progress read in the same transaction asks
(`refresh`). Marks come from three places, so that no write path can be forgotten:

- the write paths that know what they touch (the sync store, check-ins, deletes of mappings and
  sources) mark it themselves and run their statements with `MARKED`;
- a flush hook marks ORM objects: an `Observation` added, changed or deleted, a mapping whose
  scale changed or that is deleted, the mappings of a deleted source;
- any other statement that writes observations, mappings or sources marks everything, and the
  commit rebuilds every row: slow, never wrong.

Deleting a key result (or its objective or cycle) takes its rows along by foreign key.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Date,
    DateTime,
    Integer,
    Select,
    Subquery,
    and_,
    bindparam,
    cast,
    delete,
    event,
    extract,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction, attributes

from app.core.db import among_bound
from app.core.values import readable
from app.models.okr import KeyResult, KeyResultMonth, Observation, SeriesMonth
from app.models.sources import DataSource, Mapping

#: Execution options of a statement whose write path marked what it touches itself.
MARKED: dict[str, Any] = {"krsync_months_marked": True}
_MARKED_KEY = "krsync_months_marked"
_DIRTY = "krsync_dirty_months"
_EVERYTHING = "everything"
#: Tables whose writes can move a series' daily values.
_WATCHED = frozenset({"observations", "mappings", "data_sources"})

#: key result -> (first day, last day) touched; None for an open end (every month).
Span = tuple[date | None, date | None]


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def mark(
    session: Session, kr_ids: Iterable[int], start: date | None = None, end: date | None = None
) -> None:
    """The months of these key results between `start` and `end` (all, when open) may move."""
    dirty = session.info.get(_DIRTY)
    if dirty == _EVERYTHING:
        return
    if dirty is None:
        dirty = session.info[_DIRTY] = {}
    for kr_id in kr_ids:
        known = dirty.get(kr_id)
        if known is None:
            dirty[kr_id] = (start, end)
            continue
        lo, hi = known
        dirty[kr_id] = (
            None if lo is None or start is None else min(lo, start),
            None if hi is None or end is None else max(hi, end),
        )


def mark_mappings(
    session: Session,
    mapping_ids: Iterable[int],
    start: date | None = None,
    end: date | None = None,
) -> None:
    """Marks the key results these mappings feed; call it before the mappings go."""
    ids = list(mapping_ids)
    if ids:
        with session.no_autoflush:
            krs = session.scalars(
                select(Mapping.key_result_id).where(Mapping.id.in_(ids)).distinct()
            ).all()
        mark(session, krs, start, end)


def mark_source(session: Session, source_id: int) -> None:
    """Marks what a source's mappings feed; call it before the source goes."""
    with session.no_autoflush:
        krs = session.scalars(
            select(Mapping.key_result_id).where(Mapping.data_source_id == source_id).distinct()
        ).all()
    mark(session, krs)


def mark_everything(session: Session) -> None:
    session.info[_DIRTY] = _EVERYTHING


def refresh(session: Session) -> None:
    """Rewrites the marked months from `observations`: four statements (and a lock on
    PostgreSQL), however many marks."""
    session.flush()  # pending ORM objects mark what they touch as they flush
    dirty = session.info.pop(_DIRTY, None)
    if not dirty:
        return
    dialect = session.get_bind().dialect.name
    if dirty == _EVERYTHING:
        if dialect == "postgresql":
            session.execute(_lock(dialect, everything=True))
        for stmt in statements(dialect, None):
            session.execute(stmt)
        return
    conn = session.connection()  # the months' tables, which no flush hook watches
    if dialect == "postgresql":
        conn.execute(_lock(dialect, everything=False), {"ids": sorted(dirty)})
    by_span: dict[Span, list[int]] = defaultdict(list)
    for kr_id, (lo, hi) in dirty.items():
        by_span[(lo and month_start(lo), hi and month_end(hi))].append(kr_id)
    spans = sorted(by_span.items(), key=lambda item: item[1])
    values: dict[str, Any] = {}
    for index, ((lo, hi), ids) in enumerate(spans):
        values[f"ids_{index}"] = ids
        if lo is not None:
            values[f"lo_{index}"] = lo
        if hi is not None:
            values[f"hi_{index}"] = hi
    shape = tuple((lo is not None, hi is not None) for (lo, hi), _ in spans)
    for stmt in statements(dialect, shape):
        conn.execute(stmt, values)


@functools.cache
def _lock(dialect: str, *, everything: bool) -> Select[Any]:
    """Two writers of one key result's months (two sources feeding it commit at once) take
    turns here: the second then deletes what the first inserted and reduces the figures both
    wrote, where it would otherwise collide with the first's rows. NO KEY UPDATE, so inserts of
    observations (their foreign key checks take KEY SHARE) don't wait; taken in id order, so
    two writers can't deadlock on each other. The ids are bound at execution (``ids``)."""
    lock = select(KeyResult.id).order_by(KeyResult.id).with_for_update(key_share=True)
    return lock if everything else lock.where(among_bound(dialect, KeyResult.id, "ids"))


def rebuild(conn: Connection) -> None:
    """Every row anew, for writes made outside a Session (bulk loads)."""
    for stmt in statements(conn.dialect.name, None):
        conn.execute(stmt)


def daily_sums(condition: Any, *extra: Any) -> Subquery:
    """One row a key result, group, role and day: the day's scaled values added up (`v`).

    The months written here and the raw days a progress read adds to them must sum a day the
    same way, or a window's total would depend on which side of a month edge it was read from.
    """
    o = Observation
    return (
        select(
            o.key_result_id.label("kr"),
            o.group.label("g"),
            o.role.label("r"),
            o.date.label("d"),
            *extra,
            func.sum(o.value * func.coalesce(Mapping.scale, 1.0)).label("v"),
        )
        .select_from(o)
        .outerjoin(Mapping, Mapping.id == o.mapping_id)
        .where(condition, readable(o.value))
        .group_by(o.key_result_id, o.group, o.role, o.date)
        .subquery("daily")
    )


@functools.lru_cache(maxsize=128)
def statements(dialect: str, shape: tuple[tuple[bool, bool], ...] | None) -> tuple[Any, ...]:
    """Delete the marked months, then insert them again from their observations.

    ``shape`` has one (has a first day, has a last day) per span of marked months, whose key
    results, first and last day are bound at execution as ``ids_N``, ``lo_N``, ``hi_N``; None
    rewrites every month. Built once per shape: building these four statements and their
    cache keys cost a sync's commit about as much as running them.
    """

    def where(kr_col: Any, day_col: Any) -> Any:
        if shape is None:
            return true()
        return or_(
            *(
                and_(
                    among_bound(dialect, kr_col, f"ids_{index}"),
                    *([day_col >= bindparam(f"lo_{index}", type_=Date())] if lo else []),
                    *([day_col <= bindparam(f"hi_{index}", type_=Date())] if hi else []),
                )
                for index, (lo, hi) in enumerate(shape)
            )
        )

    o = Observation
    month = _month_of(dialect, o.date)
    daily = daily_sums(where(o.key_result_id, o.date), month.label("m"))
    ranked = select(
        daily,
        (cast(extract("day", daily.c.d), Integer) - 1).label("x"),
        func.first_value(daily.c.v)
        .over(
            partition_by=(daily.c.kr, daily.c.g, daily.c.r, daily.c.m),
            order_by=daily.c.d.desc(),
        )
        .label("lv"),
    ).subquery("ranked")
    x, v = ranked.c.x, ranked.c.v
    series: Select[Any] = select(
        ranked.c.kr,
        ranked.c.g,
        ranked.c.r,
        ranked.c.m,
        func.count(),
        func.sum(v),
        func.min(v),
        func.max(v),
        func.max(ranked.c.d),
        func.max(ranked.c.lv),
        func.sum(x),
        func.sum(x * v),
        func.sum(x * x),
    ).group_by(ranked.c.kr, ranked.c.g, ranked.c.r, ranked.c.m)
    days_of = (
        select(o.key_result_id.label("kr"), o.date.label("d"), month.label("m"))
        .where(where(o.key_result_id, o.date))
        .subquery("days_of")
    )
    days: Select[Any] = select(
        days_of.c.kr, days_of.c.m, func.count(func.distinct(days_of.c.d))
    ).group_by(days_of.c.kr, days_of.c.m)
    sm, km = SeriesMonth, KeyResultMonth
    return (
        delete(sm).where(where(sm.key_result_id, sm.month)),
        delete(km).where(where(km.key_result_id, km.month)),
        insert(sm).from_select(
            [
                "key_result_id",
                "group",
                "role",
                "month",
                "n",
                "total",
                "minimum",
                "maximum",
                "last_date",
                "last_value",
                "sx",
                "sxy",
                "sxx",
            ],
            series,
        ),
        insert(km).from_select(["key_result_id", "month", "days"], days),
    )


def _month_of(dialect: str, day: Any) -> Any:
    # Literals, not bind parameters, so PostgreSQL sees the same expression wherever it is used.
    if dialect == "postgresql":
        return cast(func.date_trunc(literal_column("'month'"), cast(day, DateTime)), Date)
    return func.date(day, literal_column("'start of month'"))


# --- hooks -----------------------------------------------------------------------------------


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _ctx: UOWTransaction, _instances: object) -> None:
    for obj in session.new:
        if isinstance(obj, Observation) and obj.key_result_id is not None and obj.date:
            mark(session, [obj.key_result_id], obj.date, obj.date)
    for obj in session.deleted:
        if isinstance(obj, Observation):
            mark(session, [obj.key_result_id], obj.date, obj.date)
        elif isinstance(obj, Mapping):
            mark(session, [obj.key_result_id])
        elif isinstance(obj, DataSource):
            mark_source(session, obj.id)
    for obj in session.dirty:
        if isinstance(obj, Observation):
            krs = _values(obj, "key_result_id")
            days = _values(obj, "date")
            mark(session, krs, min(days), max(days))
        elif isinstance(obj, Mapping) and (
            _changed(obj, "scale") or _changed(obj, "key_result_id")
        ):
            mark(session, _values(obj, "key_result_id"))


def _values(obj: object, name: str) -> list[Any]:
    """The attribute's value now and, if it changed, before."""
    history = attributes.get_history(obj, name)
    found = [*history.added, *history.unchanged, *history.deleted]
    return [value for value in found if value is not None] or [getattr(obj, name)]


def _changed(obj: object, name: str) -> bool:
    return attributes.get_history(obj, name).has_changes()


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    name = getattr(getattr(state.statement, "table", None), "name", None)
    if name not in _WATCHED or state.execution_options.get(_MARKED_KEY):
        return
    if name != "observations" and (state.is_insert or (state.is_update and name != "mappings")):
        return  # a new mapping or source, or a source's settings: no figure moves
    mark_everything(state.session)


# First of the commit hooks (`insert`): its lock on the key results must come before the bump
# of the progress revision (`app.models.revision`), a row every writer updates, or two writers
# of one key result would each hold what the other waits for.
@event.listens_for(Session, "before_commit", insert=True)
def _before_commit(session: Session) -> None:
    refresh(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_DIRTY, None)
