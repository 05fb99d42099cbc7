"""How a fetch's queries become as few GA4 reports as possible: grouped by filters and split, each
with the filter expression it carries, read a page at a time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from google.analytics.data_v1beta import types as ga

from connectors.base import LIST_OPS, Filter, MetricQuery

MAX_METRICS_PER_REPORT = 10
MAX_REPORTS_PER_BATCH = 5
_MATCH = ga.Filter.StringFilter.MatchType

FilterKey = tuple[tuple[str, str, tuple[str, ...]], ...]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def filter_key(filters: Iterable[Filter]) -> FilterKey:
    """The same conditions in any order are the same report."""
    return tuple(
        sorted(
            {
                (f.field, f.op, tuple(sorted({_text(v) for v in f.values})))
                if f.op in LIST_OPS
                else (f.field, f.op, (_text(f.value),))
                for f in filters
            }
        )
    )


def dimension_filter(key: FilterKey) -> ga.FilterExpression | None:
    """The mapping's conditions, all required: one expression, or an ``andGroup`` of them."""
    expressions = []
    for name, op, values in key:
        if op in LIST_OPS:
            in_list = ga.Filter.InListFilter(values=list(values), case_sensitive=True)
            expression = ga.FilterExpression(
                filter=ga.Filter(field_name=name, in_list_filter=in_list)
            )
        else:
            exact = op in ("eq", "neq")
            # `eq` means the value as GA4 shows it; `contains` searches like GA4's UI does.
            string = ga.Filter.StringFilter(
                match_type=_MATCH.EXACT if exact else _MATCH.CONTAINS,
                value=values[0],
                case_sensitive=exact,
            )
            expression = ga.FilterExpression(
                filter=ga.Filter(field_name=name, string_filter=string)
            )
        if op in ("neq", "not_in"):
            expression = ga.FilterExpression(not_expression=expression)
        expressions.append(expression)
    if len(expressions) < 2:
        return expressions[0] if expressions else None
    return ga.FilterExpression(and_group=ga.FilterExpressionList(expressions=expressions))


@dataclass
class Report:
    """One report request: queries sharing filters and split, their distinct metrics (<= 10)."""

    filters: FilterKey
    split_by: str | None
    metrics: list[str]
    queries: list[MetricQuery]

    def label(self) -> str:
        conditions = " and ".join(f"{n} {op} {'|'.join(v)}" for n, op, v in self.filters)
        split = f" by {self.split_by}" if self.split_by else ""
        return f"{', '.join(self.metrics)}{split}" + (f" where {conditions}" if conditions else "")


def plan(queries: Sequence[MetricQuery]) -> list[Report]:
    """Reports in first-seen order; each (filters, split) group cut into runs of 10 metrics."""
    groups: dict[tuple[FilterKey, str | None], list[MetricQuery]] = {}
    for query in queries:
        split = getattr(query.params, "split_by", None)
        groups.setdefault((filter_key(query.filters), split), []).append(query)
    reports: list[Report] = []
    for (key, split), members in groups.items():
        metrics = list(dict.fromkeys(q.metric for q in members))
        for start in range(0, len(metrics), MAX_METRICS_PER_REPORT):
            chunk = metrics[start : start + MAX_METRICS_PER_REPORT]
            reports.append(Report(key, split, chunk, [q for q in members if q.metric in chunk]))
    return reports


@dataclass
class Page:
    report: Report
    offset: int = 0
