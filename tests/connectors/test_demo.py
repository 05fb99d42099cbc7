"""The demo connector: deterministic, window-independent synthetic figures that behave like data."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence
from datetime import date
from statistics import mean
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from connectors.base import (
    DailyValue,
    FetchResult,
    Filter,
    MappingError,
    MetricQuery,
    Window,
)
from connectors.demo import SEGMENTS, SHAPES, DemoConfig, DemoConnector, DemoCredentials, figure
from tests.connectors.engine_client import BareClient

Q3 = Window(date(2026, 7, 1), date(2026, 9, 30))
AUGUST = Window(date(2026, 8, 1), date(2026, 8, 31))


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"the demo connector must not call {request.url}")


def connector(seed: int = 42) -> DemoConnector:
    http = BareClient(transport=httpx.MockTransport(no_network))
    return DemoConnector(DemoConfig(seed=seed), DemoCredentials(), http)


def query(metric: str, *filters: Filter, qid: str | None = None, **params: Any) -> MetricQuery:
    spec = DemoConnector.metric_spec(metric)
    assert spec is not None
    return MetricQuery(qid or metric, metric, spec.params_model(**params), tuple(filters))


def fetch(queries: Sequence[MetricQuery], window: Window = Q3, seed: int = 42) -> FetchResult:
    return asyncio.run(connector(seed).fetch(queries, window))


def series(metric: str, *filters: Filter, window: Window = Q3) -> dict[date, float]:
    result = fetch([query(metric, *filters)], window)
    assert not result.query_errors
    return {v.date: v.value for v in result.values}


def total(metric: str, *filters: Filter) -> float:
    return sum(series(metric, *filters).values())


def channel(op: str, value: Any) -> Filter:
    return Filter.model_validate({"field": "channel", "op": op, "value": value})


def daily_metrics() -> list[str]:
    return [m.name for m in DemoConnector.metrics if m.history == "daily"]


def test_catalogue_has_the_spec_names_and_explicit_rules() -> None:
    names = {m.name for m in DemoConnector.metrics}
    assert {"sessions", "signups", "followers", "deals_won", "bounce_rate"} <= names
    for spec in DemoConnector.metrics:
        assert spec.filters, spec.name
        assert set(spec.filters) <= set(SEGMENTS)
        assert all(ops == {"eq", "neq", "in", "not_in"} for ops in spec.filters.values())
        if not spec.additive:
            assert spec.aggregations == {"last", "avg", "min", "max"}, spec.name
    followers = DemoConnector.metric_spec("followers")
    assert followers is not None
    assert (followers.history, followers.additive) == ("daily", False)
    lower = {spec.name for spec in DemoConnector.metrics if spec.lower_is_better}
    assert lower == {"bounce_rate", "search_position"}


def test_describe_is_json() -> None:
    described = json.loads(json.dumps(DemoConnector.describe()))
    assert described["key"] == "demo"
    assert described["category"] == "demo"
    assert described["config"]["properties"]["seed"]["default"] == 42
    assert described["credentials"]["properties"] == {}


def test_config_and_credentials_refuse_stray_fields() -> None:
    with pytest.raises(ValidationError):
        DemoConfig.model_validate({"seed": 1, "sed": 2})
    with pytest.raises(ValidationError):
        DemoCredentials.model_validate({"token": "x"})


def test_check_needs_no_network() -> None:
    result = asyncio.run(connector().check())
    assert result.message == "Demo data is always reachable"
    assert result.timezone == "UTC"


def test_a_day_has_the_same_value_whatever_the_window() -> None:
    queries = [query(m) for m in daily_metrics()]
    quarter = {(v.query_id, v.date): v.value for v in fetch(queries, Q3).values}
    month = {(v.query_id, v.date): v.value for v in fetch(queries, AUGUST).values}
    assert len(month) == len(daily_metrics()) * 31
    assert month == {k: v for k, v in quarter.items() if k[1] in AUGUST}


def test_two_syncs_agree_and_the_seed_changes_the_company() -> None:
    queries = [query("sessions", channel("eq", "Email"))]
    assert fetch(queries).values == fetch(queries).values
    assert fetch(queries).values != fetch(queries, seed=7).values


def test_values_are_floats_and_counts_whole() -> None:
    result = fetch([query(m.name) for m in DemoConnector.metrics])
    assert result.values
    for value in result.values:
        assert type(value.value) is float
        assert math.isfinite(value.value)
        if SHAPES[value.query_id].kind != "rate":
            assert value.value.is_integer()
            assert value.value >= 0


def test_a_channel_filter_takes_its_share() -> None:
    everything, email = total("sessions"), total("sessions", channel("eq", "Email"))
    assert 0 < email < everything
    assert email / everything == pytest.approx(SEGMENTS["channel"]["Email"], rel=0.1)


def test_in_is_the_sum_of_its_members() -> None:
    both = total("leads", channel("in", ["Email", "Direct"]))
    apart = total("leads", channel("eq", "Email")) + total("leads", channel("eq", "Direct"))
    assert both == pytest.approx(apart, rel=0.05)


def test_neq_is_the_rest_and_equals_not_in() -> None:
    rest = series("sessions", channel("neq", "Email"))
    assert rest == series("sessions", channel("not_in", ["Email"]))
    assert sum(rest.values()) + total("sessions", channel("eq", "Email")) == pytest.approx(
        total("sessions"), rel=0.05
    )


def test_filters_on_two_dimensions_combine() -> None:
    us_email = total(
        "sessions", channel("eq", "Email"), Filter(field="country", op="eq", value="US")
    )
    expected = total("sessions") * SEGMENTS["channel"]["Email"] * SEGMENTS["country"]["US"]
    assert us_email == pytest.approx(expected, rel=0.1)


def test_a_filter_matching_no_segment_gives_zero_counts_and_no_rates() -> None:
    assert set(series("sessions", channel("eq", "Carrier Pigeon")).values()) == {0.0}
    assert series("bounce_rate", channel("eq", "Carrier Pigeon")) == {}


def test_split_by_gives_one_group_per_segment() -> None:
    result = fetch([query("new_followers", split_by="platform")], AUGUST)
    groups = {v.group for v in result.values}
    assert groups == set(SEGMENTS["platform"])
    assert sum(v.value for v in result.values) == pytest.approx(
        total_over("new_followers", AUGUST), rel=0.05
    )


def total_over(metric: str, window: Window) -> float:
    return sum(series(metric, window=window).values())


def test_b2b_weekends_are_quiet_and_social_weekends_are_not() -> None:
    def weekend_ratio(metric: str) -> float:
        values = series(metric)
        weekend = [v for d, v in values.items() if d.weekday() >= 5]
        weekday = [v for d, v in values.items() if d.weekday() < 5]
        return mean(weekend) / mean(weekday)

    assert weekend_ratio("deals_created") < 0.6
    assert weekend_ratio("leads") < 0.6
    assert weekend_ratio("impressions") > 1.0


def test_figures_grow_over_the_years() -> None:
    early = total_over("sessions", Window(date(2024, 1, 1), date(2024, 3, 31)))
    assert total("sessions") > 1.2 * early


def test_followers_is_a_running_total() -> None:
    values = list(series("followers").values())
    assert len(values) == Q3.num_days
    assert values[-1] - values[0] == pytest.approx(total("new_followers"), rel=0.15)


def test_a_snapshot_metric_gives_one_value_at_the_window_end() -> None:
    result = fetch([query("audience_size"), query("audience_size", split_by="country", qid="c")])
    whole = [v for v in result.values if v.query_id == "audience_size"]
    assert whole == [DailyValue("audience_size", Q3.end, whole[0].value)]
    assert {v.date for v in result.values} == {Q3.end}
    assert len([v for v in result.values if v.query_id == "c"]) == len(SEGMENTS["country"])


@given(
    seed=st.integers(min_value=0, max_value=2**32),
    day=st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)),
    segment=st.sampled_from([None, *SEGMENTS["channel"]]),
)
def test_bounce_rate_stays_a_percentage(seed: int, day: date, segment: str | None) -> None:
    selection = {"channel": (segment,) if segment else tuple(SEGMENTS["channel"])}
    selection["country"] = tuple(SEGMENTS["country"])
    value = figure(seed, "bounce_rate", SHAPES["bounce_rate"], selection, day)
    assert value is not None
    assert 0 <= value <= 100


def test_rates_shift_by_segment_but_dont_scale() -> None:
    overall = mean(series("bounce_rate").values())
    by_channel = {
        c: mean(series("bounce_rate", channel("eq", c)).values()) for c in SEGMENTS["channel"]
    }
    assert all(20 < v < 80 for v in by_channel.values())
    assert max(by_channel.values()) - min(by_channel.values()) > 2
    assert min(by_channel.values()) < overall < max(by_channel.values())


def test_validate_query_refuses_a_dimension_the_metric_lacks() -> None:
    with pytest.raises(MappingError) as info:
        DemoConnector.validate_query("followers", {}, [channel("eq", "Email")], "last")
    assert info.value.part == "filters[0].field"
    assert "`country`, `platform`" in info.value.message


def test_validate_query_refuses_summing_a_rate() -> None:
    with pytest.raises(MappingError, match="can't be summed over days") as info:
        DemoConnector.validate_query("bounce_rate", {}, [], "sum")
    assert info.value.part == "aggregation"


def test_validate_query_checks_split_by() -> None:
    with pytest.raises(MappingError) as info:
        DemoConnector.validate_query("sessions", {"split_by": "platform"}, [], "sum")
    assert info.value.part == "params.split_by"


def test_online_validation_catches_a_misspelt_segment() -> None:
    bad = query("sessions", channel("eq", "Email"), channel("in", ["Direct", "email"]))
    with pytest.raises(MappingError, match="'email' is not a `channel`") as info:
        asyncio.run(connector().validate_mapping_online(bad))
    assert info.value.part == "filters[1].value"
    asyncio.run(connector().validate_mapping_online(query("sessions", channel("eq", "Email"))))


def test_one_bad_query_does_not_sink_the_others() -> None:
    unfilterable = MetricQuery(
        "bad", "followers", DemoConnector.metrics[0].params_model(), (channel("eq", "Email"),)
    )
    retired = MetricQuery("gone", "pageviews", DemoConnector.metrics[0].params_model())
    result = fetch([unfilterable, retired, query("sessions")], AUGUST)
    assert set(result.query_errors) == {"bad", "gone"}
    assert {v.query_id for v in result.values} == {"sessions"}
