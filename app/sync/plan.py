"""Which days to ask a source for, and how to batch its mappings into few connector calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

from pydantic import BaseModel

from app.models import DataSource
from app.progress import Cycle as CycleSpan
from app.progress import baseline_window
from app.sync.settle import settle_start
from connectors.base import Connector, Filter, MetricQuery, MetricSpec, Window

#: A first sync with no mapping to backfill still looks back this far.
FIRST_SYNC_DAYS = 30


class PlannedMapping(Protocol):
    """What a plan reads of a mapping: a `Mapping` row, or the columns of one."""

    @property
    def id(self) -> int: ...
    @property
    def metric(self) -> str: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def filters(self) -> list[Any]: ...
    @property
    def role(self) -> str: ...
    @property
    def group(self) -> str: ...
    @property
    def scale(self) -> float: ...
    @property
    def backfill_pending(self) -> bool: ...


class PlannedKeyResult(Protocol):
    """What a plan reads of a mapping's key result."""

    @property
    def id(self) -> int: ...
    @property
    def aggregation(self) -> str: ...
    @property
    def start_value(self) -> float | None: ...
    @property
    def target_change_pct(self) -> float | None: ...


class PlannedCycle(Protocol):
    """What a plan reads of the key result's cycle."""

    @property
    def start_date(self) -> date: ...
    @property
    def end_date(self) -> date: ...


@dataclass(frozen=True)
class Target:
    """Where a query's values land."""

    mapping_id: int
    key_result_id: int
    role: str
    group: str
    history: str
    replace_history: bool
    settles_backfill: bool = True
    #: Reads multiply the stored value by it, so the stored figure is bounded with it applied.
    scale: float = 1.0


@dataclass
class Plan:
    daily_window: Window | None
    daily: list[MetricQuery] = field(default_factory=list)
    snapshot: list[MetricQuery] = field(default_factory=list)
    targets: dict[str, Target] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    incremental_end: date | None = None

    @property
    def empty(self) -> bool:
        return not self.daily and not self.snapshot


def backfill_window(
    cycle: PlannedCycle, kr: PlannedKeyResult, yesterday: date
) -> tuple[date, date] | None:
    """The cycle so far, plus last cycle's equal window when the target is relative to it."""
    span = CycleSpan(start=cycle.start_date, end=cycle.end_date)
    start = cycle.start_date
    if kr.start_value is None and kr.target_change_pct is not None:
        start = baseline_window(span)[0]
    end = min(cycle.end_date, yesterday)
    return (start, end) if start <= end else None


def incremental_window(
    source: DataSource, yesterday: date, settle_days: int = 0, needed_from: date | None = None
) -> tuple[date, date]:
    """From the last synced day minus `lookback_days` to yesterday, and never fewer than the
    `settle_days` before today: a platform still restating them is read again until it stops,
    whatever lookback its source was given. Those days are only read from `needed_from` (the
    earliest day a mapped key result reads, its cycle's or baseline's start) on: 28 days of
    Meta a week into a cycle would otherwise fetch three weeks nobody reads."""
    if source.last_synced_day is None:
        start = yesterday - timedelta(days=FIRST_SYNC_DAYS - 1)
    else:
        start = source.last_synced_day - timedelta(days=source.lookback_days)
    settling = settle_start(settle_days, yesterday)
    if needed_from is not None:
        settling = max(settling, needed_from)
    return min(start, settling), yesterday


def build_query(
    connector: type[Connector[Any, Any]], mapping: PlannedMapping, aggregation: str | None
) -> tuple[MetricQuery, MetricSpec]:
    filters = [Filter.model_validate(f) for f in mapping.filters]
    params: BaseModel = connector.validate_query(
        mapping.metric,
        mapping.params,
        filters,
        aggregation,  # type: ignore[arg-type]
    )
    spec = connector.metric_spec(mapping.metric)
    assert spec is not None  # validate_query refused unknown metrics
    return MetricQuery(str(mapping.id), mapping.metric, params, tuple(filters)), spec


def plan_run(
    connector: type[Connector[Any, Any]],
    source: DataSource,
    rows: Sequence[tuple[PlannedMapping, PlannedKeyResult, PlannedCycle]],
    *,
    today: date,
    requested: tuple[date, date] | None,
) -> Plan:
    """One window for every daily query, so the connector can batch them all in one fetch.

    A mapping waiting for its backfill widens the window for all: one wider call is cheaper than
    a second call on every platform we speak to.
    """
    yesterday = today - timedelta(days=1)
    built = [
        (build_query(connector, mapping, kr.aggregation), mapping, kr) for mapping, kr, _ in rows
    ]
    settle = max(
        (connector.settle_days_of(spec) for (_, spec), _, _ in built if spec.history == "daily"),
        default=0,
    )
    if requested is not None:
        start, end = requested
    else:
        # Pending mappings need their backfill; settled ones (or a source with none) need the
        # incremental window. A new source's mappings are all pending, so a first sync of a
        # past cycle asks for that cycle alone.
        needed = [
            (mapping, w)
            for mapping, kr, cycle in rows
            if (w := backfill_window(cycle, kr, yesterday))
        ]
        windows = [w for mapping, w in needed if mapping.backfill_pending]
        if not rows or any(not mapping.backfill_pending for mapping, _, _ in rows):
            needed_from = min((w[0] for _, w in needed), default=None)
            windows.append(incremental_window(source, yesterday, settle, needed_from))
        start = min((w[0] for w in windows), default=yesterday)
        end = max((w[1] for w in windows), default=yesterday)
    plan = Plan(
        daily_window=Window(start, end) if start <= end else None,
        incremental_end=None if requested else yesterday,
    )
    for (query, spec), mapping, kr in built:
        plan.targets[query.id] = Target(
            mapping_id=mapping.id,
            key_result_id=kr.id,
            role=mapping.role,
            group=mapping.group,
            history=spec.history,
            # A window someone asked for is not the backfill: history stays, the flag too.
            replace_history=(
                requested is None and mapping.backfill_pending and spec.history == "daily"
            ),
            settles_backfill=requested is None,
            scale=mapping.scale,
        )
        if spec.history == "snapshot":
            plan.snapshot.append(query)
            if mapping.backfill_pending:
                plan.warnings.append(
                    f"mapping {mapping.id}: `{mapping.metric}` is a snapshot metric; "
                    f"the platform can't say past values, so its series starts on {today}"
                )
        elif plan.daily_window is not None:
            plan.daily.append(query)
    return plan
