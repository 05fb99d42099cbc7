"""The connector contract: catalogue types, mapping validation and the describe() shape."""

from __future__ import annotations

import json
import pickle
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from app.core.http import KrsyncClient
from app.core.redact import Redactor
from connectors.base import (
    ADDITIVE_AGGREGATIONS,
    EXCERPT_CHARS,
    LEVEL_AGGREGATIONS,
    SET_OPS,
    CheckResult,
    Connector,
    ConnectorAuthError,
    ConnectorConfigError,
    ConnectorError,
    FetchResult,
    Filter,
    FilterOp,
    HttpClient,
    MappingError,
    MetricQuery,
    MetricSpec,
    NoParams,
    RateLimited,
    RetriableError,
    Window,
    excerpt,
)
from connectors.testing import leaked, split_masks
from tests.connectors.engine_client import BareClient

# --- a small connector to exercise the contract ---------------------------------------------


class ToyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: str


class ToyCredentials(BaseModel):
    api_key: SecretStr


class DealParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date_property: Literal["createdate", "closedate"] = "createdate"
    pipeline: str | None = None


class SumParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    property: str


class ToyConnector(Connector[ToyConfig, ToyCredentials]):
    key = "toy"
    name = "Toy"
    category = "crm"
    config_model = ToyConfig
    credentials_model = ToyCredentials
    metrics = (
        MetricSpec(
            name="deals",
            description="Deals",
            unit="deals",
            params_model=DealParams,
            filters={"channel": SET_OPS, "amount": frozenset({"gt", "lt"})},
            aggregations=frozenset({"sum", "avg", "ratio"}),
        ),
        MetricSpec(name="deals.sum", description="Summed", unit="USD", params_model=SumParams),
        MetricSpec(
            name="bounce_rate",
            description="Bounce rate",
            unit="%",
            filters={"*": frozenset({"eq"})},
            additive=False,
        ),
        MetricSpec(name="followers", description="Total", unit="followers", additive=False),
    )

    async def check(self) -> CheckResult:
        return CheckResult("ok")

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        return FetchResult()


def mapping_error(
    metric: str,
    params: dict[str, Any] | None = None,
    filters: Sequence[Filter | dict[str, Any]] = (),
    aggregation: Any = None,
) -> MappingError:
    with pytest.raises(MappingError) as info:
        ToyConnector.validate_query(metric, params, filters, aggregation)
    return info.value


def test_models_are_read_off_the_generic_parameters() -> None:
    """``Connector[Config, Credentials]`` names the models once; an explicit one still wins,
    and a subclass of a connector inherits its parent's."""

    class Inferred(Connector[ToyConfig, ToyCredentials]):
        key = "inferred"

        async def check(self) -> CheckResult:
            return CheckResult("ok")

        async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
            return FetchResult()

    class Explicit(Inferred):
        credentials_model = SumParams  # type: ignore[assignment]

    assert (Inferred.config_model, Inferred.credentials_model) == (ToyConfig, ToyCredentials)
    assert (Explicit.config_model, Explicit.credentials_model) == (ToyConfig, SumParams)
    assert ToyConnector.config_model is ToyConfig


# --- Filter -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value"),
    [("eq", "Email"), ("neq", 3), ("gt", 2.5), ("contains", "news"), ("eq", True)],
)
def test_scalar_ops_take_one_value(op: str, value: object) -> None:
    flt = Filter.model_validate({"field": "f", "op": op, "value": value})
    assert flt.value == value
    assert type(flt.value) is type(value)  # no coercion of 3 to "3" or True to 1
    assert flt.values == (value,)


@pytest.mark.parametrize("op", ["in", "not_in"])
def test_list_ops_need_a_non_empty_list(op: FilterOp) -> None:
    assert Filter(field="f", op=op, value=["a", 1]).values == ("a", 1)
    with pytest.raises(ValidationError, match="needs a list"):
        Filter(field="f", op=op, value="a")
    with pytest.raises(ValidationError, match="at least one"):
        Filter(field="f", op=op, value=[])


def test_scalar_op_refuses_a_list_and_points_to_in() -> None:
    with pytest.raises(ValidationError, match="use `in`"):
        Filter(field="f", op="eq", value=["a", "b"])


def test_filter_refuses_unknown_op_extra_keys_and_empty_field() -> None:
    with pytest.raises(ValidationError):
        Filter.model_validate({"field": "f", "op": "like", "value": "x"})
    with pytest.raises(ValidationError):
        Filter.model_validate({"field": "f", "op": "eq", "value": "x", "case": "ignore"})
    with pytest.raises(ValidationError):
        Filter(field="", op="eq", value="x")


def test_filter_is_frozen() -> None:
    flt = Filter(field="f", op="eq", value="x")
    with pytest.raises(ValidationError):
        flt.value = "y"  # type: ignore[misc]


# --- Window -------------------------------------------------------------------------------------


def test_window_days_are_inclusive() -> None:
    window = Window(date(2026, 2, 27), date(2026, 3, 2))
    assert list(window.days()) == [
        date(2026, 2, 27),
        date(2026, 2, 28),
        date(2026, 3, 1),
        date(2026, 3, 2),
    ]
    assert window.num_days == 4
    assert date(2026, 3, 1) in window
    assert date(2026, 3, 3) not in window


def test_single_day_window() -> None:
    day = date(2026, 7, 1)
    assert list(Window(day, day).days()) == [day]


def test_window_refuses_reversed_bounds_and_datetimes() -> None:
    with pytest.raises(ValueError, match="after its end"):
        Window(date(2026, 7, 2), date(2026, 7, 1))
    with pytest.raises(TypeError, match="calendar dates"):
        Window(datetime(2026, 7, 1, tzinfo=UTC), date(2026, 7, 2))


def test_split_gives_contiguous_capped_parts() -> None:
    parts = Window(date(2026, 1, 1), date(2026, 1, 10)).split(4)
    assert [(p.start.day, p.end.day) for p in parts] == [(1, 4), (5, 8), (9, 10)]
    with pytest.raises(ValueError, match="at least 1"):
        parts[0].split(0)


@given(
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    length=st.integers(min_value=0, max_value=400),
    max_days=st.integers(min_value=1, max_value=120),
)
def test_split_covers_every_day_once(start: date, length: int, max_days: int) -> None:
    window = Window(start, start + timedelta(days=length))
    parts = window.split(max_days)
    assert all(p.num_days <= max_days for p in parts)
    assert [d for p in parts for d in p.days()] == list(window.days())


# --- MetricSpec ---------------------------------------------------------------------------------


def test_aggregations_default_by_additivity() -> None:
    count = MetricSpec(name="a", description="", unit="x")
    level = MetricSpec(name="b", description="", unit="%", additive=False)
    assert count.aggregations == ADDITIVE_AGGREGATIONS
    assert level.aggregations == LEVEL_AGGREGATIONS
    assert count.params_model is NoParams


@pytest.mark.parametrize("aggregation", ["sum", "ratio"])
def test_catalogue_cannot_offer_sum_of_a_level(aggregation: Any) -> None:
    with pytest.raises(ValidationError, match="not additive"):
        MetricSpec(
            name="rate",
            description="",
            unit="%",
            additive=False,
            aggregations=frozenset({aggregation, "avg"}),
        )


def test_no_params_schema_refuses_extras() -> None:
    schema = MetricSpec(name="a", description="", unit="x").params_schema()
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["properties"] == {}


def test_any_field_wildcard() -> None:
    spec = ToyConnector.metric_spec("bounce_rate")
    assert spec is not None
    assert spec.allowed_ops("anything") == frozenset({"eq"})
    deals = ToyConnector.metric_spec("deals")
    assert deals is not None
    assert deals.allowed_ops("country") is None


# --- validate_query -----------------------------------------------------------------------------


def test_valid_query_returns_the_params_model() -> None:
    params = ToyConnector.validate_query(
        "deals",
        {"date_property": "closedate"},
        [
            Filter(field="channel", op="in", value=["Email"]),
            {"field": "amount", "op": "gt", "value": 5},
        ],
        "sum",
    )
    assert params == DealParams(date_property="closedate")


def test_open_ended_filter_field_is_accepted() -> None:
    ToyConnector.validate_query(
        "bounce_rate", {}, [Filter(field="country", op="eq", value="DE")], "avg"
    )


def test_unknown_metric_lists_the_catalogue() -> None:
    err = mapping_error("revenue")
    assert err.part == "metric"
    assert "`deals`" in err.message
    assert "`bounce_rate`" in err.message


def test_bad_param_value_names_the_param() -> None:
    err = mapping_error("deals", {"date_property": "hs_lastmodified"})
    assert err.part == "params.date_property"
    assert "createdate" in err.message


def test_missing_param_names_the_param() -> None:
    assert mapping_error("deals.sum", {}).part == "params.property"


def test_unknown_param_lists_accepted_ones() -> None:
    err = mapping_error("deals", {"pipline": "default"})
    assert err.part == "params.pipline"
    assert "`date_property`" in err.message
    assert "`pipeline`" in err.message


def test_param_on_a_metric_without_params() -> None:
    err = mapping_error("followers", {"x": 1})
    assert err.part == "params.x"
    assert "takes: none" in err.message


def test_unfilterable_field_lists_filterable_ones() -> None:
    err = mapping_error("deals", filters=[Filter(field="country", op="eq", value="DE")])
    assert err.part == "filters[0].field"
    assert "`amount`, `channel`" in err.message


class NarrowedElsewhere(ToyConnector):
    unfiltered = "the toy takes no filters: give a saved view as `params.view`"


def test_a_filter_on_an_unfilterable_metric_says_what_narrows_it_instead() -> None:
    """``unfiltered`` answers a filter on a metric with none, before its params are read."""
    flt = Filter(field="country", op="eq", value="DE")
    with pytest.raises(MappingError) as info:
        NarrowedElsewhere.validate_query("followers", {"x": 1}, [flt], None)
    assert (info.value.part, info.value.message) == (
        "filters[0].field",
        NarrowedElsewhere.unfiltered,
    )
    # A metric that takes filters is checked as always.
    with pytest.raises(MappingError) as info:
        NarrowedElsewhere.validate_query("deals", None, [flt], None)
    assert "`amount`, `channel`" in info.value.message


def test_disallowed_op_lists_allowed_ones() -> None:
    filters = [
        Filter(field="channel", op="eq", value="Email"),
        Filter(field="amount", op="gte", value=5),
    ]
    err = mapping_error("deals", filters=filters)
    assert err.part == "filters[1].op"
    assert "`gt`, `lt`" in err.message


def test_malformed_raw_filter_names_its_part() -> None:
    assert mapping_error(
        "deals", filters=[{"field": "channel", "op": "like", "value": 1}]
    ).part == ("filters[0].op")
    assert mapping_error(
        "deals", filters=[{"field": "channel", "op": "in", "value": "x"}]
    ).part == ("filters[0]")


def test_aggregation_not_offered() -> None:
    err = mapping_error("deals", aggregation="last")
    assert err.part == "aggregation"
    assert "`sum`, `avg`, `ratio`" in err.message


def test_sum_of_a_rate_explains_what_to_do() -> None:
    err = mapping_error("bounce_rate", aggregation="sum")
    assert err.part == "aggregation"
    assert err.message.startswith("`bounce_rate` is a rate and can't be summed over days")
    assert "use aggregation `avg` or `last`" in err.message
    assert "`ratio` key result with an additive numerator and denominator" in err.message


def test_sum_of_a_cumulative_level_is_refused_too() -> None:
    err = mapping_error("followers", aggregation="sum")
    assert "`followers` is not additive" in err.message


def test_ratio_of_a_rate_is_refused() -> None:
    err = mapping_error("bounce_rate", aggregation="ratio")
    assert err.part == "aggregation"
    assert "ratio" in err.message


# --- describe -----------------------------------------------------------------------------------


def test_describe_is_json_with_json_schemas() -> None:
    described = json.loads(json.dumps(ToyConnector.describe()))
    assert {k: described[k] for k in ("key", "name", "category")} == {
        "key": "toy",
        "name": "Toy",
        "category": "crm",
    }
    assert described["config"]["required"] == ["account_id"]
    assert described["credentials"]["properties"]["api_key"]["writeOnly"] is True
    assert described["recommended_lookback_days"] is None
    deals = described["metrics"][0]
    assert set(deals) == {
        "name",
        "description",
        "unit",
        "params",
        "filters",
        "aggregations",
        "history",
        "additive",
        "lower_is_better",
        "settle_days",
    }
    assert deals["settle_days"] == 0  # neither the connector nor the metric says otherwise
    assert deals["filters"] == {"channel": ["eq", "neq", "in", "not_in"], "amount": ["gt", "lt"]}
    assert deals["aggregations"] == ["sum", "avg", "ratio"]
    assert deals["params"]["properties"]["date_property"]["enum"] == ["createdate", "closedate"]
    assert described["metrics"][2]["additive"] is False


# --- settle_days --------------------------------------------------------------------------------


class SettlingConnector(ToyConnector):
    """Restates a week; one metric of it settles sooner, and a snapshot never restates."""

    key = "settling"
    settle_days = 7
    metrics = (
        MetricSpec(name="deals", description="Deals", unit="deals"),
        MetricSpec(name="sessions", description="Sessions", unit="sessions", settle_days=2),
        MetricSpec(name="final", description="Final at once", unit="x", settle_days=0),
        MetricSpec(name="members", description="Members now", unit="people", history="snapshot"),
    )

    @classmethod
    def metric_spec(cls, name: str) -> MetricSpec | None:
        """Open-ended, like GA4's: any `custom.<name>` is a metric."""
        known = super().metric_spec(name)
        if known is None and name.startswith("custom."):
            return MetricSpec(name=name, description="Custom", unit="x")
        return known


def test_settle_days_are_the_connectors_unless_the_metric_says_otherwise() -> None:
    described = {m["name"]: m["settle_days"] for m in SettlingConnector.describe()["metrics"]}
    assert described == {"deals": 7, "sessions": 2, "final": 0, "members": 0}
    # A metric an open-ended catalogue builds on the fly settles like the connector.
    custom = SettlingConnector.metric_spec("custom.signups")
    assert custom is not None
    assert SettlingConnector.settle_days_of(custom) == 7


def test_a_snapshot_that_claims_settle_days_is_refused() -> None:
    with pytest.raises(ValidationError, match="snapshot"):
        MetricSpec(name="m", description="d", unit="u", history="snapshot", settle_days=3)
    with pytest.raises(ValidationError):
        MetricSpec(name="m", description="d", unit="u", settle_days=-1)


# --- errors and construction --------------------------------------------------------------------


def test_error_classification() -> None:
    assert issubclass(ConnectorAuthError, ConnectorConfigError)
    assert issubclass(MappingError, ConnectorConfigError)
    assert issubclass(RateLimited, RetriableError)
    assert not issubclass(RetriableError, ConnectorConfigError)
    assert all(issubclass(e, ConnectorError) for e in (ConnectorConfigError, RetriableError))
    assert ConnectorAuthError("token expired").message == "token expired"


def test_errors_keep_their_fields_through_pickle() -> None:
    limited = pickle.loads(pickle.dumps(RateLimited("slow down", retry_after=30.0)))
    assert (limited.message, limited.retry_after) == ("slow down", 30.0)
    mapping = pickle.loads(pickle.dumps(MappingError("filters[0].op", "use eq")))
    assert (mapping.part, mapping.message, str(mapping)) == (
        "filters[0].op",
        "use eq",
        "filters[0].op: use eq",
    )


def test_connector_keeps_what_it_is_handed() -> None:
    http = BareClient()
    connector = ToyConnector(
        ToyConfig(account_id="1"),
        ToyCredentials(api_key=SecretStr("k")),
        http,
        timezone="Europe/Berlin",
    )
    assert connector.http is http
    assert connector.timezone == "Europe/Berlin"
    assert connector.config.account_id == "1"


def test_unknown_timezone_is_a_config_error() -> None:
    with pytest.raises(ConnectorConfigError, match="Mars/Olympus"):
        ToyConnector(
            ToyConfig(account_id="1"),
            ToyCredentials(api_key=SecretStr("k")),
            BareClient(),
            timezone="Mars/Olympus",
        )


def test_base_class_is_abstract() -> None:
    base: Any = Connector  # mypy already refuses this; the runtime must too
    with pytest.raises(TypeError, match="abstract"):
        base(ToyConfig(account_id="1"), ToyCredentials(api_key=SecretStr("k")), BareClient())


# --- excerpts of a platform's words ----------------------------------------------------------

EXCERPT_SECRET = "pat-na1-0c7e4b2a-55d1-4f0e"


def _mask(text: str) -> str:
    return text.replace(EXCERPT_SECRET, "***")


@pytest.mark.parametrize("limit", [40, 200, EXCERPT_CHARS])
def test_excerpt_masks_a_secret_wherever_the_cut_falls(limit: int) -> None:
    for offset in range(max(0, limit - len(EXCERPT_SECRET) - 2), limit + 2):
        text = "e" * offset + EXCERPT_SECRET + " was refused" * 40

        quoted = excerpt(text, _mask, limit)

        assert leaked(quoted, EXCERPT_SECRET) == [], (offset, quoted)
        assert split_masks(quoted) == [], (offset, quoted)
        assert len(quoted) <= limit + 1  # the ellipsis


def test_excerpt_drops_the_stub_of_a_mask_it_cuts() -> None:
    assert excerpt("e" * 98 + EXCERPT_SECRET + " tail", _mask, 100) == "e" * 98 + "…"
    assert excerpt("e" * 97 + EXCERPT_SECRET + " tail", _mask, 100) == "e" * 97 + "***…"


def test_excerpt_is_one_line_and_whole_when_short() -> None:
    assert excerpt(" bad\n  request\t(400) ", None) == "bad request (400)"
    assert excerpt("x" * 301, None) == "x" * 300 + "…"


def test_the_engines_client_masks_what_a_connector_quotes() -> None:
    """A connector quotes a platform's words through ``self.http.redact``: the engine's client
    masks the source's secrets; a bare test client holds none and masks nothing."""
    engine_client: HttpClient = KrsyncClient(source_name="s", redactor=Redactor([EXCERPT_SECRET]))
    assert EXCERPT_SECRET not in engine_client.redact(f"key {EXCERPT_SECRET}")
    bare: HttpClient = BareClient()
    assert bare.redact(f"key {EXCERPT_SECRET}") == f"key {EXCERPT_SECRET}"
