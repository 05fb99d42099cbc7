"""Rules of SPEC section 2 that have a shape, checked over generated key results and series."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, timedelta

from hypothesis import assume, given
from hypothesis import strategies as st

from app.progress import (
    Aggregation,
    Cycle,
    GroupRule,
    KeyResultDef,
    Observation,
    baseline_window,
    compute_progress,
    expected_progress,
    progress_from_observations,
    stats_by_series,
    stats_from_daily,
    validate_definition,
    weighted_progress,
    window,
)

values = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False)
maybe_values = st.none() | values


@st.composite
def cycles(draw: st.DrawFn) -> Cycle:
    start = draw(st.dates(date(2020, 1, 1), date(2030, 12, 31)))
    return Cycle(start, start + timedelta(days=draw(st.integers(0, 120))))


@st.composite
def as_of_for(draw: st.DrawFn, cycle: Cycle) -> date:
    return cycle.start + timedelta(days=draw(st.integers(-10, cycle.total_days + 10)))


@st.composite
def observations_for(draw: st.DrawFn, cycle: Cycle) -> list[Observation]:
    """Figures in the baseline window, the cycle and a little after, in every group and role."""
    span = cycle.total_days
    return draw(
        st.lists(
            st.builds(
                Observation,
                date=st.integers(-span - 2, span + 2).map(
                    lambda n: cycle.start + timedelta(days=n)
                ),
                value=values,
                group=st.sampled_from(["", "a", "b"]),
                role=st.sampled_from(["value", "value", "numerator", "denominator"]),
            ),
            max_size=40,
        )
    )


valid_definitions = st.builds(
    KeyResultDef,
    kind=st.sampled_from(["metric", "metric", "milestone", "rollup"]),
    direction=st.sampled_from(["increase", "decrease", "at_least", "at_most"]),
    aggregation=st.sampled_from(["sum", "last", "avg", "min", "max", "ratio"]),
    group_rule=st.sampled_from(["combine", "each"]),
    start_value=maybe_values,
    target_value=maybe_values,
    target_change_pct=st.none() | st.floats(-100, 300, allow_nan=False),
).filter(lambda kr: validate_definition(kr) is None)


@given(data=st.data(), kr=valid_definitions, rollup=st.none() | st.floats(-1, 2))
def test_progress_and_score_stay_within_zero_and_one(
    data: st.DataObject, kr: KeyResultDef, rollup: float | None
) -> None:
    cycle = data.draw(cycles())
    p = progress_from_observations(
        kr,
        cycle,
        data.draw(as_of_for(cycle)),
        data.draw(observations_for(cycle)),
        rollup_progress=rollup,
    )
    assert (p.progress is None) == (p.status in ("no_data", "no_baseline"))
    if p.progress is not None:
        assert 0 <= p.progress <= 1
        assert p.score is not None
        assert 0 <= p.score <= 1
        assert abs(p.score - p.progress) <= 0.05 + 1e-9
    assert 0 <= p.expected_progress <= 1
    for group in p.groups:
        assert group.progress is None or 0 <= group.progress <= 1


GROUP_RULES: list[GroupRule] = ["combine", "each"]
MIRRORED: dict[Aggregation, Aggregation] = {
    "sum": "sum",
    "last": "last",
    "avg": "avg",
    "min": "max",  # the smallest of negated values is the negated largest
    "max": "min",
}


@given(
    data=st.data(),
    aggregation=st.sampled_from(sorted(MIRRORED)),
    group_rule=st.sampled_from(GROUP_RULES),
    start=values,
    target=values,
)
def test_decrease_is_the_mirror_image_of_increase(
    data: st.DataObject,
    aggregation: Aggregation,
    group_rule: GroupRule,
    start: float,
    target: float,
) -> None:
    assume(start != target)
    cycle = data.draw(cycles())
    as_of = data.draw(as_of_for(cycle))
    rows = data.draw(observations_for(cycle))
    up = KeyResultDef(
        direction="increase",
        aggregation=aggregation,
        group_rule=group_rule,
        start_value=start,
        target_value=target,
    )
    down = replace(
        up,
        direction="decrease",
        aggregation=MIRRORED[aggregation],
        start_value=-start,
        target_value=-target,
    )
    negated = [replace(o, value=-o.value) for o in rows]
    a = progress_from_observations(up, cycle, as_of, rows)
    b = progress_from_observations(down, cycle, as_of, negated)
    assert (a.progress, a.attainment, a.status, a.score) == (
        b.progress,
        b.attainment,
        b.status,
        b.score,
    )
    assert a.forecast_progress == b.forecast_progress
    assert a.current_value == (None if b.current_value is None else -b.current_value)


@given(cycle=cycles(), first=st.integers(-200, 200), later_by=st.integers(0, 200))
def test_a_later_as_of_never_lowers_expected_progress(
    cycle: Cycle, first: int, later_by: int
) -> None:
    earlier = cycle.start + timedelta(days=first)
    later = earlier + timedelta(days=later_by)
    assert expected_progress(cycle, earlier) <= expected_progress(cycle, later)


@given(data=st.data(), kr=valid_definitions)
def test_the_order_of_observations_changes_nothing(data: st.DataObject, kr: KeyResultDef) -> None:
    cycle = data.draw(cycles())
    as_of = data.draw(as_of_for(cycle))
    rows = data.draw(observations_for(cycle))
    shuffled = data.draw(st.permutations(rows))
    assert progress_from_observations(kr, cycle, as_of, rows) == progress_from_observations(
        kr, cycle, as_of, shuffled
    )


@given(
    points=st.lists(st.tuples(st.dates(date(2026, 1, 1), date(2026, 3, 31)), values), max_size=50),
    data=st.data(),
)
def test_stats_from_daily_does_not_depend_on_order(
    points: list[tuple[date, float]], data: st.DataObject
) -> None:
    origin = date(2026, 1, 1)
    assert stats_from_daily(points, origin) == stats_from_daily(
        data.draw(st.permutations(points)), origin
    )


@given(
    data=st.data(),
    target=st.floats(1, 1e6),
    amounts=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 60), st.floats(0, 1e5)),
        min_size=1,
        max_size=30,
    ),
)
def test_each_never_beats_combine_for_non_negative_sums(
    data: st.DataObject, target: float, amounts: list[tuple[str, int, float]]
) -> None:
    # True only where adding groups can only raise the figure and more is better: non-negative
    # daily values, `sum`, `increase` from 0. (With negative values or `decrease` it fails.)
    cycle = data.draw(cycles())
    as_of = data.draw(as_of_for(cycle))
    rows = [Observation(cycle.start + timedelta(days=n), v, g) for g, n, v in amounts]
    combine = KeyResultDef(target_value=target)
    each = replace(combine, group_rule="each")
    c = progress_from_observations(combine, cycle, as_of, rows)
    e = progress_from_observations(each, cycle, as_of, rows)
    assert (c.progress is None) == (e.progress is None)
    if c.progress is not None and e.progress is not None:
        assert e.progress <= c.progress


@given(
    items=st.lists(
        st.tuples(st.floats(0, 100), st.none() | st.floats(0, 1)),
        max_size=20,
    )
)
def test_weighted_progress_lies_between_its_parts(items: list[tuple[float, float | None]]) -> None:
    result = weighted_progress(items)
    counted = [p for w, p in items if p is not None and w > 0]
    if not counted:
        assert result is None
        return
    assert result is not None
    assert min(counted) - 1e-12 <= result <= max(counted) + 1e-12


@given(data=st.data(), kr=valid_definitions)
def test_stats_route_and_observation_route_agree(data: st.DataObject, kr: KeyResultDef) -> None:
    # The dashboard hands in SQL-built stats; they must mean what the observations mean.
    cycle = data.draw(cycles())
    as_of = data.draw(as_of_for(cycle))
    rows = data.draw(observations_for(cycle))
    w = window(cycle, as_of)
    b_start, b_end = baseline_window(cycle)
    current = {} if w is None else stats_by_series(rows, w[0], w[1], cycle.start)
    via_stats = compute_progress(
        kr, cycle, as_of, current=current, baseline=stats_by_series(rows, b_start, b_end, b_start)
    )
    direct = progress_from_observations(kr, cycle, as_of, rows)
    assert (via_stats.progress, via_stats.status, via_stats.current_value) == (
        direct.progress,
        direct.status,
        direct.current_value,
    )


#: Anything the API lets a figure or a key result hold: the whole bound, and the tiniest
#: magnitudes too (a rate over a denominator a hair above 0, a target a hair from its start).
bounded = st.floats(-1e15, 1e15, allow_nan=False) | st.sampled_from([5e-324, -5e-324, 1e-300])
bounded_definitions = st.builds(
    KeyResultDef,
    kind=st.sampled_from(["metric", "metric", "milestone"]),
    direction=st.sampled_from(["increase", "decrease", "at_least", "at_most"]),
    aggregation=st.sampled_from(["sum", "last", "avg", "min", "max", "ratio"]),
    group_rule=st.sampled_from(["combine", "each"]),
    start_value=st.none() | bounded,
    target_value=st.none() | bounded,
    target_change_pct=st.none() | st.floats(-100, 1e6, allow_nan=False),
).filter(lambda kr: validate_definition(kr) is None)


@given(data=st.data(), kr=bounded_definitions)
def test_every_figure_is_finite_or_null_for_any_bounded_input(
    data: st.DataObject, kr: KeyResultDef
) -> None:
    # JSON carries no NaN or infinity: a response holding one can't be written.
    cycle = data.draw(cycles())
    rows = data.draw(
        st.lists(
            st.builds(
                Observation,
                date=st.integers(-cycle.total_days, cycle.total_days).map(
                    lambda n: cycle.start + timedelta(days=n)
                ),
                value=bounded,
                group=st.sampled_from(["", "a"]),
                role=st.sampled_from(["value", "numerator", "denominator"]),
            ),
            max_size=30,
        )
    )
    p = progress_from_observations(kr, cycle, data.draw(as_of_for(cycle)), rows)
    figures = [
        p.current_value,
        p.start_value,
        p.target_value,
        p.progress,
        p.attainment,
        p.expected_progress,
        p.score,
        p.forecast_value,
        p.forecast_progress,
    ] + [f for g in p.groups for f in (g.current_value, g.progress)]
    assert all(f is None or math.isfinite(f) for f in figures), p
