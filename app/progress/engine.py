"""The progress engine: SPEC section 2 as pure functions over plain values.

Nothing here reads a database, a clock or the network. The service loads daily figures
(aggregated in SQL into `SeriesStats`, or as raw `Observation`s), passes `as_of` explicitly and
serializes the result; that is what lets every rule below be tested with figures worked by hand.

Decisions the SPEC leaves open, taken here so that every caller gets the same answer:

- Only the series whose role fits the aggregation count: `numerator`/`denominator` for
  `ratio`, `value` for the rest. A series with `n == 0` means "mapped but silent" and has no
  value, whatever the aggregation.
- `scale` is applied by the caller before the stats are built; the engine never sees it.
- Relative targets: for `sum` the start is 0 (a run-rate total restarts every cycle, so this
  cycle's total is measured against last cycle's total grown by the percentage); for every
  other aggregation the start is the baseline itself. A baseline that yields target == start
  for `increase`/`decrease` (a baseline of 0) cannot define a relative target and is reported
  as `no_baseline`, like a missing one.
- `no_data` wins over `no_baseline`: with nothing in the window there is nothing to measure,
  whatever the baseline.
- `each`: groups without a value (or, with a relative target, without a baseline) are listed
  but not scored; the key result is as good as its weakest *scored* group, whose value, start
  and target are the ones reported. Ties go to the first group by name.
- Status: `done` for `at_least`/`at_most` needs the cycle to be over, i.e. `as_of > cycle.end`;
  on the last day itself the cycle is still running. A milestone is done once reached.
- Thresholds tolerate `_EPS` of float error so that 0.1 + 0.2 style noise never flips a status.
- Score rounds half-up on the shortest decimal form of the float, as a reviewer would by hand:
  0.25 -> 0.3 and 0.15 -> 0.2 (binary 0.15 is slightly below 0.15; `round()` would say 0.1).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

Kind = Literal["metric", "milestone", "rollup"]
Direction = Literal["increase", "decrease", "at_least", "at_most"]
Aggregation = Literal["sum", "last", "avg", "min", "max", "ratio"]
GroupRule = Literal["combine", "each"]
Role = Literal["value", "numerator", "denominator"]
Status = Literal["no_data", "no_baseline", "done", "on_track", "at_risk", "off_track"]

SeriesKey = tuple[str, str]
"""(group, role): one mapping's series, the unit the SQL aggregates over."""

_EPS = 1e-9
_ON_TRACK_MARGIN = 0.10
_AT_RISK_MARGIN = 0.25
#: A threshold missed by less than this (p >= 0.9) and not forecast to be met is at risk.
_THRESHOLD_AT_RISK = 0.9


@dataclass(frozen=True)
class Cycle:
    """An OKR cycle; both ends are inclusive calendar days."""

    start: date
    end: date

    def __post_init__(self) -> None:
        # Refused here rather than later because total_days is a divisor everywhere.
        if self.end < self.start:
            raise ValueError(f"cycle ends ({self.end}) before it starts ({self.start})")

    @property
    def total_days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class KeyResultDef:
    """The fields of a key result that decide its progress, and nothing else."""

    kind: Kind = "metric"
    direction: Direction = "increase"
    aggregation: Aggregation = "sum"
    group_rule: GroupRule = "combine"
    start_value: float | None = None
    target_value: float | None = None
    target_change_pct: float | None = None


@dataclass(frozen=True)
class SeriesStats:
    """One (group, role) series reduced over one window, from DAILY values.

    Several observations on one day are already summed into the day's value. Every field is a
    plain SQL aggregate (COUNT, SUM, MIN, MAX, and the latest row), so the dashboard can build
    these for all key results in one query instead of loading every observation.
    """

    n: int
    total: float
    minimum: float | None
    maximum: float | None
    last_date: date | None
    last_value: float | None
    sx: float
    sy: float
    sxy: float
    sxx: float


@dataclass(frozen=True)
class GroupProgress:
    group: str
    current_value: float | None
    progress: float | None


@dataclass(frozen=True)
class Progress:
    as_of: date
    current_value: float | None
    start_value: float | None
    target_value: float | None
    progress: float | None
    attainment: float | None
    expected_progress: float
    score: float | None
    status: Status
    forecast_value: float | None
    forecast_progress: float | None
    last_observation_date: date | None
    stale: bool
    groups: tuple[GroupProgress, ...] = field(default=())
    #: The earliest day in W whose figure the platform may still restate (SPEC section 4).
    provisional_from: date | None = None
    #: The figures stored when the cycle was closed (SPEC section 8), not computed now.
    frozen: bool = False
    #: With `frozen`: the sync runs that wrote the points behind the figures.
    sync_run_ids: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Observation:
    date: date
    value: float
    group: str = ""
    role: Role = "value"


@dataclass(frozen=True)
class ObjectiveProgress:
    as_of: date
    progress: float | None
    expected_progress: float
    score: float | None
    status: Status
    last_observation_date: date | None
    stale: bool
    provisional_from: date | None = None
    frozen: bool = False


@dataclass(frozen=True)
class _Bounds:
    start: float
    target: float


# --- windows and time -------------------------------------------------------------------------


def window(cycle: Cycle, as_of: date) -> tuple[date, date] | None:
    """W: what is known by `as_of` inside the cycle; None before the cycle starts."""
    if as_of < cycle.start:
        return None
    return cycle.start, min(as_of, cycle.end)


def baseline_window(cycle: Cycle) -> tuple[date, date]:
    """The stretch of equal length just before the cycle, so "+20%" compares like with like."""
    end = cycle.start - timedelta(days=1)
    return end - timedelta(days=cycle.total_days - 1), end


def _elapsed_days(cycle: Cycle, as_of: date) -> int:
    w = window(cycle, as_of)
    return 0 if w is None else (w[1] - w[0]).days + 1


def expected_progress(cycle: Cycle, as_of: date) -> float:
    """Linear pace: the share of the cycle's days that W covers (0 before, 1 after)."""
    return _elapsed_days(cycle, as_of) / cycle.total_days


# --- series statistics ------------------------------------------------------------------------


def stats_from_daily(points: Iterable[tuple[date, float]], origin: date) -> SeriesStats:
    """Reduce (day, value) points, summing repeated days first.

    `math.fsum` is exactly rounded, so the result does not depend on the order of the points:
    re-syncing the same figures in another order must never move a key result.
    """
    by_day: dict[date, list[float]] = defaultdict(list)
    for day, value in points:
        by_day[day].append(value)
    days = sorted(by_day)
    values = [math.fsum(by_day[day]) for day in days]
    xs = [float((day - origin).days) for day in days]
    return SeriesStats(
        n=len(days),
        total=math.fsum(values),
        minimum=min(values) if values else None,
        maximum=max(values) if values else None,
        last_date=days[-1] if days else None,
        last_value=values[-1] if values else None,
        sx=math.fsum(xs),
        sy=math.fsum(values),
        sxy=math.fsum(x * y for x, y in zip(xs, values, strict=True)),
        sxx=math.fsum(x * x for x in xs),
    )


def stats_by_series(
    observations: Iterable[Observation], start: date, end: date, origin: date
) -> dict[SeriesKey, SeriesStats]:
    """Stats of every (group, role) series that has an observation within [start, end]."""
    points: dict[SeriesKey, list[tuple[date, float]]] = defaultdict(list)
    for obs in observations:
        if start <= obs.date <= end:
            points[(obs.group, obs.role)].append((obs.date, obs.value))
    return {key: stats_from_daily(pts, origin) for key, pts in sorted(points.items())}


# --- definitions ------------------------------------------------------------------------------


def _is_relative(kr: KeyResultDef) -> bool:
    return kr.start_value is None and kr.target_change_pct is not None


def _grow(value: float, pct: float) -> float:
    return value * (1 + pct / 100)


def validate_definition(kr: KeyResultDef) -> str | None:
    """Why this definition cannot be measured, or None if it can.

    The API answers 422 with this message; `compute_progress` raises ValueError with it, so a
    definition that slipped past the API fails loudly instead of dividing by zero.
    """
    for name in ("start_value", "target_value", "target_change_pct"):
        value = getattr(kr, name)
        if value is not None and not math.isfinite(value):
            return f"{name} must be a finite number"
    if kr.kind != "metric":
        return None  # a milestone reads "reached or not"; a roll-up reads its objectives
    if kr.target_value is None and kr.target_change_pct is None:
        return "a metric key result needs target_value or target_change_pct"
    if kr.target_value is not None and kr.target_change_pct is not None:
        return "give either target_value or target_change_pct, not both"
    if kr.direction not in ("increase", "decrease"):
        return None
    if kr.direction == "decrease" and kr.aggregation == "sum" and _is_relative(kr):
        # A relative sum starts at 0 and grows all cycle, so "decrease" would reward growth.
        return (
            "a cycle's sum only grows, so it cannot decrease against last cycle: "
            "use direction at_most with target_change_pct (e.g. -10 for 10% less)"
        )
    if _is_relative(kr):
        if kr.target_change_pct == 0 and kr.aggregation != "sum":
            return "target_change_pct 0 makes the target equal to the baseline start"
        return None
    start = kr.start_value if kr.start_value is not None else 0.0
    target = (
        kr.target_value
        if kr.target_value is not None
        else _grow(start, kr.target_change_pct or 0.0)
    )
    if target == start:
        return f"target ({target:g}) equals start ({start:g}): progress would divide by zero"
    return None


def _static_bounds(kr: KeyResultDef) -> _Bounds:
    start = kr.start_value if kr.start_value is not None else 0.0
    if kr.target_value is not None:
        return _Bounds(start, kr.target_value)
    assert kr.target_change_pct is not None  # validate_definition guarantees one of them
    return _Bounds(start, _grow(start, kr.target_change_pct))


def _relative_bounds(kr: KeyResultDef, baseline: float | None) -> _Bounds | None:
    if baseline is None:
        return None
    assert kr.target_change_pct is not None
    start = 0.0 if kr.aggregation == "sum" else baseline
    bounds = _Bounds(start, _grow(baseline, kr.target_change_pct))
    if kr.direction in ("increase", "decrease") and bounds.target == bounds.start:
        return None  # a baseline of 0 cannot be grown by a percentage
    return bounds


# --- reductions -------------------------------------------------------------------------------


def _roles(aggregation: Aggregation) -> tuple[str, ...]:
    return ("numerator", "denominator") if aggregation == "ratio" else ("value",)


def _group_names(series: Mapping[SeriesKey, SeriesStats], aggregation: Aggregation) -> list[str]:
    roles = _roles(aggregation)
    return sorted({group for group, role in series if role in roles})


def _reduce(stats: SeriesStats | None, aggregation: Aggregation) -> float | None:
    if stats is None or stats.n == 0:
        return None
    match aggregation:
        case "sum" | "ratio":
            return stats.total
        case "last":
            return stats.last_value
        case "avg":
            return stats.total / stats.n
        case "min":
            return stats.minimum
        case "max":
            return stats.maximum


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    """None over a denominator of 0, and over one so near 0 that the rate overflows a float."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    rate = numerator / denominator
    return rate if math.isfinite(rate) else None


def _group_value(
    series: Mapping[SeriesKey, SeriesStats], group: str, aggregation: Aggregation
) -> float | None:
    if aggregation == "ratio":
        return _ratio(
            _reduce(series.get((group, "numerator")), "sum"),
            _reduce(series.get((group, "denominator")), "sum"),
        )
    return _reduce(series.get((group, "value")), aggregation)


def _combined_value(
    series: Mapping[SeriesKey, SeriesStats], aggregation: Aggregation
) -> float | None:
    """Groups add up; a ratio adds numerators and denominators separately (never the rates)."""
    if aggregation == "ratio":
        parts: dict[str, list[float]] = {"numerator": [], "denominator": []}
        for (_, role), stats in series.items():
            value = _reduce(stats, "sum")
            if role in parts and value is not None:
                parts[role].append(value)
        if not parts["numerator"] or not parts["denominator"]:
            return None
        return _ratio(math.fsum(parts["numerator"]), math.fsum(parts["denominator"]))
    values = [
        value
        for group in _group_names(series, aggregation)
        if (value := _group_value(series, group, aggregation)) is not None
    ]
    return math.fsum(values) if values else None


# --- progress formulas ------------------------------------------------------------------------


def _clamp(p: float) -> float:
    return min(max(p, 0.0), 1.0)


def _reportable(value: float | None) -> float | None:
    """A figure JSON can carry: an attainment over a target a hair from its start can overflow
    to infinity (its clamped progress is still exact), and no response may hold one."""
    return value if value is not None and math.isfinite(value) else None


def _raw_progress(direction: Direction, current: float, bounds: _Bounds) -> float:
    """SPEC's p, unclamped (the attainment)."""
    target = bounds.target
    match direction:
        case "increase" | "decrease":
            return (current - bounds.start) / (target - bounds.start)
        case "at_least":
            if current >= target:
                return 1.0
            return current / target if target > 0 else 0.0
        case "at_most":
            if current <= target:
                return 1.0
            # With a target of 0 (or below) any excess is total failure, not a division by 0.
            return max(0.0, 1 - (current - target) / target) if target > 0 else 0.0


def _round_score(progress: float) -> float:
    return float(Decimal(repr(progress)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _pace_status(progress: float, expected: float) -> Status:
    if progress >= 1 - _EPS:
        return "done"
    if progress >= expected - _ON_TRACK_MARGIN - _EPS:
        return "on_track"
    if progress >= expected - _AT_RISK_MARGIN - _EPS:
        return "at_risk"
    return "off_track"


def _threshold_status(
    raw: float, forecast_progress: float | None, cycle: Cycle, as_of: date
) -> Status:
    """For at_least/at_most: pace means nothing for a level, what it will be at the end does.

    A threshold that holds before the end is `on_track`, not `done`: a level can still fall
    back (a conversion rate, a cost per lead), so only the cycle's end settles it. Two
    partnerships of three, forecast at 4.4 by the end, is on track, not off.
    """
    holds = raw >= 1 - _EPS
    if as_of > cycle.end:
        return "done" if holds else "off_track"
    if holds or (forecast_progress is not None and forecast_progress >= 1 - _EPS):
        return "on_track"
    if raw >= _THRESHOLD_AT_RISK - _EPS:
        return "at_risk"
    return "off_track"


# --- forecast ---------------------------------------------------------------------------------


def _least_squares_at(stats: SeriesStats, x: float) -> float | None:
    """Read the fitted line at x, from the sums alone (what SQL hands over)."""
    if stats.n == 0:
        return None
    denominator = stats.n * stats.sxx - stats.sx * stats.sx
    if denominator == 0:  # a single day (all x equal): no slope, the best guess is the mean
        return stats.sy / stats.n
    slope = (stats.n * stats.sxy - stats.sx * stats.sy) / denominator
    intercept = (stats.sy - slope * stats.sx) / stats.n
    return intercept + slope * x


def _group_forecast(
    series: Mapping[SeriesKey, SeriesStats],
    group: str,
    kr: KeyResultDef,
    cycle: Cycle,
    elapsed: int,
) -> float | None:
    value = _group_value(series, group, kr.aggregation)
    if value is None:
        return None
    match kr.aggregation:
        case "ratio":
            return value  # a rate has no run rate; today's rate is the best estimate
        case "sum":
            return value * cycle.total_days / elapsed
        case _:
            return _least_squares_at(series[(group, "value")], float(cycle.total_days - 1))


# --- key result progress ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Scored:
    group: str
    value: float | None
    bounds: _Bounds | None
    raw: float | None


def _progress(
    raw: float | None,
    status: Status,
    as_of: date,
    expected: float,
    *,
    current: float | None = None,
    start: float | None = None,
    target: float | None = None,
    forecast: float | None = None,
    forecast_progress: float | None = None,
    last_date: date | None,
    stale: bool,
    groups: tuple[GroupProgress, ...] = (),
) -> Progress:
    """Every outcome as one Progress; with no `raw` (no data, no baseline) nothing is scored."""
    progress = None if raw is None else _clamp(raw)
    return Progress(
        as_of=as_of,
        current_value=_reportable(current),
        start_value=_reportable(start),
        target_value=_reportable(target),
        progress=progress,
        attainment=_reportable(raw),
        expected_progress=expected,
        score=None if progress is None else _round_score(progress),
        status=status,
        forecast_value=_reportable(forecast),
        forecast_progress=_reportable(forecast_progress),
        last_observation_date=last_date,
        stale=stale,
        groups=_reportable_groups(groups),
    )


def _ends(bounds: _Bounds | None) -> tuple[float | None, float | None]:
    return (None, None) if bounds is None else (bounds.start, bounds.target)


def _reportable_groups(groups: tuple[GroupProgress, ...]) -> tuple[GroupProgress, ...]:
    return tuple(
        GroupProgress(g.group, _reportable(g.current_value), _reportable(g.progress))
        for g in groups
    )


def _weakest(scored: Iterable[_Scored]) -> _Scored | None:
    candidates = [s for s in scored if s.raw is not None]
    if not candidates:
        return None
    return min(candidates, key=lambda s: (s.raw, s.group))


def compute_progress(
    kr: KeyResultDef,
    cycle: Cycle,
    as_of: date,
    *,
    current: Mapping[SeriesKey, SeriesStats],
    baseline: Mapping[SeriesKey, SeriesStats] | None = None,
    days_with_data: int | None = None,
    stale: bool = False,
    rollup_progress: float | None = None,
    provisional_from: date | None = None,
) -> Progress:
    """Progress of one key result on `as_of`, per SPEC section 2.

    `current` holds the stats over W (`window`), `baseline` those over `baseline_window` (only
    read for a relative target). `days_with_data` counts distinct dates with any observation
    in W over all series; it gates the forecast (at least two days) and defaults to the largest
    `n` among the current series. `rollup_progress` is the already weight-averaged progress of
    the aligned objectives (see `weighted_progress`) and only matters for `kind="rollup"`.
    `provisional_from` is the earliest date in W the platform may still restate: which days
    those are depends on each metric's `settle_days` and the source's today, which the caller
    knows; it is reported as given, and only inside W.

    Raises ValueError for a definition that `validate_definition` rejects.
    """
    result = _compute(
        kr,
        cycle,
        as_of,
        current=current,
        baseline=baseline,
        days_with_data=days_with_data,
        stale=stale,
        rollup_progress=rollup_progress,
    )
    w = window(cycle, as_of)
    if provisional_from is None or w is None or not w[0] <= provisional_from <= w[1]:
        return result
    return replace(result, provisional_from=provisional_from)


def _compute(
    kr: KeyResultDef,
    cycle: Cycle,
    as_of: date,
    *,
    current: Mapping[SeriesKey, SeriesStats],
    baseline: Mapping[SeriesKey, SeriesStats] | None,
    days_with_data: int | None,
    stale: bool,
    rollup_progress: float | None,
) -> Progress:
    problem = validate_definition(kr)
    if problem is not None:
        raise ValueError(problem)
    w = window(cycle, as_of)
    series: Mapping[SeriesKey, SeriesStats] = current if w is not None else {}
    expected = expected_progress(cycle, as_of)
    last_dates = [s.last_date for s in series.values() if s.last_date is not None]
    last_date = max(last_dates) if last_dates else None

    if kr.kind == "rollup":
        if rollup_progress is None:
            return _progress(None, "no_data", as_of, expected, last_date=last_date, stale=stale)
        raw, status = rollup_progress, _pace_status(_clamp(rollup_progress), expected)
        return _progress(raw, status, as_of, expected, last_date=last_date, stale=stale)
    if kr.kind == "milestone":
        return _milestone(kr, cycle, as_of, expected, series, last_date, stale)
    return _metric(
        kr,
        cycle,
        as_of,
        expected,
        series,
        baseline or {},
        days_with_data,
        last_date,
        stale,
    )


def _milestone(
    kr: KeyResultDef,
    cycle: Cycle,
    as_of: date,
    expected: float,
    series: Mapping[SeriesKey, SeriesStats],
    last_date: date | None,
    stale: bool,
) -> Progress:
    """Reached or not; silence means "not yet", so a milestone is never `no_data`."""
    threshold = kr.target_value if kr.target_value is not None else 1.0

    def reached(value: float) -> float:
        return 1.0 if value >= threshold else 0.0

    scored = [
        _Scored(g, v, None, reached(v if v is not None else 0.0))
        for g in _group_names(series, kr.aggregation)
        for v in [_group_value(series, g, kr.aggregation)]
    ]
    if kr.group_rule == "each":
        weakest = _weakest(scored)
        current = 0.0 if weakest is None or weakest.value is None else weakest.value
        raw = 0.0 if weakest is None or weakest.raw is None else weakest.raw
    else:
        combined = _combined_value(series, kr.aggregation)
        current = combined if combined is not None else 0.0
        raw = reached(current)
    if raw >= 1:
        status: Status = "done"
    else:
        status = "on_track" if as_of <= cycle.end else "off_track"
    return _progress(
        raw,
        status,
        as_of,
        expected,
        current=current,
        start=kr.start_value,
        target=threshold,
        last_date=last_date,
        stale=stale,
        groups=tuple(GroupProgress(s.group, s.value, s.raw) for s in scored),
    )


def _metric(
    kr: KeyResultDef,
    cycle: Cycle,
    as_of: date,
    expected: float,
    series: Mapping[SeriesKey, SeriesStats],
    baseline: Mapping[SeriesKey, SeriesStats],
    days_with_data: int | None,
    last_date: date | None,
    stale: bool,
) -> Progress:
    agg = kr.aggregation
    relative = _is_relative(kr)
    static = None if relative else _static_bounds(kr)
    names = _group_names(series, agg)

    combined_bounds = static or _relative_bounds(kr, _combined_value(baseline, agg))

    def group_bounds(group: str) -> _Bounds | None:
        # `each` grows every group from its own baseline; `combine` shares one start/target.
        if static is None and kr.group_rule == "each":
            return _relative_bounds(kr, _group_value(baseline, group, agg))
        return combined_bounds

    scored: list[_Scored] = []
    for group in names:
        value = _group_value(series, group, agg)
        bounds = group_bounds(group)
        raw = (
            None if value is None or bounds is None else _raw_progress(kr.direction, value, bounds)
        )
        scored.append(_Scored(group, value, bounds, raw))
    groups = tuple(
        GroupProgress(s.group, s.value, None if s.raw is None else _clamp(s.raw)) for s in scored
    )

    if days_with_data is None:
        days_with_data = max((s.n for s in series.values()), default=0)
    elapsed = _elapsed_days(cycle, as_of)
    can_forecast = days_with_data >= 2 and elapsed > 0
    forecasts = {
        s.group: _group_forecast(series, s.group, kr, cycle, elapsed) if can_forecast else None
        for s in scored
    }

    def no_data(bounds: _Bounds | None) -> Progress:
        start, target = _ends(bounds)
        return _progress(
            None,
            "no_data",
            as_of,
            expected,
            start=start,
            target=target,
            last_date=last_date,
            stale=stale,
            groups=groups,
        )

    if kr.group_rule == "each":
        if all(s.value is None for s in scored):
            return no_data(static)
        weakest = _weakest(scored)
        forecast_value, forecast_progress = _weakest_forecast(kr, scored, forecasts)
        if weakest is None or weakest.raw is None or weakest.bounds is None:
            return _progress(
                None,
                "no_baseline",
                as_of,
                expected,
                last_date=last_date,
                stale=stale,
                groups=groups,
            )
        current, bounds, raw = weakest.value, weakest.bounds, weakest.raw
    else:
        combined = _combined_value(series, agg)
        if combined is None:
            return no_data(combined_bounds)
        forecast_value = _combined_forecast(kr, combined, scored, forecasts, cycle, elapsed)
        if combined_bounds is None:
            return _progress(
                None,
                "no_baseline",
                as_of,
                expected,
                current=combined,
                forecast=forecast_value,
                last_date=last_date,
                stale=stale,
                groups=groups,
            )
        current, bounds = combined, combined_bounds
        raw = _raw_progress(kr.direction, combined, bounds)
        forecast_progress = (
            None if forecast_value is None else _raw_progress(kr.direction, forecast_value, bounds)
        )

    if kr.direction in ("at_least", "at_most"):
        status = _threshold_status(raw, forecast_progress, cycle, as_of)
    else:
        status = _pace_status(_clamp(raw), expected)
    return _progress(
        raw,
        status,
        as_of,
        expected,
        current=current,
        start=bounds.start,
        target=bounds.target,
        forecast=forecast_value,
        forecast_progress=forecast_progress,
        last_date=last_date,
        stale=stale,
        groups=groups,
    )


def _combined_forecast(
    kr: KeyResultDef,
    combined: float,
    scored: list[_Scored],
    forecasts: Mapping[str, float | None],
    cycle: Cycle,
    elapsed: int,
) -> float | None:
    if not any(f is not None for f in forecasts.values()):
        return None
    if kr.aggregation == "ratio":
        return combined
    if kr.aggregation == "sum":
        return combined * cycle.total_days / elapsed
    return math.fsum(f for s in scored if (f := forecasts[s.group]) is not None)


def _weakest_forecast(
    kr: KeyResultDef, scored: list[_Scored], forecasts: Mapping[str, float | None]
) -> tuple[float | None, float | None]:
    """The group expected to end lowest *against its own target* sets the `each` forecast."""
    candidates = [
        (_raw_progress(kr.direction, f, s.bounds), s.group, f)
        for s in scored
        if s.bounds is not None and (f := forecasts[s.group]) is not None
    ]
    if not candidates:
        return None, None
    forecast_progress, _, forecast_value = min(candidates)
    return forecast_value, forecast_progress


def progress_from_observations(
    kr: KeyResultDef,
    cycle: Cycle,
    as_of: date,
    observations: Iterable[Observation],
    *,
    stale: bool = False,
    rollup_progress: float | None = None,
    provisional_from: date | None = None,
) -> Progress:
    """`compute_progress` from raw observations, for tests and small callers without SQL."""
    rows = list(observations)
    w = window(cycle, as_of)
    if w is None:
        current: dict[SeriesKey, SeriesStats] = {}
        days = 0
    else:
        current = stats_by_series(rows, w[0], w[1], cycle.start)
        days = len({o.date for o in rows if w[0] <= o.date <= w[1]})
    b_start, b_end = baseline_window(cycle)
    return compute_progress(
        kr,
        cycle,
        as_of,
        current=current,
        baseline=stats_by_series(rows, b_start, b_end, b_start),
        days_with_data=days,
        stale=stale,
        rollup_progress=rollup_progress,
        provisional_from=provisional_from,
    )


# --- objectives -------------------------------------------------------------------------------


def weighted_progress(items: Iterable[tuple[float, float | None]]) -> float | None:
    """Weighted mean of the (weight, progress) pairs that have a progress.

    A key result without progress (no data, no baseline) is left out rather than counted as 0:
    a silent connector must not look like failure. A negative or non-finite weight raises
    ValueError, because averaging with one yields a number outside [0, 1] that looks valid.
    """
    pairs: list[tuple[float, float]] = []
    for weight, progress in items:
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight must be a finite number >= 0, got {weight}")
        if progress is not None:
            pairs.append((weight, progress))
    heaviest = max((w for w, _ in pairs), default=0.0)
    if heaviest == 0:
        return None
    # Relative weights keep tiny (even subnormal) weights from losing precision on multiplying.
    scaled = [(w / heaviest, p) for w, p in pairs]
    total_weight = math.fsum(w for w, _ in scaled)
    result = math.fsum(w * p for w, p in scaled) / total_weight
    return min(max(result, min(p for _, p in pairs)), max(p for _, p in pairs))


def objective_progress(
    cycle: Cycle, as_of: date, key_results: Iterable[tuple[float, Progress]]
) -> ObjectiveProgress:
    """An objective is its key results weight-averaged, judged against the same pace."""
    pairs = list(key_results)
    progress = weighted_progress((weight, kr.progress) for weight, kr in pairs)
    expected = expected_progress(cycle, as_of)
    last_dates = [kr.last_observation_date for _, kr in pairs if kr.last_observation_date]
    provisional = [kr.provisional_from for _, kr in pairs if kr.provisional_from]
    return ObjectiveProgress(
        as_of=as_of,
        progress=progress,
        expected_progress=expected,
        score=None if progress is None else _round_score(progress),
        status="no_data" if progress is None else _pace_status(progress, expected),
        last_observation_date=max(last_dates) if last_dates else None,
        stale=any(kr.stale for _, kr in pairs),
        provisional_from=min(provisional) if provisional else None,
    )
