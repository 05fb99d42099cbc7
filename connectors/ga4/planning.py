"""How a fetch's queries become as few GA4 reports as possible: grouped by filters and split, each
with the filter expression it carries (as the Data API's JSON), read a page at a time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.base import LIST_OPS, Filter, MetricQuery

MAX_METRICS_PER_REPORT = 10
MAX_REPORTS_PER_BATCH = 5

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


def dimension_filter(key: FilterKey) -> dict[str, Any] | None:
    """The mapping's conditions, all required: one ``FilterExpression``, or an ``andGroup``."""
    expressions: list[dict[str, Any]] = []
    for name, op, values in key:
        exact = op in ("eq", "neq")
        # `eq` means the value as GA4 shows it; `contains` searches like GA4's UI does.
        condition = (
            {"in_list_filter": {"values": list(values), "case_sensitive": True}}
            if op in LIST_OPS
            else {
                "string_filter": {
                    "match_type": "EXACT" if exact else "CONTAINS",
                    "value": values[0],
                    "case_sensitive": exact,
                }
            }
        )
        expression = {"filter": {"field_name": name, **condition}}
        expressions.append(
            {"not_expression": expression} if op in ("neq", "not_in") else expression
        )
    if len(expressions) < 2:
        return expressions[0] if expressions else None
    return {"and_group": {"expressions": expressions}}


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
