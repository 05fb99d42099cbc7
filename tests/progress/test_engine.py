"""SPEC section 2, figure by figure. Every expected number is worked out by hand in a comment."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest

from app.progress import (
    Aggregation,
    Cycle,
    GroupProgress,
    GroupRule,
    KeyResultDef,
    Observation,
    Progress,
    Role,
    SeriesStats,
    baseline_window,
    compute_progress,
    expected_progress,
    objective_progress,
    progress_from_observations,
    stats_by_series,
    stats_from_daily,
    validate_definition,
    weighted_progress,
    window,
)

# 2026-Q3: July 31 + August 31 + September 30 = 92 days.
Q3 = Cycle(date(2026, 7, 1), date(2026, 9, 30))
MID_AUGUST = date(2026, 8, 15)  # day 31 + 15 = 46 of 92 -> expected 0.5
# A ten-day cycle keeps least-squares figures small enough to work by hand.
TEN = Cycle(date(2026, 1, 1), date(2026, 1, 10))


def approx(expected: float) -> Any:
    """pytest.approx, typed loosely so that it can sit inside tuples and dataclasses."""
    return pytest.approx(expected)


def day(n: int, cycle: Cycle = Q3) -> date:
    """The date n days after the cycle start (day(0) is the first day)."""
    return cycle.start + timedelta(days=n)


def obs(
    n: int, value: float, group: str = "", role: Role = "value", cycle: Cycle = Q3
) -> Observation:
    return Observation(day(n, cycle), value, group, role)


def daily(
    values: list[float], group: str = "", start: int = 0, cycle: Cycle = Q3
) -> list[Observation]:
    return [obs(start + i, v, group, cycle=cycle) for i, v in enumerate(values)]


def run(
    kr: KeyResultDef, observations: list[Observation], as_of: date = MID_AUGUST, cycle: Cycle = Q3
) -> Progress:
    return progress_from_observations(kr, cycle, as_of, observations)


SUM_3000 = KeyResultDef(target_value=3000)


# --- windows and time -------------------------------------------------------------------------


def test_total_days_counts_both_ends() -> None:
    assert Q3.total_days == 92
    assert Cycle(date(2026, 1, 1), date(2026, 1, 1)).total_days == 1


def test_cycle_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        Cycle(date(2026, 2, 1), date(2026, 1, 31))


def test_window_before_inside_and_after_the_cycle() -> None:
    assert window(Q3, date(2026, 6, 30)) is None
    assert window(Q3, date(2026, 7, 1)) == (date(2026, 7, 1), date(2026, 7, 1))
    assert window(Q3, MID_AUGUST) == (date(2026, 7, 1), MID_AUGUST)
    assert window(Q3, date(2026, 12, 1)) == (date(2026, 7, 1), date(2026, 9, 30))


def test_baseline_window_is_as_long_as_the_cycle_and_ends_the_day_before() -> None:
    # 92 days ending 2026-06-30: June 30 + May 31 + April 30 = 91 days, plus March 31.
    assert baseline_window(Q3) == (date(2026, 3, 31), date(2026, 6, 30))
    assert baseline_window(TEN) == (date(2025, 12, 22), date(2025, 12, 31))


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (date(2026, 6, 30), 0.0),  # before: W empty
        (date(2026, 7, 1), 1 / 92),  # first day counts
        (MID_AUGUST, 0.5),  # 46 / 92
        (date(2026, 9, 30), 1.0),  # last day: 92 / 92
        (date(2027, 1, 1), 1.0),  # after: capped at total
    ],
)
def test_expected_progress(as_of: date, expected: float) -> None:
    assert expected_progress(Q3, as_of) == approx(expected)


# --- series statistics ------------------------------------------------------------------------


def test_stats_from_daily_sums_a_repeated_day_first() -> None:
    # 07-01: 2 + 3 = 5 at x=0; 07-03: 4 at x=2.
    # n 2, total 9, min 4, max 5, last 07-03 = 4; sx 2, sy 9, sxy 0*5 + 2*4 = 8, sxx 4.
    stats = stats_from_daily([(day(0), 2.0), (day(2), 4.0), (day(0), 3.0)], Q3.start)
    assert stats == SeriesStats(
        n=2,
        total=9.0,
        minimum=4.0,
        maximum=5.0,
        last_date=day(2),
        last_value=4.0,
        sx=2.0,
        sy=9.0,
        sxy=8.0,
        sxx=4.0,
    )


def test_stats_from_daily_of_nothing() -> None:
    assert stats_from_daily([], Q3.start) == SeriesStats(0, 0.0, None, None, None, None, 0, 0, 0, 0)


def test_stats_by_series_keeps_only_the_window_and_splits_group_and_role() -> None:
    rows = [
        obs(-1, 100),  # 06-30: before the window
        obs(0, 1),
        obs(1, 2, "x"),
        obs(1, 7, "x", "numerator"),
        obs(5, 100),  # after the window end below
    ]
    stats = stats_by_series(rows, day(0), day(4), Q3.start)
    assert set(stats) == {("", "value"), ("x", "value"), ("x", "numerator")}
    assert stats[("", "value")].total == 1
    assert stats[("x", "numerator")].last_value == 7


# --- the SPEC example -------------------------------------------------------------------------


def test_spec_example_block() -> None:
    # 30 new followers a day on LinkedIn for the 46 days of W: current 46 * 30 = 1380.
    # progress (1380 - 0) / (3000 - 0) = 0.46; expected 46 / 92 = 0.5; score round(0.46) = 0.5;
    # 0.46 >= 0.5 - 0.10 -> on_track; forecast 1380 * 92 / 46 = 2760, 2760 / 3000 = 0.92.
    p = run(SUM_3000, daily([30.0] * 46, "linkedin"))
    assert p.as_of == MID_AUGUST
    assert p.current_value == approx(1380)
    assert p.start_value == 0
    assert p.target_value == 3000
    assert p.progress == approx(0.46)
    assert p.attainment == approx(0.46)
    assert p.expected_progress == approx(0.5)
    assert p.score == 0.5
    assert p.status == "on_track"
    assert p.forecast_value == approx(2760)
    assert p.forecast_progress == approx(0.92)
    assert p.last_observation_date == MID_AUGUST
    assert p.stale is False
    assert p.groups == (GroupProgress("linkedin", approx(1380), approx(0.46)),)


def test_stale_is_passed_through() -> None:
    p = progress_from_observations(SUM_3000, Q3, MID_AUGUST, daily([1.0]), stale=True)
    assert p.stale is True


# --- directions -------------------------------------------------------------------------------


def test_decrease_moves_from_start_towards_a_lower_target() -> None:
    # Cost per lead from 50 down to 30; average of 45 and 35 = 40: (40 - 50) / (30 - 50) = 0.5.
    kr = KeyResultDef(direction="decrease", aggregation="avg", start_value=50, target_value=30)
    p = run(kr, daily([45.0, 35.0]))
    assert p.current_value == 40
    assert p.progress == approx(0.5)


def test_decrease_beyond_target_is_done_with_attainment_above_one() -> None:
    # (20 - 50) / (30 - 50) = 1.5 -> progress 1, attainment 1.5.
    kr = KeyResultDef(direction="decrease", aggregation="last", start_value=50, target_value=30)
    p = run(kr, daily([20.0]))
    assert (p.progress, p.attainment, p.status) == (1.0, approx(1.5), "done")


def test_progress_below_start_clamps_to_zero() -> None:
    # Followers fell from 1000 to 900 against a target of 1500: (900 - 1000) / 500 = -0.2.
    kr = KeyResultDef(aggregation="last", start_value=1000, target_value=1500)
    p = run(kr, daily([900.0]))
    assert (p.progress, p.attainment, p.score) == (0.0, approx(-0.2), 0.0)


def test_at_least_not_met_is_current_over_target_and_off_track() -> None:
    # 0.45 / 0.6 = 0.75; the threshold does not hold, so off_track whatever the pace.
    kr = KeyResultDef(direction="at_least", aggregation="last", target_value=0.6)
    p = run(kr, daily([0.45]))
    assert p.progress == approx(0.75)
    assert p.status == "off_track"


def test_at_least_met_is_on_track_during_the_cycle_and_done_after() -> None:
    kr = KeyResultDef(direction="at_least", aggregation="last", target_value=0.6)
    during = run(kr, daily([0.7]))
    assert (during.progress, during.status) == (1.0, "on_track")
    last_day = run(kr, daily([0.7]), as_of=Q3.end)  # the last day still belongs to the cycle
    assert last_day.status == "on_track"
    after = run(kr, daily([0.7]), as_of=Q3.end + timedelta(days=1))
    assert after.status == "done"


def test_at_least_missed_after_the_cycle_is_off_track() -> None:
    kr = KeyResultDef(direction="at_least", aggregation="last", target_value=0.6)
    assert run(kr, daily([0.3]), as_of=date(2026, 10, 5)).status == "off_track"


def test_at_least_with_non_positive_target_not_met_is_zero() -> None:
    # Net promoter change at least 0, currently -5: not met and no ratio to take -> 0.
    kr = KeyResultDef(direction="at_least", aggregation="last", target_value=0)
    p = run(kr, daily([-5.0]))
    assert (p.progress, p.attainment, p.status) == (0.0, 0.0, "off_track")


def test_at_most_over_target() -> None:
    # Bounce rate at most 40, now 50: 1 - (50 - 40) / 40 = 0.75.
    kr = KeyResultDef(direction="at_most", aggregation="last", target_value=40)
    p = run(kr, daily([50.0]))
    assert p.progress == approx(0.75)
    assert p.status == "off_track"


def test_at_most_far_over_target_floors_at_zero() -> None:
    # 1 - (100 - 40) / 40 = -0.5 -> max(0, -0.5) = 0.
    kr = KeyResultDef(direction="at_most", aggregation="last", target_value=40)
    assert run(kr, daily([100.0])).attainment == 0.0


def test_at_most_met_is_on_track_then_done() -> None:
    kr = KeyResultDef(direction="at_most", aggregation="last", target_value=40)
    assert run(kr, daily([30.0])).status == "on_track"
    assert run(kr, daily([30.0]), as_of=date(2026, 10, 1)).status == "done"


@pytest.mark.parametrize(("value", "progress"), [(0.0, 1.0), (3.0, 0.0)])
def test_at_most_with_target_zero_never_divides_by_zero(value: float, progress: float) -> None:
    # Zero critical incidents: 0 holds (1); any incident is a miss (0), not a ZeroDivisionError.
    kr = KeyResultDef(direction="at_most", target_value=0)
    assert run(kr, daily([value])).progress == progress


# --- threshold status by forecast (SPEC section 2, Status) -------------------------------------
# Q3 has 92 days; on MID_AUGUST 46 have elapsed (expected 0.5). A level's forecast is the
# least-squares line read on day 91 (the cycle's last); a sum's is current * 92 / 46.


def test_at_least_behind_now_but_forecast_to_meet_it_is_on_track() -> None:
    # "2 of 3 partnerships": 1 signed by day 10, 2 by day 40; the line through (10, 1) and
    # (40, 2) rises 1/30 a day: 1 + (91 - 10) / 30 = 3.7 at the end >= 3 -> on_track, though
    # 2 / 3 = 0.667 is below 0.9.
    kr = KeyResultDef(direction="at_least", aggregation="last", target_value=3)
    p = run(kr, [obs(10, 1), obs(40, 2)])
    assert (p.current_value, p.progress, p.forecast_value) == (2, approx(2 / 3), approx(3.7))
    assert p.forecast_progress == 1.0
    assert p.status == "on_track"


def test_at_least_sum_on_run_rate_is_on_track() -> None:
    # 1 + 1 = 2 deals by day 46: run rate 2 * 92 / 46 = 4.0 >= 3 -> on_track.
    kr = KeyResultDef(direction="at_least", target_value=3)
    p = run(kr, [obs(0, 1), obs(40, 1)])
    assert (p.current_value, p.forecast_value, p.status) == (2, approx(4.0), "on_track")


def test_at_least_sum_off_its_run_rate_is_off_track() -> None:
    # 1 deal by day 46: run rate 1 * 92 / 46 = 2.0 < 3, and 1 / 3 = 0.333 < 0.9 -> off_track.
    kr = KeyResultDef(direction="at_least", target_value=3)
    p = run(kr, [obs(0, 1), obs(45, 0)])
    assert (p.forecast_value, p.progress, p.status) == (approx(2.0), approx(1 / 3), "off_track")


def test_at_least_close_but_forecast_to_miss_is_at_risk() -> None:
    # 0.58 then 0.56: 0.56 / 0.6 = 0.933 >= 0.9; the line falls 0.02 a day, to
    # 0.58 - 0.02 * 91 = -1.24 on day 91, short of 0.6 -> at_risk.
    kr = KeyResultDef(direction="at_least", aggregation="last", target_value=0.6)
    p = run(kr, daily([0.58, 0.56]))
    assert (p.progress, p.forecast_value) == (approx(0.56 / 0.6), approx(-1.24))
    assert p.status == "at_risk"


def test_at_least_holding_now_is_on_track_whatever_the_forecast() -> None:
    # 0.8 then 0.7 on day 30: 0.7 >= 0.6 holds now, so on_track, though the line reads
    # 0.8 - 91 / 300 = 0.497 on day 91: SPEC's "holds now or forecast meets it".
    kr = KeyResultDef(direction="at_least", aggregation="last", target_value=0.6)
    p = run(kr, [obs(0, 0.8), obs(30, 0.7)])
    assert (p.forecast_value, p.status) == (approx(0.8 - 91 / 300), "on_track")


def test_at_most_over_now_but_falling_below_it_is_on_track() -> None:
    # Cost per lead at most 40: 46 on day 0, 43 on day 30. 1 - (43 - 40) / 40 = 0.925; the line
    # falls 0.1 a day, to 46 - 9.1 = 36.9 <= 40 on day 91 -> on_track.
    kr = KeyResultDef(direction="at_most", aggregation="last", target_value=40)
    p = run(kr, [obs(0, 46), obs(30, 43)])
    assert (p.progress, p.forecast_value, p.status) == (approx(0.925), approx(36.9), "on_track")


def test_at_most_over_and_rising_is_at_risk_then_off_track() -> None:
    # 41 then 42: 1 - 2 / 40 = 0.95 >= 0.9 and rising -> at_risk; 44 then 45: 1 - 5 / 40 = 0.875
    # < 0.9 -> off_track.
    kr = KeyResultDef(direction="at_most", aggregation="last", target_value=40)
    assert run(kr, daily([41.0, 42.0])).status == "at_risk"
    assert run(kr, daily([44.0, 45.0])).status == "off_track"


def test_threshold_on_the_last_day_uses_the_forecast_and_after_it_only_the_figure() -> None:
    # 0.55 on day 90, 0.56 on day 91: 0.56 / 0.6 = 0.933, the line reads 0.56 on day 91 < 0.6.
    # On the last day the cycle still runs -> at_risk; once it is over, missed -> off_track.
    kr = KeyResultDef(direction="at_least", aggregation="last", target_value=0.6)
    points = [obs(90, 0.55), obs(91, 0.56)]
    assert run(kr, points, as_of=Q3.end).status == "at_risk"
    assert run(kr, points, as_of=Q3.end + timedelta(days=1)).status == "off_track"


def test_threshold_forecast_met_is_still_not_done_before_the_end() -> None:
    # Forecast 4.0 >= 3 but 2 < 3 now: on_track, never done, until the cycle is over.
    kr = KeyResultDef(direction="at_least", target_value=3)
    points = [obs(0, 1), obs(40, 1), obs(80, 1)]
    assert run(kr, points[:2]).status == "on_track"
    assert run(kr, points, as_of=Q3.end + timedelta(days=1)).status == "done"  # 3 >= 3


def test_threshold_each_group_reads_the_weakest_groups_forecast() -> None:
    # At least 3 partners in each market: de has 1 + 1 = 2, run rate 4.0; fr has 3 already.
    # The weakest, de (0.667), is forecast to make it -> on_track; fr alone at 1 (run rate 2.0)
    # would not.
    kr = KeyResultDef(direction="at_least", target_value=3, group_rule="each")
    p = run(kr, [obs(0, 1, "de"), obs(40, 1, "de"), obs(5, 3, "fr")])
    assert (p.current_value, p.forecast_value, p.status) == (2, approx(4.0), "on_track")
    behind = run(kr, [obs(0, 1, "de"), obs(40, 1, "de"), obs(5, 1, "fr"), obs(6, 0, "fr")])
    assert (behind.current_value, behind.status) == (1, "off_track")


# --- aggregations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aggregation", "current"),
    [
        ("sum", 190.0),  # 100 + 30 + 60
        ("last", 60.0),  # the value on the latest day (07-10), not the largest
        ("avg", 190 / 3),  # over the three days that have a value, not the 46 days of W
        ("min", 30.0),
        ("max", 100.0),
    ],
)
def test_aggregations(aggregation: Aggregation, current: float) -> None:
    kr = KeyResultDef(aggregation=aggregation, target_value=1000)
    rows = [obs(0, 100), obs(4, 30), obs(9, 60)]
    assert run(kr, rows).current_value == approx(current)


def test_observations_on_the_same_day_are_summed_before_reducing() -> None:
    # 07-01: 40 + 60 = 100 (e.g. two campaigns); 07-02: 50. max of daily values = 100, not 60.
    kr = KeyResultDef(aggregation="max", target_value=1000)
    assert run(kr, [obs(0, 40), obs(0, 60), obs(1, 50)]).current_value == 100


def test_last_on_a_repeated_day_is_that_days_sum() -> None:
    kr = KeyResultDef(aggregation="last", target_value=1000)
    assert run(kr, [obs(0, 5), obs(3, 7), obs(3, 8)]).current_value == 15


def test_ratio_combine_adds_numerators_and_denominators_not_rates() -> None:
    # crm: 10 customers / 100 leads = 0.1; paid: 30 / 50 = 0.6.
    # combined (10 + 30) / (100 + 50) = 40 / 150 = 0.2667, not (0.1 + 0.6) or their mean.
    # target 0.4 from 0: progress 0.2667 / 0.4 = 0.6667; groups against the same target:
    # crm 0.1 / 0.4 = 0.25, paid 0.6 / 0.4 = 1.5 -> 1.
    kr = KeyResultDef(aggregation="ratio", target_value=0.4)
    rows = [
        obs(0, 4, "crm", "numerator"),
        obs(1, 6, "crm", "numerator"),
        obs(0, 100, "crm", "denominator"),
        obs(0, 30, "paid", "numerator"),
        obs(2, 50, "paid", "denominator"),
    ]
    p = run(kr, rows)
    assert p.current_value == approx(40 / 150)
    assert p.progress == approx((40 / 150) / 0.4)
    assert p.groups == (
        GroupProgress("crm", approx(0.1), approx(0.25)),
        GroupProgress("paid", approx(0.6), 1.0),
    )


def test_ratio_each_scores_the_weakest_rate() -> None:
    # crm 0.1 -> 0.25 of 0.4; paid 0.6 -> met. each -> weakest crm: current 0.1, progress 0.25.
    kr = KeyResultDef(aggregation="ratio", group_rule="each", target_value=0.4)
    rows = [
        obs(0, 10, "crm", "numerator"),
        obs(0, 100, "crm", "denominator"),
        obs(0, 30, "paid", "numerator"),
        obs(0, 50, "paid", "denominator"),
    ]
    p = run(kr, rows)
    assert (p.current_value, p.progress) == (approx(0.1), approx(0.25))


def test_ratio_with_zero_denominator_has_no_value() -> None:
    kr = KeyResultDef(aggregation="ratio", target_value=0.4)
    rows = [obs(0, 3, role="numerator"), obs(0, 0, role="denominator")]
    p = run(kr, rows)
    assert (p.current_value, p.progress, p.status) == (None, None, "no_data")
    assert p.groups == (GroupProgress("", None, None),)


@pytest.mark.parametrize("group_rule", ["combine", "each"])
def test_ratio_over_a_denominator_too_near_zero_has_no_value(group_rule: GroupRule) -> None:
    # 1e15 / 5e-324 overflows a float: as with a denominator of 0, there is no rate to report.
    kr = KeyResultDef(aggregation="ratio", group_rule=group_rule, target_value=0.4)
    rows = [obs(0, 1e15, role="numerator"), obs(0, 5e-324, role="denominator")]
    p = run(kr, rows)
    assert (p.current_value, p.progress, p.status) == (None, None, "no_data")


def test_an_attainment_too_large_for_a_float_is_null_but_progress_is_exact() -> None:
    # Target a hair from the start: (1e15 - 0) / 1e-300 overflows; clamped, it is plainly done.
    kr = KeyResultDef(start_value=0, target_value=1e-300)
    p = run(kr, [obs(0, 1e15), obs(1, 1e15)])
    assert (p.current_value, p.progress, p.score, p.status) == (2e15, 1.0, 1.0, "done")
    assert (p.attainment, p.forecast_progress) == (None, None)
    assert p.groups == (GroupProgress("", 2e15, 1.0),)


def test_ratio_ignores_value_series_and_other_aggregations_ignore_ratio_roles() -> None:
    ratio = KeyResultDef(aggregation="ratio", target_value=1)
    rows = [obs(0, 1, role="numerator"), obs(0, 4, role="denominator"), obs(0, 99)]
    assert run(ratio, rows).current_value == 0.25
    assert run(SUM_3000, rows).current_value == 99


# --- group rules ------------------------------------------------------------------------------


def test_combine_adds_group_values_and_lists_each_group_against_the_target() -> None:
    # linkedin 1000 + x 500 = 1500 of 3000 -> 0.5; groups sorted by name:
    # linkedin 1000 / 3000 = 0.3333, x 500 / 3000 = 0.1667.
    p = run(SUM_3000, [obs(0, 300, "x"), obs(1, 200, "x"), obs(0, 1000, "linkedin")])
    assert p.current_value == 1500
    assert p.progress == approx(0.5)
    assert p.groups == (
        GroupProgress("linkedin", 1000, approx(1 / 3)),
        GroupProgress("x", 500, approx(1 / 6)),
    )


def test_combine_of_last_values_adds_each_groups_latest_figure() -> None:
    # Follower totals: linkedin latest 1200, x latest 800 -> 2000 of 4000 = 0.5.
    kr = KeyResultDef(aggregation="last", target_value=4000)
    rows = [obs(0, 1000, "linkedin"), obs(5, 1200, "linkedin"), obs(2, 700, "x"), obs(3, 800, "x")]
    p = run(kr, rows)
    assert (p.current_value, p.progress) == (2000, approx(0.5))


def test_each_takes_the_weakest_group() -> None:
    # "3,000 new followers on each platform": linkedin 1800 -> 0.6, x 900 -> 0.3.
    # min = 0.3 (x); current_value is x's 900; 0.3 >= 0.5 - 0.25 -> at_risk.
    kr = KeyResultDef(group_rule="each", target_value=3000)
    p = run(kr, [obs(0, 1800, "linkedin"), obs(3, 900, "x")])
    assert (p.current_value, p.progress, p.status) == (900, approx(0.3), "at_risk")
    assert p.groups == (
        GroupProgress("linkedin", 1800, approx(0.6)),
        GroupProgress("x", 900, approx(0.3)),
    )


def test_each_with_decrease_weakest_is_the_least_progressed_not_the_smallest() -> None:
    # CPL from 50 to 30: a at 35 -> (35-50)/(30-50) = 0.75; b at 45 -> 0.25. Weakest b (45).
    kr = KeyResultDef(
        direction="decrease", aggregation="avg", group_rule="each", start_value=50, target_value=30
    )
    p = run(kr, [obs(0, 35, "a"), obs(0, 45, "b")])
    assert (p.current_value, p.progress) == (45, approx(0.25))


def test_each_skips_a_group_without_a_value_but_lists_it() -> None:
    # Ratio group b has a numerator and no denominator: value None, not scored.
    kr = KeyResultDef(aggregation="ratio", group_rule="each", target_value=1)
    rows = [
        obs(0, 1, "a", "numerator"),
        obs(0, 2, "a", "denominator"),
        obs(0, 5, "b", "numerator"),
    ]
    p = run(kr, rows)
    assert (p.current_value, p.progress) == (0.5, 0.5)
    assert p.groups == (GroupProgress("a", 0.5, 0.5), GroupProgress("b", None, None))


# --- baseline (relative targets) --------------------------------------------------------------


def test_relative_sum_compares_this_cycles_total_with_last_cycles() -> None:
    # Baseline window 03-31..06-30 holds 800 + 1200 = 2000 leads; +50% -> target 3000, start 0.
    # Current 1380 (46 x 30) -> 1380 / 3000 = 0.46. The 03-30 figure is outside the window.
    kr = KeyResultDef(target_change_pct=50)
    rows = [
        Observation(date(2026, 3, 30), 99_999),
        Observation(date(2026, 3, 31), 800),
        Observation(date(2026, 6, 30), 1200),
        *daily([30.0] * 46),
    ]
    p = run(kr, rows)
    assert (p.start_value, p.target_value) == (0.0, approx(3000))
    assert p.progress == approx(0.46)
    assert p.status == "on_track"


def test_relative_avg_starts_from_the_baseline() -> None:
    # Baseline avg (150 + 250) / 2 = 200; +10% -> target 220, start 200.
    # Current avg (205 + 215) / 2 = 210 -> (210 - 200) / (220 - 200) = 0.5.
    kr = KeyResultDef(aggregation="avg", target_change_pct=10)
    rows = [
        Observation(date(2026, 5, 1), 150),
        Observation(date(2026, 6, 1), 250),
        obs(0, 205),
        obs(1, 215),
    ]
    p = run(kr, rows)
    assert (p.start_value, p.target_value) == (200, approx(220))
    assert p.progress == approx(0.5)


def test_relative_each_grows_every_group_from_its_own_baseline() -> None:
    # +20%, sum: a's baseline 100 -> target 120, b's 200 -> 240 (start 0 for both).
    # current a 60 -> 0.5, b 180 -> 0.75; weakest a: current 60, start 0, target 120.
    kr = KeyResultDef(group_rule="each", target_change_pct=20)
    rows = [
        Observation(date(2026, 6, 1), 100, "a"),
        Observation(date(2026, 6, 1), 200, "b"),
        obs(0, 60, "a"),
        obs(0, 180, "b"),
    ]
    p = run(kr, rows)
    assert (p.current_value, p.start_value, p.target_value) == (60, 0, approx(120))
    assert p.progress == approx(0.5)
    assert p.groups == (
        GroupProgress("a", 60, approx(0.5)),
        GroupProgress("b", 180, approx(0.75)),
    )


def test_relative_each_group_without_baseline_is_not_scored() -> None:
    # Only a has a baseline (100 -> 120); b is new this cycle. a: 30 / 120 = 0.25.
    kr = KeyResultDef(group_rule="each", target_change_pct=20)
    rows = [Observation(date(2026, 6, 1), 100, "a"), obs(0, 30, "a"), obs(0, 1, "b")]
    p = run(kr, rows)
    assert (p.current_value, p.progress) == (30, approx(0.25))
    assert p.groups[1] == GroupProgress("b", 1, None)


def test_missing_baseline_is_no_baseline() -> None:
    kr = KeyResultDef(target_change_pct=20)
    p = run(kr, daily([10.0, 20.0]))
    assert p.status == "no_baseline"
    assert (p.progress, p.attainment, p.score) == (None, None, None)
    assert (p.start_value, p.target_value) == (None, None)
    assert p.current_value == 30  # still shown: the figures are real, only the target is unknown
    assert p.forecast_value == approx(30 * 92 / 46)
    assert p.forecast_progress is None


def test_relative_each_without_any_baseline_is_no_baseline() -> None:
    kr = KeyResultDef(group_rule="each", target_change_pct=20)
    assert run(kr, [obs(0, 1, "a")]).status == "no_baseline"


def test_zero_baseline_cannot_be_grown_and_is_no_baseline() -> None:
    # 0 x 1.1 = 0 = start: a percentage of nothing defines no target.
    kr = KeyResultDef(aggregation="avg", target_change_pct=10)
    p = run(kr, [Observation(date(2026, 6, 1), 0), obs(0, 5)])
    assert (p.status, p.progress) == ("no_baseline", None)


def test_no_data_wins_over_no_baseline() -> None:
    assert run(KeyResultDef(target_change_pct=20), []).status == "no_data"


def test_start_value_with_change_pct_grows_the_start() -> None:
    # start 200, +25% -> target 250; current last 225 -> 25 / 50 = 0.5.
    kr = KeyResultDef(aggregation="last", start_value=200, target_change_pct=25)
    p = run(kr, daily([225.0]))
    assert (p.target_value, p.progress) == (250, approx(0.5))


def test_baseline_mapping_is_ignored_for_absolute_targets() -> None:
    p = compute_progress(
        SUM_3000,
        Q3,
        MID_AUGUST,
        current={("", "value"): stats_from_daily([(day(0), 300.0)], Q3.start)},
        baseline={},
    )
    assert p.progress == approx(0.1)


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kr", "message"),
    [
        (KeyResultDef(start_value=5, target_value=5), "equals start"),
        (KeyResultDef(target_value=0), "equals start"),  # start defaults to 0
        (KeyResultDef(direction="decrease", start_value=0, target_change_pct=10), "equals start"),
        (KeyResultDef(), "needs target_value or target_change_pct"),
        (KeyResultDef(direction="at_most"), "needs target_value or target_change_pct"),
        (KeyResultDef(target_value=10, target_change_pct=5), "not both"),
        (KeyResultDef(direction="decrease", target_change_pct=-10), "at_most"),
        (KeyResultDef(aggregation="avg", target_change_pct=0), "equal to the baseline"),
        (KeyResultDef(target_value=float("nan")), "finite"),
    ],
)
def test_validate_definition_rejects(kr: KeyResultDef, message: str) -> None:
    problem = validate_definition(kr)
    assert problem is not None
    assert message in problem
    with pytest.raises(ValueError, match=message):
        compute_progress(kr, Q3, MID_AUGUST, current={})


@pytest.mark.parametrize(
    "kr",
    [
        KeyResultDef(kind="milestone"),
        KeyResultDef(kind="rollup"),
        KeyResultDef(target_value=3000),
        KeyResultDef(target_change_pct=0),  # "as many leads as last quarter" is a real goal
        KeyResultDef(direction="at_most", target_value=0),
        KeyResultDef(direction="at_most", target_change_pct=-10),
        KeyResultDef(direction="decrease", aggregation="avg", target_change_pct=-10),
    ],
)
def test_validate_definition_accepts(kr: KeyResultDef) -> None:
    assert validate_definition(kr) is None


# --- status -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "status"),
    [
        (3000.0, "done"),  # 1.0
        (1380.0, "on_track"),  # 0.46 >= 0.40
        (1200.0, "on_track"),  # 0.40: exactly expected - 0.10 still counts
        (1170.0, "at_risk"),  # 0.39 >= 0.25
        (750.0, "at_risk"),  # 0.25: exactly expected - 0.25
        (720.0, "off_track"),  # 0.24
    ],
)
def test_pace_statuses_at_mid_cycle(current: float, status: str) -> None:
    assert run(SUM_3000, [obs(0, current)]).status == status


@pytest.mark.parametrize(("current", "status"), [(30.0, "on_track"), (15.0, "at_risk")])
def test_thresholds_tolerate_float_error(current: float, status: str) -> None:
    # 10-day cycle, 4 days elapsed: expected 0.4. 30 / 100 = 0.3 is exactly 0.4 - 0.10, but in
    # floats 0.4 - 0.1 = 0.30000000000000004 > 0.3; likewise 0.15 vs 0.4 - 0.25. Both must count.
    kr = KeyResultDef(target_value=100)
    assert run(kr, [obs(0, current, cycle=TEN)], as_of=day(3, TEN), cycle=TEN).status == status


def test_no_data_in_the_window() -> None:
    # A figure from before the cycle does not count as data for it.
    p = run(SUM_3000, [Observation(date(2026, 6, 30), 500)])
    assert p.status == "no_data"
    assert (p.current_value, p.progress, p.score, p.forecast_value) == (None, None, None, None)
    assert (p.start_value, p.target_value) == (0, 3000)
    assert p.last_observation_date is None


# --- forecast ---------------------------------------------------------------------------------


def test_sum_forecast_is_the_run_rate() -> None:
    # 10-day cycle, as_of day 4 (elapsed 4): 12 + 8 = 20 -> 20 * 10 / 4 = 50; 50 / 40 = 1.25.
    kr = KeyResultDef(target_value=40)
    p = run(kr, [obs(0, 12, cycle=TEN), obs(3, 8, cycle=TEN)], as_of=day(3, TEN), cycle=TEN)
    assert p.forecast_value == approx(50)
    assert p.forecast_progress == approx(1.25)


@pytest.mark.parametrize("aggregation", ["last", "avg", "min", "max"])
def test_least_squares_forecast_read_at_the_end_date(aggregation: Aggregation) -> None:
    # Daily values at x = 0, 2, 3: 10, 14, 13. n 3, sx 5, sy 37, sxx 0+4+9 = 13,
    # sxy 0 + 28 + 39 = 67. slope = (3*67 - 5*37) / (3*13 - 25) = 16 / 14 = 8/7;
    # intercept = (37 - 8/7 * 5) / 3 = 73/7. At x = 9 (the 10th day): 73/7 + 72/7 = 145/7.
    # Against 0 -> 29: 145/7 / 29 = 5/7 (the line, not the current value, is what is forecast).
    kr = KeyResultDef(aggregation=aggregation, target_value=29)
    rows = [obs(0, 10, cycle=TEN), obs(2, 14, cycle=TEN), obs(3, 13, cycle=TEN)]
    p = run(kr, rows, as_of=day(5, TEN), cycle=TEN)
    assert p.forecast_value == approx(145 / 7)
    assert p.forecast_progress == approx(5 / 7)


def test_least_squares_combine_adds_group_forecasts() -> None:
    # a: 10, 20 at x 0, 1 -> slope 10, at x 9: 100. b: 5, 5 -> flat 5. Combined 105.
    kr = KeyResultDef(aggregation="last", target_value=210)
    rows = [
        obs(0, 10, "a", cycle=TEN),
        obs(1, 20, "a", cycle=TEN),
        obs(0, 5, "b", cycle=TEN),
        obs(1, 5, "b", cycle=TEN),
    ]
    p = run(kr, rows, as_of=day(1, TEN), cycle=TEN)
    assert p.forecast_value == approx(105)
    assert p.forecast_progress == approx(0.5)


def test_least_squares_of_a_single_day_group_is_its_mean() -> None:
    # Two days of data overall (days_with_data 2), but group b was seen once (x = 1, value 7):
    # n*sxx - sx^2 = 1 - 1 = 0, no slope -> 7. a: 10, 20 -> 100. Combined 107.
    kr = KeyResultDef(aggregation="last", target_value=1000)
    rows = [obs(0, 10, "a", cycle=TEN), obs(1, 20, "a", cycle=TEN), obs(1, 7, "b", cycle=TEN)]
    assert run(kr, rows, as_of=day(1, TEN), cycle=TEN).forecast_value == approx(107)


def test_each_forecast_is_the_group_forecast_to_end_weakest() -> None:
    # 10 days, as_of day 1 (elapsed 2), run rate x5: a 40 + 40 = 80 -> 400, b 10 + 50 = 60 -> 300.
    # Target 500: a 0.8, b 0.6 -> b. Now b's progress 60/500 = 0.12 < a's 0.16 too.
    kr = KeyResultDef(group_rule="each", target_value=500)
    rows = [
        obs(0, 40, "a", cycle=TEN),
        obs(1, 40, "a", cycle=TEN),
        obs(0, 10, "b", cycle=TEN),
        obs(1, 50, "b", cycle=TEN),
    ]
    p = run(kr, rows, as_of=day(1, TEN), cycle=TEN)
    assert (p.forecast_value, p.forecast_progress) == (approx(300), approx(0.6))


def test_each_forecast_may_come_from_another_group_than_today_weakest() -> None:
    # last, 10 days, as_of day 1. a: 100, 100 (flat -> 100); b: 50, 90 (slope 40 -> 50 + 360 = 410).
    # Target 200: today a 0.5, b 0.25 (weakest b); at the end a 0.5, b 2.05 -> a sets the forecast.
    kr = KeyResultDef(aggregation="last", group_rule="each", target_value=200)
    rows = [
        obs(0, 100, "a", cycle=TEN),
        obs(1, 100, "a", cycle=TEN),
        obs(0, 50, "b", cycle=TEN),
        obs(1, 90, "b", cycle=TEN),
    ]
    p = run(kr, rows, as_of=day(1, TEN), cycle=TEN)
    assert (p.current_value, p.progress) == (90, approx(0.45))
    assert (p.forecast_value, p.forecast_progress) == (approx(100), approx(0.5))


def test_ratio_forecast_is_the_current_rate() -> None:
    kr = KeyResultDef(aggregation="ratio", target_value=0.5)
    rows = [
        obs(0, 1, role="numerator"),
        obs(1, 1, role="numerator"),
        obs(0, 10, role="denominator"),
    ]
    p = run(kr, rows)
    assert (p.forecast_value, p.forecast_progress) == (approx(0.2), approx(0.4))


def test_no_forecast_with_a_single_day_of_data() -> None:
    p = run(SUM_3000, [obs(0, 100), obs(0, 50, "x")])
    assert p.current_value == 150
    assert (p.forecast_value, p.forecast_progress) == (None, None)


def test_days_with_data_defaults_to_the_longest_series() -> None:
    stats = {("", "value"): stats_from_daily([(day(0), 10.0), (day(1), 10.0)], Q3.start)}
    p = compute_progress(SUM_3000, Q3, MID_AUGUST, current=stats)
    assert p.forecast_value == approx(20 * 92 / 46)
    gated = compute_progress(SUM_3000, Q3, MID_AUGUST, current=stats, days_with_data=1)
    assert gated.forecast_value is None


def test_forecast_after_the_cycle_is_the_final_figure_for_sum() -> None:
    # elapsed = total = 92 -> run rate x1.
    p = run(SUM_3000, [obs(0, 1000), obs(50, 500)], as_of=date(2026, 11, 1))
    assert p.forecast_value == approx(1500)


# --- score ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "score"),
    [
        (25.0, 0.3),  # 0.25 rounds half up
        (15.0, 0.2),  # 0.15 (binary 0.1499999...) still rounds up, as a reviewer would
        (4.0, 0.0),
        (96.0, 1.0),
        (100.0, 1.0),
        (0.0, 0.0),
    ],
)
def test_score_rounds_half_up_to_one_decimal(current: float, score: float) -> None:
    kr = KeyResultDef(aggregation="last", target_value=100)
    assert run(kr, [obs(0, current)]).score == score


# --- milestones -------------------------------------------------------------------------------


def test_milestone_without_data_is_not_yet_reached_and_on_track() -> None:
    p = run(KeyResultDef(kind="milestone"), [])
    assert (p.current_value, p.progress, p.attainment, p.score) == (0, 0, 0, 0)
    assert (p.target_value, p.status) == (1, "on_track")
    assert (p.forecast_value, p.forecast_progress) == (None, None)


def test_milestone_check_in_of_one_is_done() -> None:
    p = run(KeyResultDef(kind="milestone", aggregation="last"), [obs(3, 1)])
    assert (p.current_value, p.progress, p.status) == (1, 1, "done")
    assert p.last_observation_date == day(3)


def test_milestone_with_a_target_needs_to_reach_it() -> None:
    kr = KeyResultDef(kind="milestone", aggregation="last", target_value=5)
    assert run(kr, [obs(0, 3)]).progress == 0
    assert run(kr, [obs(0, 3), obs(1, 5)]).progress == 1


def test_milestone_not_reached_is_off_track_once_the_cycle_is_over() -> None:
    kr = KeyResultDef(kind="milestone")
    assert run(kr, [], as_of=Q3.end).status == "on_track"
    assert run(kr, [], as_of=Q3.end + timedelta(days=1)).status == "off_track"


def test_milestone_each_needs_every_group() -> None:
    kr = KeyResultDef(kind="milestone", aggregation="last", group_rule="each")
    p = run(kr, [obs(0, 1, "de"), obs(0, 0, "fr")])
    assert (p.current_value, p.progress) == (0, 0)
    assert p.groups == (GroupProgress("de", 1, 1), GroupProgress("fr", 0, 0))
    assert run(kr, [obs(0, 1, "de"), obs(0, 1, "fr")]).status == "done"


# --- roll-ups ---------------------------------------------------------------------------------


def test_rollup_takes_the_progress_it_is_given() -> None:
    # 0.45 >= 0.5 - 0.10 -> on_track; score 0.5 (half up).
    p = progress_from_observations(
        KeyResultDef(kind="rollup"), Q3, MID_AUGUST, [], rollup_progress=0.45
    )
    assert (p.progress, p.attainment, p.score, p.status) == (0.45, 0.45, 0.5, "on_track")
    assert (p.current_value, p.start_value, p.target_value, p.forecast_value) == (None,) * 4
    assert p.groups == ()


def test_rollup_without_progress_is_no_data() -> None:
    p = compute_progress(KeyResultDef(kind="rollup"), Q3, MID_AUGUST, current={})
    assert (p.progress, p.status) == (None, "no_data")


def test_rollup_clamps_progress_but_keeps_attainment() -> None:
    p = compute_progress(
        KeyResultDef(kind="rollup"), Q3, MID_AUGUST, current={}, rollup_progress=1.2
    )
    assert (p.progress, p.attainment, p.status) == (1.0, 1.2, "done")


# --- as_of before, inside and after the cycle ------------------------------------------------


def test_before_the_cycle_nothing_counts() -> None:
    # The stats handed in are ignored: W is empty, so there is nothing to measure yet.
    as_of = date(2026, 6, 15)
    stats = {("", "value"): stats_from_daily([(date(2026, 6, 10), 500.0)], Q3.start)}
    p = compute_progress(SUM_3000, Q3, as_of, current=stats, days_with_data=1)
    assert (p.expected_progress, p.status, p.current_value) == (0.0, "no_data", None)
    assert p.last_observation_date is None


def test_before_the_cycle_a_milestone_is_on_track() -> None:
    p = run(KeyResultDef(kind="milestone"), [], as_of=date(2026, 6, 1))
    assert (p.progress, p.status, p.expected_progress) == (0, "on_track", 0)


def test_as_of_looks_back_in_time() -> None:
    # As of 07-02 only the first two days count: 10 + 20 = 30; the 07-03 figure is the future.
    p = run(SUM_3000, daily([10.0, 20.0, 30.0]), as_of=date(2026, 7, 2))
    assert (p.current_value, p.last_observation_date) == (30, date(2026, 7, 2))
    assert p.expected_progress == approx(2 / 92)


def test_after_the_cycle_the_window_is_the_whole_cycle() -> None:
    # 2000 + 1000 in the cycle; the 10-01 figure belongs to the next one. 3000 -> done.
    rows = [obs(0, 2000), obs(91, 1000), Observation(date(2026, 10, 1), 5000)]
    p = run(SUM_3000, rows, as_of=date(2026, 12, 31))
    assert (p.current_value, p.expected_progress, p.status) == (3000, 1.0, "done")
    assert p.last_observation_date == Q3.end


def test_after_the_cycle_a_shortfall_is_judged_against_full_pace() -> None:
    # 2100 / 3000 = 0.7 against expected 1: 0.7 < 0.75 -> off_track.
    assert run(SUM_3000, [obs(0, 2100)], as_of=date(2026, 10, 1)).status == "off_track"


# --- objectives -------------------------------------------------------------------------------


def _kr_progress(progress: float | None, last: date | None = None, stale: bool = False) -> Progress:
    return Progress(
        as_of=MID_AUGUST,
        current_value=None,
        start_value=None,
        target_value=None,
        progress=progress,
        attainment=progress,
        expected_progress=0.5,
        score=None,
        status="no_data",
        forecast_value=None,
        forecast_progress=None,
        last_observation_date=last,
        stale=stale,
        groups=(),
    )


def test_weighted_progress() -> None:
    # (2 * 0.6 + 1 * 0.3) / 3 = 0.5; the None is left out with its weight.
    assert weighted_progress([(2, 0.6), (1, 0.3), (5, None)]) == approx(0.5)
    assert weighted_progress([(1, None)]) is None
    assert weighted_progress([]) is None
    assert weighted_progress([(0, 0.8)]) is None  # total weight 0
    assert weighted_progress([(0, 0.8), (1, 0.2)]) == approx(0.2)


@pytest.mark.parametrize("weight", [-1.0, float("inf"), float("nan")])
def test_weighted_progress_refuses_a_weight_that_cannot_average(weight: float) -> None:
    with pytest.raises(ValueError, match="weight"):
        weighted_progress([(weight, 0.5)])


def test_objective_progress_weights_its_key_results() -> None:
    # (2 * 0.6 + 1 * 0.3) / 3 = 0.5 at expected 0.5 -> on_track, score 0.5;
    # latest observation among the KRs, stale if any is.
    krs = [
        (2.0, _kr_progress(0.6, date(2026, 8, 1))),
        (1.0, _kr_progress(0.3, date(2026, 8, 14), stale=True)),
        (3.0, _kr_progress(None)),
    ]
    o = objective_progress(Q3, MID_AUGUST, krs)
    assert o.progress == approx(0.5)
    assert (o.expected_progress, o.score, o.status) == (0.5, 0.5, "on_track")
    assert (o.last_observation_date, o.stale) == (date(2026, 8, 14), True)


@pytest.mark.parametrize(
    ("progresses", "status"),
    [
        ([1.0, 1.0], "done"),
        ([0.3, 0.3], "at_risk"),
        ([0.1, 0.2], "off_track"),
        ([None, None], "no_data"),
    ],
)
def test_objective_status(progresses: list[float | None], status: str) -> None:
    o = objective_progress(Q3, MID_AUGUST, [(1.0, _kr_progress(p)) for p in progresses])
    assert o.status == status


def test_provisional_from_is_reported_inside_the_window_only() -> None:
    # The caller knows which days may still move; the engine reports the earliest in W.
    points = daily([10.0, 20.0], start=40)
    p = run(SUM_3000, points)
    assert p.provisional_from is None
    given = progress_from_observations(
        SUM_3000, Q3, MID_AUGUST, points, provisional_from=date(2026, 8, 10)
    )
    assert given.provisional_from == date(2026, 8, 10)
    assert given.current_value == p.current_value  # a provisional figure still counts
    later = progress_from_observations(
        SUM_3000, Q3, MID_AUGUST, points, provisional_from=date(2026, 8, 20)
    )
    assert later.provisional_from is None  # after as_of: not in W


def test_objective_provisional_from_is_its_earliest_key_results() -> None:
    krs = [
        (1.0, replace(_kr_progress(0.5), provisional_from=date(2026, 8, 13))),
        (1.0, replace(_kr_progress(0.5), provisional_from=date(2026, 7, 20))),
        (1.0, _kr_progress(0.5)),
    ]
    assert objective_progress(Q3, MID_AUGUST, krs).provisional_from == date(2026, 7, 20)
    assert objective_progress(Q3, MID_AUGUST, krs[2:]).provisional_from is None


def test_objective_without_key_results() -> None:
    o = objective_progress(Q3, MID_AUGUST, [])
    assert (o.progress, o.score, o.status, o.last_observation_date, o.stale) == (
        None,
        None,
        "no_data",
        None,
        False,
    )


def test_rollup_of_objectives_end_to_end() -> None:
    # Two team objectives aligned to a company KR, at 0.8 and 0.4 -> rollup 0.6.
    teams = [objective_progress(Q3, MID_AUGUST, [(1.0, _kr_progress(p))]) for p in (0.8, 0.4)]
    rolled = weighted_progress((1.0, t.progress) for t in teams)
    p = compute_progress(
        KeyResultDef(kind="rollup"), Q3, MID_AUGUST, current={}, rollup_progress=rolled
    )
    assert p.progress == approx(0.6)
