"""Loads what the progress engine needs with a fixed number of SQL statements.

Observations are reduced in SQL to one `SeriesStats` row per (key result, group, role, window), so a
dashboard of 240 key results reads a few hundred rows, never their tens of thousands of days.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Date,
    Double,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, array_agg
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.expression import Executable

from app.core import clock
from app.core.cron import cron_trigger
from app.core.db import among_bound
from app.core.values import readable
from app.models import (
    Cycle,
    DataSource,
    KeyResult,
    KeyResultMonth,
    Mapping,
    Objective,
    Observation,
    SeriesMonth,
)
from app.models.months import daily_sums, month_end, month_start
from app.models.months import refresh as refresh_months
from app.okr.freeze import frozen_key_result, frozen_objective
from app.progress import (
    Cycle as CycleSpan,
)
from app.progress import (
    KeyResultDef,
    ObjectiveProgress,
    Progress,
    SeriesKey,
    SeriesStats,
    baseline_window,
    compute_progress,
    objective_progress,
    weighted_progress,
    window,
)
from app.sync.settle import first_provisional_day, settle_days


def definition(kr: KeyResult) -> KeyResultDef:
    return KeyResultDef(
        kind=kr.kind,  # type: ignore[arg-type]
        direction=kr.direction,  # type: ignore[arg-type]
        aggregation=kr.aggregation,  # type: ignore[arg-type]
        group_rule=kr.group_rule,  # type: ignore[arg-type]
        start_value=kr.start_value,
        target_value=kr.target_value,
        target_change_pct=kr.target_change_pct,
    )


def span(cycle: Cycle) -> CycleSpan:
    return CycleSpan(start=cycle.start_date, end=cycle.end_date)


@dataclass
class _Loaded:
    current: dict[int, dict[SeriesKey, SeriesStats]] = field(default_factory=dict)
    baseline: dict[int, dict[SeriesKey, SeriesStats]] = field(default_factory=dict)
    days: dict[int, int] = field(default_factory=dict)
    provisional_from: dict[int, date] = field(default_factory=dict)


def _day_number(dialect: str, column: Any) -> ColumnElement[Any]:
    """Days from the cycle's start (bound as ``origin``, and ``origin_iso`` on SQLite)."""
    if dialect == "postgresql":
        return cast(column - bindparam("origin", type_=Date()), Integer)
    return func.julianday(column) - func.julianday(bindparam("origin_iso", type_=String()))


def _split(start: date, end: date) -> tuple[tuple[date, date] | None, list[tuple[date, date]]]:
    """[start, end] as its whole calendar months (first and last month's first days) and the
    stretches of days left over at either end."""
    first = start if start.day == 1 else month_end(start) + timedelta(days=1)
    last_end = end if end == month_end(end) else month_start(end) - timedelta(days=1)
    if first > last_end:
        return None, [(start, end)]
    edges = []
    if start < first:
        edges.append((start, first - timedelta(days=1)))
    if last_end < end:
        edges.append((last_end + timedelta(days=1), end))
    return (first, month_start(last_end)), edges


def _bound(name: str) -> Any:
    return bindparam(name, type_=Date())


@lru_cache(maxsize=256)
def _stats_statements(
    dialect: str,
    has_window: bool,
    has_current: bool,
    shape: tuple[tuple[bool, int], ...],
    firsts: int,
) -> tuple[Select[Any], Executable | None]:
    """The statements of `_load_stats` for windows of this shape, built once: the ids and days
    are bound at execution (``ids_N``, ``m0_N``/``m1_N`` for whole months, ``lo_N_E``/``hi_N_E``
    for the days at either end, ``first_N``/``maps_N`` for provisional days, ``w0``/``w1``, the
    cycle's start as ``origin``). A sync's commit reads its 50 key results' statuses here, and
    building the union and its cache key cost it about as much as running it."""
    o, sm, km = Observation, SeriesMonth, KeyResultMonth
    month_parts: list[ColumnElement[bool]] = []
    day_parts: list[ColumnElement[bool]] = []
    days_months: list[ColumnElement[bool]] = []
    days_edges: list[ColumnElement[bool]] = []
    for index, (has_months, n_edges) in enumerate(shape):
        ids = f"ids_{index}"
        if has_months:
            months = (_bound(f"m0_{index}"), _bound(f"m1_{index}"))
            month_parts.append(
                and_(
                    among_bound(dialect, sm.key_result_id, ids),
                    sm.month >= months[0],
                    sm.month <= months[1],
                )
            )
            if index == 0 and has_window:
                days_months.append(
                    and_(
                        among_bound(dialect, km.key_result_id, ids),
                        km.month >= months[0],
                        km.month <= months[1],
                    )
                )
        for edge in range(n_edges):
            lo, hi = _bound(f"lo_{index}_{edge}"), _bound(f"hi_{index}_{edge}")
            day_parts.append(
                and_(among_bound(dialect, o.key_result_id, ids), o.date >= lo, o.date <= hi)
            )
            if index == 0 and has_window:
                days_edges.append(
                    and_(among_bound(dialect, o.key_result_id, ids), o.date >= lo, o.date <= hi)
                )
    double: Double[float] = Double()
    day = Date()
    parts: list[Select[*tuple[Any, ...]]] = []
    if month_parts:
        off = _day_number(dialect, sm.month)
        parts.append(
            _part(
                sm.key_result_id,
                sm.group,
                sm.role,
                case((sm.month >= _bound("origin"), "c"), else_="b"),
                sm.n,
                sm.total,
                sm.minimum,
                sm.maximum,
                sm.last_date,
                sm.last_value,
                sm.sx + sm.n * off,
                sm.sxy + off * sm.total,
                sm.sxx + 2 * off * sm.sx + sm.n * off * off,
                cast(literal(None), day),
            ).where(or_(*month_parts))
        )
    if day_parts:
        daily = daily_sums(or_(*day_parts))
        x = _day_number(dialect, daily.c.d)
        v = daily.c.v
        parts.append(
            _part(
                daily.c.kr,
                daily.c.g,
                daily.c.r,
                case((daily.c.d >= _bound("origin"), "c"), else_="b"),
                literal(1),
                v,
                v,
                v,
                daily.c.d,
                v,
                x,
                x * v,
                x * x,
                cast(literal(None), day),
            )
        )
    if has_current and firsts:
        # Only where a day may be provisional: no figure of its own, just the day.
        still_moving = or_(
            *(
                and_(
                    o.mapping_id.in_(bindparam(f"maps_{n}", expanding=True)),
                    o.date >= _bound(f"first_{n}"),
                )
                for n in range(firsts)
            )
        )
        zero = literal(0.0)
        parts.append(
            _part(
                o.key_result_id,
                o.group,
                o.role,
                literal("c"),
                literal(0),
                zero,
                cast(literal(None), double),
                cast(literal(None), double),
                cast(literal(None), day),
                cast(literal(None), double),
                zero,
                zero,
                zero,
                o.date,
            ).where(
                among_bound(dialect, o.key_result_id, "ids_0"),
                o.date >= _bound("w0"),
                o.date <= _bound("w1"),
                still_moving,
                readable(o.value),
            )
        )
    days: list[Select[int, int]] = []
    if days_months:
        days.append(
            select(km.key_result_id, func.sum(km.days))
            .where(or_(*days_months))
            .group_by(km.key_result_id)
        )
    if days_edges:
        days.append(
            select(o.key_result_id, func.count(func.distinct(o.date)))
            .where(or_(*days_edges))
            .group_by(o.key_result_id)
        )
    days_stmt = (days[0] if len(days) == 1 else union_all(*days)) if days else None
    return _combine(dialect, parts), days_stmt


def _load_stats(
    session: Session,
    kr_ids: Sequence[int],
    baseline_ids: Sequence[int],
    cycle: CycleSpan,
    as_of: date,
    provisional: dict[int, date],
) -> _Loaded:
    """Two statements per cycle: the per-series reduction, and the days with data.

    The baseline window is read only for key results whose target is relative to it. Each
    window is added up from its whole calendar months, reduced ahead by the writes
    (`SeriesMonth`), and from the raw days of the months it covers in part (as of the middle
    of a month, that month's days so far), one row per series and day. The moments of a month
    are kept from its first day and moved here to the cycle's start; the last value is the one
    of the latest part. The reduction also finds each series' earliest provisional day in W
    (`provisional` gives each mapping's first provisional day), so provisional days cost no
    statement of their own.
    """
    refresh_months(session)  # writes of this transaction that no commit has folded in yet
    loaded = _Loaded()
    w = window(cycle, as_of)
    spans: list[tuple[Sequence[int], tuple[date, date]]] = []
    if w and kr_ids:
        spans.append((kr_ids, w))
    if baseline_ids:
        spans.append((baseline_ids, baseline_window(cycle)))
    if not spans:
        return loaded
    params: dict[str, Any] = {"origin": cycle.start, "origin_iso": cycle.start.isoformat()}
    shape: list[tuple[bool, int]] = []
    for index, (ids, (start, end)) in enumerate(spans):
        months, edges = _split(start, end)
        params[f"ids_{index}"] = list(ids)
        if months is not None:
            params[f"m0_{index}"], params[f"m1_{index}"] = months
        for edge, (lo, hi) in enumerate(edges):
            params[f"lo_{index}_{edge}"], params[f"hi_{index}_{edge}"] = lo, hi
        shape.append((months is not None, len(edges)))
    by_first_day: dict[date, list[int]] = defaultdict(list)
    for mapping_id, first in provisional.items():
        by_first_day[first].append(mapping_id)
    firsts = sorted(by_first_day.items()) if w and kr_ids else []
    for n, (first, ids) in enumerate(firsts):
        params[f"first_{n}"], params[f"maps_{n}"] = first, ids
    if w and kr_ids:
        params["w0"], params["w1"] = w
    stats_stmt, days_stmt = _stats_statements(
        session.get_bind().dialect.name, bool(w), bool(w and kr_ids), tuple(shape), len(firsts)
    )
    rows = session.execute(stats_stmt, params).all()
    for kr, g, r, win_, n, total, mn, mx, last_d, last_v, sx, sxy, sxx, first_p in rows:
        if win_ == "c" and first_p is not None:
            first_day = _as_date(first_p)
            known = loaded.provisional_from.get(kr)
            loaded.provisional_from[kr] = first_day if known is None else min(known, first_day)
        if not n:
            continue
        stats = SeriesStats(
            n=int(n),
            total=float(total),
            minimum=float(mn),
            maximum=float(mx),
            last_date=_as_date(last_d),
            last_value=float(last_v),
            sx=float(sx),
            sy=float(total),
            sxy=float(sxy),
            sxx=float(sxx),
        )
        target = loaded.current if win_ == "c" else loaded.baseline
        target.setdefault(kr, {})[(g, r)] = stats
    if days_stmt is not None:
        for kr, count in session.execute(days_stmt, params):
            loaded.days[kr] = loaded.days.get(kr, 0) + int(count)
    return loaded


_PART = (
    "kr",
    "g",
    "r",
    "win",
    "n",
    "total",
    "mn",
    "mx",
    "last_d",
    "last_v",
    "sx",
    "sxy",
    "sxx",
    "p",
)


def _part(*columns: Any) -> Select[*tuple[Any, ...]]:
    """One part of a window: the columns of `_PART`, named alike in every part."""
    return select(*(c.label(name) for c, name in zip(columns, _PART, strict=True)))


def _combine(dialect: str, parts: Sequence[Select[*tuple[Any, ...]]]) -> Select[Any]:
    """One row per (key result, group, role, window) from the parts of its windows.

    The parts cover days that don't overlap, so the latest part's last value is the series'.
    """
    chunks = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery("chunks")
    c = chunks.c
    if dialect == "postgresql":
        latest = aggregate_order_by(c.last_v, c.last_d.desc().nulls_last())
        return _reduce_parts(c, array_agg(latest)[1])  # type: ignore[no-untyped-call]
    ranked = select(
        chunks,
        func.first_value(c.last_v)
        .over(partition_by=(c.kr, c.g, c.r, c.win), order_by=c.last_d.desc().nulls_last())
        .label("lv"),
    ).subquery("ranked")
    return _reduce_parts(ranked.c, func.max(ranked.c.lv))


def _reduce_parts(c: Any, last_value: ColumnElement[Any]) -> Select[Any]:
    keys = (c.kr, c.g, c.r, c.win)
    return select(
        *keys,
        func.sum(c.n),
        func.sum(c.total),
        func.min(c.mn),
        func.max(c.mx),
        func.max(c.last_d),
        last_value,
        func.sum(c.sx),
        func.sum(c.sxy),
        func.sum(c.sxx),
        func.min(c.p),
    ).group_by(*keys)


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


@lru_cache(maxsize=1024)
def schedule_interval(schedule: str, timezone: str, after: datetime) -> timedelta:
    """The gap between the two firings that follow `after`, read in the source's timezone.

    Measured from the last success rather than from now, so a weekday schedule allows the
    weekend's longer gap instead of calling Monday's figures stale.
    """
    trigger = cron_trigger(schedule, timezone)
    first = trigger.get_next_fire_time(None, after)
    second = trigger.get_next_fire_time(first, first + timedelta(seconds=1)) if first else None
    return (second - first) if first and second else timedelta(days=1)


@dataclass
class _SourceFacts:
    """What the mapped sources say about a set of key results, read in one statement."""

    stale: set[int] = field(default_factory=set)
    #: mapping id -> the first day of it the platform may still restate (SPEC `settle_days`).
    provisional: dict[int, date] = field(default_factory=dict)


@lru_cache
def _facts_of(dialect: str) -> Select[int, int, str, str, str, str, datetime | None, datetime]:
    """What `_source_facts` reads of the key results ``ids``: built once, the ids bound."""
    return (
        select(
            Mapping.key_result_id,
            Mapping.id,
            Mapping.metric,
            DataSource.connector,
            DataSource.schedule,
            DataSource.timezone,
            DataSource.last_success_at,
            DataSource.created_at,
        )
        .join(DataSource, DataSource.id == Mapping.data_source_id)
        .where(among_bound(dialect, Mapping.key_result_id, "ids"))
    )


def _source_facts(session: Session, kr_ids: Sequence[int], now: datetime) -> _SourceFacts:
    """SPEC: stale when a mapped source has had no successful sync for twice its interval;
    provisional from the first day its metric may still be restated, in the source's today."""
    facts = _SourceFacts()
    if not kr_ids:
        return facts
    rows = session.execute(_facts_of(session.get_bind().dialect.name), {"ids": list(kr_ids)})
    for kr_id, mapping_id, metric, connector, schedule, tz, last_success, created in rows:
        reference = last_success or created
        if reference.tzinfo is None:
            reference = reference.replace(tzinfo=UTC)
        try:
            interval = schedule_interval(schedule, tz, reference)
            today = now.astimezone(ZoneInfo(tz)).date()
        except (ValueError, LookupError):
            interval = timedelta(days=1)
            today = now.date()
        if now - reference > 2 * interval:
            facts.stale.add(kr_id)
        first = first_provisional_day(settle_days(connector, metric), today)
        if first is not None:
            facts.provisional[mapping_id] = first
    return facts


def provisional_days(session: Session, kr_id: int) -> dict[int, date]:
    """Mapping id -> the first day of it still provisional today, for one key result's series."""
    return _source_facts(session, [kr_id], clock.utcnow()).provisional


class ProgressCalculator:
    """Computes key results and objectives together, so roll-ups can use what was computed.

    Metric key results are computed in batches (one pair of statements per cycle and batch):
    `run` batches everything it was given, which keeps a dashboard at a fixed statement count;
    a single read computes just the key result asked for, and roll-ups pull in what they need.
    """

    def __init__(self, session: Session, as_of: date) -> None:
        self.session = session
        self.as_of = as_of
        self.objectives: dict[int, Objective] = {}
        self.cycles: dict[int, Cycle] = {}
        self.kr_results: dict[int, Progress] = {}
        self.obj_results: dict[int, ObjectiveProgress] = {}
        self._aligned: dict[int, list[int]] = defaultdict(list)
        self._krs: dict[int, KeyResult] = {}
        self._in_progress: set[int] = set()
        self._stale: set[int] = set()
        self._provisional: dict[int, date] = {}
        self._stale_known: set[int] = set()
        #: Key results and objectives of closed cycles: their frozen reads (SPEC section 8).
        self._frozen_krs: dict[int, dict[str, Any]] = {}
        self._frozen_objectives: dict[int, dict[str, Any]] = {}

    def run(self, objectives: Iterable[Objective], only: Iterable[int] | None = None) -> None:
        """Objectives come with `key_results` and `cycle` loaded (selectinload).

        With `only`, just those key results (and what their roll-ups need) are computed, and
        objective progress is left out.
        """
        self._register(objectives)
        self._expand_rollups()
        if only is None:
            self._compute_metrics(list(self._krs))
            for obj_id in list(self.objectives):
                self._objective(obj_id)
            for kr_id in self._krs:
                self._key_result(kr_id)
        else:
            wanted = [k for k in only if k in self._krs]
            self._compute_metrics(wanted)
            for kr_id in wanted:
                self._key_result(kr_id)

    def _register(self, objectives: Iterable[Objective]) -> None:
        for obj in objectives:
            if obj.id in self.objectives:
                continue
            self.objectives[obj.id] = obj
            self.cycles[obj.cycle_id] = obj.cycle
            closed = obj.cycle.closed_at is not None
            if closed and obj.frozen_progress is not None:
                self._frozen_objectives[obj.id] = obj.frozen_progress
            for kr in obj.key_results:
                self._krs[kr.id] = kr
                if closed and kr.frozen_progress is not None:
                    self._frozen_krs[kr.id] = kr.frozen_progress
            if obj.parent_key_result_id is not None:
                self._aligned[obj.parent_key_result_id].append(obj.id)

    def _expand_rollups(self) -> None:
        """One query per level of alignment, never one per key result."""
        asked: set[int] = set()
        while True:
            pending = [k.id for k in self._krs.values() if k.kind == "rollup" and k.id not in asked]
            if not pending:
                return
            asked.update(pending)
            rows = self.session.scalars(
                select(Objective)
                .where(
                    Objective.parent_key_result_id.in_(pending),
                    Objective.id.not_in(list(self.objectives) or [0]),
                )
                .options(selectinload(Objective.key_results), selectinload(Objective.cycle))
            ).all()
            self._register(rows)

    def _compute_metrics(self, kr_ids: Sequence[int]) -> None:
        todo = [k for k in kr_ids if k not in self.kr_results and k not in self._stale_known]
        for kr_id in [k for k in todo if k in self._frozen_krs]:
            # Neither computed nor checked for staleness: the frozen read answers as stored.
            self.kr_results[kr_id] = frozen_key_result(self._frozen_krs[kr_id])
            self._stale_known.add(kr_id)
        todo = [k for k in todo if k not in self._frozen_krs]
        if not todo:
            return
        facts = _source_facts(self.session, todo, clock.utcnow())
        self._stale |= facts.stale
        self._stale_known.update(todo)
        by_cycle: dict[int, list[KeyResult]] = defaultdict(list)
        for kr_id in todo:
            kr = self._krs[kr_id]
            if kr.kind != "rollup":
                by_cycle[self.objectives[kr.objective_id].cycle_id].append(kr)
        for cycle_id, krs in by_cycle.items():
            cycle = span(self.cycles[cycle_id])
            relative = [
                k.id for k in krs if k.start_value is None and k.target_change_pct is not None
            ]
            loaded = _load_stats(
                self.session,
                [k.id for k in krs],
                relative,
                cycle,
                self.as_of,
                facts.provisional,
            )
            for kr in krs:
                self.kr_results[kr.id] = compute_progress(
                    definition(kr),
                    cycle,
                    self.as_of,
                    current=loaded.current.get(kr.id, {}),
                    baseline=loaded.baseline.get(kr.id, {}),
                    days_with_data=loaded.days.get(kr.id, 0),
                    stale=kr.id in self._stale,
                    provisional_from=loaded.provisional_from.get(kr.id),
                )

    def _key_result(self, kr_id: int) -> Progress:
        if kr_id in self.kr_results:
            return self.kr_results[kr_id]
        if kr_id in self._frozen_krs:
            self._compute_metrics([kr_id])
            return self.kr_results[kr_id]
        kr = self._krs[kr_id]
        if kr.kind != "rollup":
            self._compute_metrics([kr_id])
            return self.kr_results[kr_id]
        cycle = span(self.cycles[self.objectives[kr.objective_id].cycle_id])
        if kr_id in self._in_progress:  # an alignment loop: refuse to recurse forever
            rollup = None
        else:
            self._in_progress.add(kr_id)
            aligned = self._aligned.get(kr_id, [])
            self._compute_metrics(
                [k.id for obj_id in aligned for k in self.objectives[obj_id].key_results]
            )
            rollup = weighted_progress(
                (1.0, self._objective(obj_id).progress) for obj_id in aligned
            )
            # A roll-up moves with its objectives: their provisional days are its own.
            provisional = [
                day for obj_id in aligned if (day := self._objective(obj_id).provisional_from)
            ]
            if provisional:
                self._provisional[kr_id] = min(provisional)
            self._in_progress.discard(kr_id)
        self._compute_metrics([kr_id])  # staleness of the roll-up's own mappings, if any
        result = compute_progress(
            definition(kr),
            cycle,
            self.as_of,
            current={},
            rollup_progress=rollup,
            stale=kr_id in self._stale,
            provisional_from=self._provisional.get(kr_id),
        )
        self.kr_results[kr_id] = result
        return result

    def _objective(self, obj_id: int) -> ObjectiveProgress:
        if obj_id in self.obj_results:
            return self.obj_results[obj_id]
        if obj_id in self._frozen_objectives:
            frozen = frozen_objective(self._frozen_objectives[obj_id])
            self.obj_results[obj_id] = frozen
            return frozen
        obj = self.objectives[obj_id]
        items = [(kr.weight, self._key_result(kr.id)) for kr in obj.key_results]
        result = objective_progress(span(obj.cycle), self.as_of, items)
        self.obj_results[obj_id] = result
        return result
