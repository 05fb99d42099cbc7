"""Loads what the progress engine needs with a fixed number of SQL statements.

Observations are reduced in SQL to one `SeriesStats` row per (key result, group, role, window), so a
dashboard of 240 key results reads a few hundred rows, never their tens of thousands of days.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.orm import Session, selectinload

from app.core.cron import cron_trigger
from app.core.values import readable
from app.models import Cycle, DataSource, KeyResult, Mapping, Objective, Observation
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
from app.sync import clock
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


def _day_number(session: Session, column: Any, origin: date) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return cast(column - literal(origin, Date), Integer)
    return func.julianday(column) - func.julianday(literal(origin.isoformat()))


def _load_stats(
    session: Session,
    kr_ids: Sequence[int],
    baseline_ids: Sequence[int],
    cycle: CycleSpan,
    as_of: date,
    provisional: dict[int, date],
    unmapped: Collection[int] = frozenset(),
) -> _Loaded:
    """Three statements per cycle: the per-series reduction, last values, distinct days.

    The baseline window is read only for key results whose target is relative to it. The
    reduction also finds each series' earliest provisional day in W (`provisional` gives each
    mapping's first provisional day), so provisional days cost no statement of their own.

    Key results in `unmapped` have no mapping, so every observation of theirs is a manual one
    (`mapping_id` NULL), unique per series and day (`uq_observations_manual_day`) and unscaled:
    their rows are the daily values already, and are reduced in one pass, without the day-level
    grouping and the join to mappings that several sources on one day need. The two halves are
    one statement (UNION ALL), so the statement count stays fixed.
    """
    loaded = _Loaded()
    w = window(cycle, as_of)
    b_start, b_end = baseline_window(cycle)
    o = Observation
    in_w = and_(o.date >= w[0], o.date <= w[1]) if w else None
    win = case((in_w, "c"), else_="b") if in_w is not None else literal("b")

    def wanted(current: Sequence[int], base: Sequence[int]) -> list[ColumnElement[bool]]:
        found = []
        if in_w is not None and current:
            found.append(and_(o.key_result_id.in_(current), in_w))
        if base:
            found.append(and_(o.key_result_id.in_(base), o.date >= b_start, o.date <= b_end))
        return found

    wanted_daily = wanted(
        [k for k in kr_ids if k not in unmapped], [k for k in baseline_ids if k not in unmapped]
    )
    wanted_rows = wanted(
        [k for k in kr_ids if k in unmapped], [k for k in baseline_ids if k in unmapped]
    )
    if not wanted_daily and not wanted_rows:
        return loaded
    by_first_day: dict[date, list[int]] = defaultdict(list)
    for mapping_id, first in provisional.items():
        by_first_day[first].append(mapping_id)
    provisional_day: ColumnElement[Any] = cast(literal(None), Date)
    if in_w is not None and by_first_day:
        still_moving = or_(
            *(
                and_(o.mapping_id.in_(ids), o.date >= first)
                for first, ids in sorted(by_first_day.items())
            )
        )
        provisional_day = case((and_(in_w, still_moving), o.date))
    halves: list[Select[Any]] = []
    if wanted_daily:
        daily = (
            select(
                o.key_result_id.label("kr"),
                o.group.label("g"),
                o.role.label("r"),
                o.date.label("d"),
                win.label("win"),
                func.sum(o.value * func.coalesce(Mapping.scale, 1.0)).label("v"),
                func.min(provisional_day).label("p"),
            )
            .select_from(o)
            .outerjoin(Mapping, Mapping.id == o.mapping_id)
            .where(or_(*wanted_daily), readable(o.value))
            .group_by(o.key_result_id, o.group, o.role, o.date)
            .subquery("daily")
        )
        halves.append(
            _reduce(
                session,
                cycle.start,
                daily.c.kr,
                daily.c.g,
                daily.c.r,
                daily.c.win,
                daily.c.d,
                daily.c.v,
                func.min(daily.c.p),
            )
        )
    if wanted_rows:
        halves.append(
            _reduce(
                session,
                cycle.start,
                o.key_result_id,
                o.group,
                o.role,
                win,
                o.date,
                o.value,
                cast(literal(None), Date),
            ).where(or_(*wanted_rows), readable(o.value))
        )
    stats_stmt = halves[0] if len(halves) == 1 else union_all(*halves)
    if session.get_bind().dialect.name == "postgresql":
        # A cycle's days for hundreds of series fit in memory; the 4 MB default spills to disk.
        session.execute(text("SET LOCAL work_mem = '64MB'"))
    rows = session.execute(stats_stmt).all()
    # The last value of each series: its last day's figure, read by key rather than by sorting
    # every day of every series.
    last_values: dict[tuple[int, str, str, date], float] = {}
    last_keys = {
        (kr, g, r, _as_date(last_d)) for kr, g, r, _w, _n, _t, _mn, _mx, last_d, *_ in rows
    }
    ordered = sorted(last_keys)
    for start in range(0, len(ordered), LAST_VALUE_BATCH):
        last_stmt = (
            select(
                o.key_result_id,
                o.group,
                o.role,
                o.date,
                func.sum(o.value * func.coalesce(Mapping.scale, 1.0)),
            )
            .outerjoin(Mapping, Mapping.id == o.mapping_id)
            .where(
                tuple_(o.key_result_id, o.group, o.role, o.date).in_(
                    ordered[start : start + LAST_VALUE_BATCH]
                ),
                readable(o.value),
            )
            .group_by(o.key_result_id, o.group, o.role, o.date)
        )
        for kr, g, r, d, v in session.execute(last_stmt):
            last_values[(kr, g, r, _as_date(d))] = float(v)
    for kr, g, r, win_, n, total, mn, mx, last_d, sx, sxy, sxx, first_provisional in rows:
        if win_ == "c" and first_provisional is not None:
            day = _as_date(first_provisional)
            known = loaded.provisional_from.get(kr)
            loaded.provisional_from[kr] = day if known is None else min(known, day)
        last_day = _as_date(last_d)
        stats = SeriesStats(
            n=int(n),
            total=float(total),
            minimum=float(mn),
            maximum=float(mx),
            last_date=last_day,
            last_value=last_values[(kr, g, r, last_day)],
            sx=float(sx),
            sy=float(total),
            sxy=float(sxy),
            sxx=float(sxx),
        )
        target = loaded.current if win_ == "c" else loaded.baseline
        target.setdefault(kr, {})[(g, r)] = stats
    if w and kr_ids:
        days_stmt = (
            select(o.key_result_id, func.count(func.distinct(o.date)))
            .where(o.key_result_id.in_(kr_ids), o.date >= w[0], o.date <= w[1])
            .group_by(o.key_result_id)
        )
        loaded.days = {kr: int(n) for kr, n in session.execute(days_stmt)}
    return loaded


def _reduce(
    session: Session,
    origin: date,
    kr: Any,
    g: Any,
    r: Any,
    win: Any,
    d: Any,
    v: Any,
    provisional: ColumnElement[Any],
) -> Select[Any]:
    """One `SeriesStats` row per (key result, group, role, window) from daily values `v`."""
    x = _day_number(session, d, origin)
    return select(
        kr,
        g,
        r,
        win.label("win"),
        func.count(),
        func.sum(v),
        func.min(v),
        func.max(v),
        func.max(d),
        func.sum(x),
        func.sum(x * v),
        func.sum(x * x),
        provisional,
    ).group_by(kr, g, r, win)


#: Series whose last values one statement reads (4 bind parameters each, well under limits).
LAST_VALUE_BATCH = 2000


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
    #: key results some mapping feeds; the others hold manual observations only.
    mapped: set[int] = field(default_factory=set)
    #: mapping id -> the first day of it the platform may still restate (SPEC `settle_days`).
    provisional: dict[int, date] = field(default_factory=dict)


def _source_facts(session: Session, kr_ids: Sequence[int], now: datetime) -> _SourceFacts:
    """SPEC: stale when a mapped source has had no successful sync for twice its interval;
    provisional from the first day its metric may still be restated, in the source's today."""
    facts = _SourceFacts()
    if not kr_ids:
        return facts
    rows = session.execute(
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
        .where(Mapping.key_result_id.in_(kr_ids))
    )
    for kr_id, mapping_id, metric, connector, schedule, tz, last_success, created in rows:
        facts.mapped.add(kr_id)
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
            for kr in obj.key_results:
                self._krs[kr.id] = kr
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
                unmapped={k.id for k in krs} - facts.mapped,
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
        obj = self.objectives[obj_id]
        items = [(kr.weight, self._key_result(kr.id)) for kr in obj.key_results]
        result = objective_progress(span(obj.cycle), self.as_of, items)
        self.obj_results[obj_id] = result
        return result
