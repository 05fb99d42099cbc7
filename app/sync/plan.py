"""Which days to ask a source for, and how to batch its mappings into few connector calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel

from app.models import Cycle, DataSource, KeyResult, Mapping
from app.progress import Cycle as CycleSpan
from app.progress import baseline_window
from connectors.base import Connector, Filter, MetricQuery, MetricSpec, Window

#: A first sync with no mapping to backfill still looks back this far.
FIRST_SYNC_DAYS = 30


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


def backfill_window(cycle: Cycle, kr: KeyResult, yesterday: date) -> tuple[date, date] | None:
    """The cycle so far, plus last cycle's equal window when the target is relative to it."""
    span = CycleSpan(start=cycle.start_date, end=cycle.end_date)
    start = cycle.start_date
    if kr.start_value is None and kr.target_change_pct is not None:
        start = baseline_window(span)[0]
    end = min(cycle.end_date, yesterday)
    return (start, end) if start <= end else None


def incremental_window(source: DataSource, yesterday: date) -> tuple[date, date]:
    if source.last_synced_day is None:
        return yesterday - timedelta(days=FIRST_SYNC_DAYS - 1), yesterday
    start = source.last_synced_day - timedelta(days=source.lookback_days)
    return min(start, yesterday), yesterday


def build_query(
    connector: type[Connector[Any, Any]], mapping: Mapping, aggregation: str | None
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
    rows: Sequence[tuple[Mapping, KeyResult, Cycle]],
    *,
    today: date,
    requested: tuple[date, date] | None,
) -> Plan:
    """One window for every daily query, so the connector can batch them all in one fetch.

    A mapping waiting for its backfill widens the window for all: one wider call is cheaper than
    a second call on every platform we speak to.
    """
    yesterday = today - timedelta(days=1)
    if requested is not None:
        start, end = requested
    else:
        # Pending mappings need their backfill; settled ones (or a source with none) need the
        # incremental window. A new source's mappings are all pending, so a first sync of a
        # past cycle asks for that cycle alone.
        windows = [
            w
            for mapping, kr, cycle in rows
            if mapping.backfill_pending and (w := backfill_window(cycle, kr, yesterday))
        ]
        if not rows or any(not mapping.backfill_pending for mapping, _, _ in rows):
            windows.append(incremental_window(source, yesterday))
        start = min((w[0] for w in windows), default=yesterday)
        end = max((w[1] for w in windows), default=yesterday)
    plan = Plan(
        daily_window=Window(start, end) if start <= end else None,
        incremental_end=None if requested else yesterday,
    )
    for mapping, kr, _cycle in rows:
        query, spec = build_query(connector, mapping, kr.aggregation)
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
