"""The toolkit for platforms of typed records (connectors/objects.py): ``<object>.count`` and
``<object>.sum`` built from a name, groups of queries read together and refused alone, and the
describe read once."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

import pytest
from pydantic import BaseModel

from connectors.base import ANY_FIELD, FILTER_OPS, DailyValue, FetchResult, MetricQuery
from connectors.errors import RequestRefused
from connectors.objects import KEPT_SPECS, Described, ObjectMetrics, ObjectRefused, read_groups

pytestmark = pytest.mark.anyio

DAY = date(2026, 7, 1)


class Count(BaseModel):
    date_field: str = "created"


class Sum(Count):
    field: str


METRICS = ObjectMetrics(
    re.compile(r"[A-Z]\w*"), "{} records a day", "The sum of `field` of the {}", Count, Sum, "field"
)


def _count(qid: str, obj: str = "Lead") -> MetricQuery:
    return MetricQuery(qid, f"{obj}.count", Count())


def _sum(qid: str, field: str, obj: str = "Deal") -> MetricQuery:
    return MetricQuery(qid, f"{obj}.sum", Sum(field=field))


def test_the_specs_kept_are_bounded_whatever_names_mappings_try() -> None:
    """Metric names come from whoever writes a mapping: a stream of made-up ones must not
    grow the connector's memory without end, and a refused name is never kept."""
    metrics = replace(METRICS, _built={})
    for n in range(KEPT_SPECS * 3):
        assert metrics.metric_spec(f"Object{n}.count") is not None
        assert metrics.metric_spec(f"object{n}.count") is None
    assert len(metrics._built) <= KEPT_SPECS
    assert all(name[0].isupper() for name in metrics._built)


def test_any_object_named_by_the_pattern_counts_and_sums() -> None:
    spec = METRICS.metric_spec("Deal.sum")
    assert spec is not None
    assert (spec.description, spec.unit, spec.params_model) == (
        "The sum of `field` of the Deal",
        "value",
        Sum,
    )
    assert spec.filters == {ANY_FIELD: frozenset(FILTER_OPS)}
    count = METRICS.metric_spec("Lead.count")
    assert count is not None
    assert (count.unit, count.params_model) == ("records", Count)
    assert METRICS.metric_spec("Deal.sum") is spec  # built once
    for other in ("lead.count", "Lead.avg", "Lead", "A.B.count", ".count"):
        assert METRICS.metric_spec(other) is None
        assert METRICS.object_of(other) is None
    assert METRICS.object_of("Campaign__c.count") == "Campaign__c"
    assert [s.name for s in METRICS.specs("Lead", "Deal")] == [
        "Lead.count",
        "Lead.sum",
        "Deal.count",
        "Deal.sum",
    ]


def test_a_count_unit_may_name_the_object() -> None:
    named = ObjectMetrics(re.compile("deals"), "{}", "{}", Count, Sum, "field", count_unit="{}")
    assert named.spec("deals", "count").unit == "deals"


def test_summed_fields_are_read_off_the_sum_params_once_each() -> None:
    queries = [_sum("a", "Amount"), _count("b"), _sum("c", "Amount"), _sum("d", "Cost")]
    assert [METRICS.summed_of(q) for q in queries] == ["Amount", None, "Amount", "Cost"]
    assert METRICS.sums(queries) == ["Amount", "Cost"]


async def test_groups_are_read_together_and_refused_alone() -> None:
    queries = [_count("a"), _count("b", "Gone"), _sum("c", "x"), _count("d"), _count("e", "Bad")]
    read: list[tuple[str, list[str]]] = []

    async def key(query: MetricQuery) -> str:
        if query.metric.startswith("Bad"):
            raise RequestRefused("no such field")
        return query.metric.split(".")[0]

    async def answer(obj: str, members: list[MetricQuery]) -> list[DailyValue]:
        read.append((obj, [q.id for q in members]))
        if obj == "Gone":
            raise ObjectRefused("can't read Gone")
        return [DailyValue(q.id, DAY, 1.0) for q in members]

    result = FetchResult()
    lost = await read_groups(result, queries, key, answer)
    assert read == [("Lead", ["a", "d"]), ("Gone", ["b"]), ("Deal", ["c"])]
    assert result.query_errors == {"b": "can't read Gone", "e": "no such field"}
    assert [v.query_id for v in result.values] == ["a", "d", "c"]
    assert result.complete == {"a", "c", "d"}
    assert [exc.message for exc in lost] == ["can't read Gone"]


async def test_a_key_may_be_plain_and_other_errors_fail_the_fetch() -> None:
    async def answer(obj: str, members: list[MetricQuery]) -> list[DailyValue]:
        raise RuntimeError(obj)

    with pytest.raises(RuntimeError, match="Lead"):
        await read_groups(FetchResult(), [_count("a")], lambda q: q.metric[:4], answer)


async def test_a_describe_is_asked_once_and_a_failure_is_not_kept() -> None:
    asked: list[str] = []

    async def load(obj: str) -> dict[str, str]:
        asked.append(obj)
        if len(asked) == 1:
            raise ObjectRefused("not yet")
        return {"name": obj}

    fields = Described(load)
    with pytest.raises(ObjectRefused):
        await fields("Lead")
    assert await fields("Lead") == {"name": "Lead"}
    assert await fields("Lead") == {"name": "Lead"}
    assert asked == ["Lead", "Lead"]
