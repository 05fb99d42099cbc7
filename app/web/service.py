"""What the dashboard page shows beyond the API's progress: sparklines and source freshness.

Each is read with one statement for the whole page (the series of every key result at once; the
sources, then their latest runs), so the page costs the same handful of queries however many key
results a cycle holds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.changes import same_named
from app.core.values import readable
from app.models import DataSource, KeyResult, Mapping, Observation
from app.okr.progress_service import schedule_interval
from app.sync import history
from app.sync.source_health import Health, health_of, reason_of

SPARK_WIDTH = 120
SPARK_HEIGHT = 28
_SPARK_PAD = 2.0
RUNS_PER_SOURCE = 3
#: The healths the dashboard tells admins about.
ATTENTION: frozenset[Health] = frozenset({"failing", "needs_reauth", "paused"})


@dataclass(frozen=True)
class Sparkline:
    points: str  # SVG polyline points in a SPARK_WIDTH x SPARK_HEIGHT box
    days: int
    first: float
    last: float
    low: float
    high: float


@dataclass(frozen=True)
class RunView:
    id: int
    trigger: str
    status: str
    window_from: date | None
    window_to: date | None
    observations: int
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class SourceView:
    id: int
    name: str
    connector: str
    enabled: bool
    schedule: str
    timezone: str
    last_success_at: datetime | None
    stale: bool
    runs: list[RunView]
    health: Health = "healthy"
    #: Why it is not healthy (SPEC section 7), in words an admin acts on.
    health_reason: str | None = None

    @property
    def needs_attention(self) -> bool:
        """Someone must act: `degraded` only tells, and a disabled source syncs nothing."""
        return self.enabled and self.health in ATTENTION


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def daily_series(
    session: Session, krs: Sequence[KeyResult], start: date, end: date
) -> dict[int, list[tuple[date, float]]]:
    """Each key result's daily figure over [start, end], all key results in one statement.

    Groups are added up per day; a ratio key result's day is its numerators over its
    denominators (days whose denominator is 0 are left out), as the SPEC reduces a ratio.
    """
    if not krs or end < start:
        return {}
    ratio = {kr.id for kr in krs if kr.aggregation == "ratio"}
    o = Observation
    rows = session.execute(
        select(
            o.key_result_id,
            o.date,
            o.role,
            func.sum(o.value * func.coalesce(Mapping.scale, 1.0)),
        )
        .outerjoin(Mapping, Mapping.id == o.mapping_id)
        .where(
            o.key_result_id.in_([kr.id for kr in krs]),
            o.date >= start,
            o.date <= end,
            readable(o.value),
        )
        .group_by(o.key_result_id, o.date, o.role)
        .order_by(o.key_result_id, o.date)
    ).all()
    by_day: dict[int, dict[date, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for kr_id, day, role, value in rows:
        by_day[kr_id][day][role] = float(value)
    series: dict[int, list[tuple[date, float]]] = {}
    for kr_id, days in by_day.items():
        points: list[tuple[date, float]] = []
        for day, roles in sorted(days.items()):
            if kr_id in ratio:
                num, den = roles.get("numerator"), roles.get("denominator")
                if num is None or not den:
                    continue
                points.append((day, num / den))
            elif "value" in roles:
                points.append((day, roles["value"]))
        if points:
            series[kr_id] = points
    return series


def sparkline(points: Sequence[tuple[date, float]], start: date, end: date) -> Sparkline | None:
    """Days run left to right over [start, end]; values fill the height between min and max."""
    if not points:
        return None
    values = [v for _, v in points]
    low, high = min(values), max(values)
    span_days = max((end - start).days, 1)
    inner_w = SPARK_WIDTH - 2 * _SPARK_PAD
    inner_h = SPARK_HEIGHT - 2 * _SPARK_PAD
    xy: list[tuple[float, float]] = []
    for day, value in points:
        x = _SPARK_PAD + inner_w * (day - start).days / span_days
        y = (
            SPARK_HEIGHT / 2
            if high == low
            else _SPARK_PAD + inner_h * (1 - (value - low) / (high - low))
        )
        xy.append((x, y))
    if len(xy) == 1:  # one day: a short flat stroke, so it shows at all
        (x, y) = xy[0]
        xy = [(max(x - 2, 0.0), y), (min(x + 2, float(SPARK_WIDTH)), y)]
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    return Sparkline(coords, len(points), values[0], values[-1], low, high)


def sparklines(
    session: Session, krs: Sequence[KeyResult], start: date, end: date
) -> dict[int, Sparkline]:
    result: dict[int, Sparkline] = {}
    for kr_id, points in daily_series(session, krs, start, end).items():
        line = sparkline(points, start, end)
        if line is not None:
            result[kr_id] = line
    return result


def _is_stale(source: DataSource, now: datetime) -> bool:
    """The SPEC's rule, as progress applies it: no success for twice the schedule interval."""
    reference = _aware(source.last_success_at or source.created_at)
    try:
        interval = schedule_interval(source.schedule, source.timezone, reference)
    except (ValueError, LookupError):
        interval = timedelta(days=1)
    return now - reference > 2 * interval


def sources(session: Session, now: datetime) -> list[SourceView]:
    """Every data source with its freshness and its latest runs: two statements in all."""
    rows = session.scalars(select(DataSource).order_by(DataSource.name, DataSource.id)).all()
    if not rows:
        return []
    runs = history.latest_runs(session, RUNS_PER_SOURCE)
    by_source: dict[int, list[RunView]] = defaultdict(list)
    for run in runs:
        by_source[run.data_source_id].append(
            RunView(
                **same_named(run, "id trigger status window_from window_to"),
                observations=run.observations_written,
                started_at=_aware(run.started_at),
                finished_at=_aware(run.finished_at) if run.finished_at else None,
            )
        )
    return [
        SourceView(
            **same_named(s, "id name connector enabled schedule timezone"),
            last_success_at=_aware(s.last_success_at) if s.last_success_at else None,
            stale=s.enabled and _is_stale(s, now),
            runs=by_source.get(s.id, []),
            health=health_of(s, now),
            health_reason=reason_of(s, now),
        )
        for s in rows
    ]
