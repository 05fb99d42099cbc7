"""The GA4 connector: its declarations, its hooks, and each batch of reports asked for and read;
the official client and its errors come from :class:`~connectors.ga4.client.GA4Client`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar

from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta import types as ga
from pydantic import BaseModel

from connectors.base import (
    LIST_OPS,
    Aggregation,
    CheckResult,
    Connector,
    DailyValue,
    FetchResult,
    Filter,
    HttpOptions,
    MappingError,
    MetricQuery,
    MetricSpec,
    Window,
    as_number,
)
from connectors.ga4.client import GA4Client
from connectors.ga4.errors import _BadRequest, _client_wait, _unknown
from connectors.ga4.models import API_NAME, CATALOGUE, GA4_ROOT, GA4Config, _spec
from connectors.ga4.quota import QuotaLog
from connectors.google_auth import GoogleBridge, GoogleCredentials

MAX_METRICS_PER_REPORT = 10
MAX_REPORTS_PER_BATCH = 5
#: A report's conditions, the same in any order: (dimension, op, values) sorted.
FilterKey = tuple[tuple[str, str, tuple[str, ...]], ...]
#: A fetch's values so far, by day, query and group.
_Values = dict[tuple[date, str, str | None], float]


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


@dataclass
class Page:
    report: Report
    offset: int = 0


def plan(queries: Sequence[MetricQuery]) -> list[Page]:
    """First pages of reports in first-seen order; each (filters, split) group cut into runs of
    10 metrics."""
    groups: dict[tuple[FilterKey, str | None], list[MetricQuery]] = {}
    for query in queries:
        key: FilterKey = tuple(sorted({(f.field, f.op, _texts(f.values)) for f in query.filters}))
        groups.setdefault((key, getattr(query.params, "split_by", None)), []).append(query)
    pages: list[Page] = []
    for (key, split), members in groups.items():
        metrics = list(dict.fromkeys(q.metric for q in members))
        for start in range(0, len(metrics), MAX_METRICS_PER_REPORT):
            chunk = metrics[start : start + MAX_METRICS_PER_REPORT]
            pages.append(Page(Report(key, split, chunk, [q for q in members if q.metric in chunk])))
    return pages


def _texts(values: Iterable[Any]) -> tuple[str, ...]:
    """A filter's distinct values as text, sorted: ``1.0`` is ``1``, ``True`` is ``true``."""
    return tuple(sorted({_text(v) for v in values}))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def dimension_filter(key: FilterKey) -> dict[str, Any] | None:
    """The mapping's conditions, all required: one ``FilterExpression``, or an ``andGroup``."""
    expressions: list[dict[str, Any]] = []
    for name, op, values in key:
        if op in LIST_OPS:
            condition = {"in_list_filter": {"values": list(values), "case_sensitive": True}}
        else:  # `eq` means the value as GA4 shows it; `contains` searches like GA4's UI does.
            match, exact = ("EXACT", True) if op in ("eq", "neq") else ("CONTAINS", False)
            condition = {
                "string_filter": {"match_type": match, "value": values[0], "case_sensitive": exact}
            }
        expression = {"filter": {"field_name": name, **condition}}
        negated = op in ("neq", "not_in")
        expressions.append({"not_expression": expression} if negated else expression)
    if len(expressions) < 2:
        return expressions[0] if expressions else None
    return {"and_group": {"expressions": expressions}}


class GA4Connector(GA4Client, Connector[GA4Config, GoogleCredentials]):
    """Any GA4 metric, per day, filtered on any dimension, batched into as few calls as possible."""

    key = "ga4"
    name = "Google Analytics 4"
    category = "analytics"
    config_model = GA4Config
    credentials_model = GoogleCredentials
    metrics = CATALOGUE
    recommended_lookback_days = 3
    #: The Data API version of the official client (``data_v1beta``); Google dates no sunset.
    api_version = "v1beta"
    #: GA4 keeps processing a day for about two days after it ends.
    settle_days = 2
    #: Rows a report page asks for; the API's maximum (tests lower it to exercise paging).
    row_limit: ClassVar[int] = 250_000
    #: The pause between calls once tokens run low.
    quota_pause_seconds: ClassVar[float] = 5.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._bridge = GoogleBridge(self.http)
        self._client: BetaAnalyticsDataClient | None = None
        self._metadata: ga.Metadata | None = None

    @classmethod
    def http_options(cls, config: GA4Config, credentials: GoogleCredentials) -> HttpOptions:
        # A standard property takes 10 concurrent requests; leave room for its dashboards.
        return HttpOptions(
            base_url=config.base_url or GA4_ROOT, max_concurrency=5, retry_after=_client_wait
        )

    @classmethod
    def metric_spec(cls, name: str) -> MetricSpec | None:
        known = super().metric_spec(name)
        return known or (_spec(name) if API_NAME.match(name) else None)

    @classmethod
    def validate_query(
        cls,
        metric: str,
        params: Mapping[str, Any] | None,
        filters: Sequence[Filter | Mapping[str, Any]],
        aggregation: Aggregation | None,
    ) -> BaseModel:
        if not API_NAME.match(metric):
            raise MappingError(
                "metric",
                f"`{metric}` is not a GA4 metric API name (e.g. `sessions`, "
                "`keyEvents:purchase`; the list: "
                "developers.google.com/analytics/devguides/reporting/data/v1/api-schema)",
            )
        return super().validate_query(metric, params, filters, aggregation)

    @classmethod
    def check_filters(cls, filters: Sequence[Filter]) -> None:
        for i, flt in enumerate(filters):
            if not API_NAME.match(flt.field):
                raise MappingError(
                    f"filters[{i}].field",
                    f"`{flt.field}` is not a GA4 dimension API name (e.g. "
                    "`sessionDefaultChannelGroup`)",
                )

    async def check(self) -> CheckResult:
        """One tiny report: proves credentials and property access, and tells the timezone."""
        request = ga.RunReportRequest(
            property=self._property,
            date_ranges=[{"start_date": "yesterday", "end_date": "today"}],
            metrics=[{"name": "sessions"}],
            limit=1,
            return_property_quota=True,
        )
        response = await self._call(self._ga().run_report, request=request)
        quota = QuotaLog()
        quota.record([response])
        zone = response.metadata.time_zone or None
        # A UTC source takes the property's zone after this check (the engine's default); a
        # zone someone chose is kept, so that is the one worth a word.
        mismatch = None if self.timezone == "UTC" else self._zone_mismatch({zone or ""})
        said = f"GA4 property {self._pid} answered"
        if zone:
            said += f"; {mismatch}" if mismatch else f"; it reports days in {zone}"
        return CheckResult(
            said,
            timezone=zone,
            notices=[mismatch] if mismatch else [],
            details={
                "property_id": self._pid,
                "time_zone": zone,
                "currency_code": response.metadata.currency_code or None,
                "quota": quota.details(),
            },
        )

    def _zone_mismatch(self, zones: set[str]) -> str | None:
        """What to do when the property's days are not the source's: the engine ends a window
        at the source's yesterday, which may be a day GA4's own calendar hasn't finished."""
        zones = zones - {""}
        if not zones or self.timezone in zones:
            return None
        listed = ", ".join(sorted(zones))
        return (
            f"GA4 property {self._pid} reports days in {listed}, but the source is set to "
            f"{self.timezone}: set the source's timezone to "
            + (listed if len(zones) == 1 else "the property's")
            + ", so a day is read once it is over there"
        )

    async def validate_mapping_online(self, query: MetricQuery) -> None:
        """The property's own metrics and dimensions (custom ones too), from ``getMetadata``."""
        metadata = await self._property_metadata()
        metrics, dimensions = (
            {n for item in items for n in (item.api_name, *item.deprecated_api_names)}
            for items in (metadata.metrics, metadata.dimensions)
        )
        if query.metric not in metrics:
            raise MappingError("metric", _unknown("metric", query.metric, metrics, self._pid))
        named = [(f"filters[{i}].field", f.field) for i, f in enumerate(query.filters)]
        split = getattr(query.params, "split_by", None)
        for part, dimension in [*named, *([("params.split_by", split)] if split else [])]:
            if dimension not in dimensions:
                raise MappingError(part, _unknown("dimension", dimension, dimensions, self._pid))

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result, quota, values = FetchResult(), QuotaLog(), _Values()
        pending = plan(queries)
        calls, zones = 0, set[str]()
        while pending:
            batch, pending = pending[:MAX_REPORTS_PER_BATCH], pending[MAX_REPORTS_PER_BATCH:]
            if calls:
                await quota.before_call(self._pid, result, self.quota_pause_seconds)
            calls += 1
            request = ga.BatchRunReportsRequest(
                property=self._property, requests=[self._request(p, window) for p in batch]
            )
            try:
                response = await self._call(self._ga().batch_run_reports, request=request)
            except _BadRequest as bad:
                pending = self._without_culprits(batch, bad.message, result) + pending
                continue
            quota.record(response.reports)
            for page, report in zip(batch, response.reports, strict=False):
                pending += self._read(page, report, window, values, result)
                zones.add(report.metadata.time_zone)
        result.values = [
            DailyValue(q, day, v, group) for (day, q, group), v in sorted(values.items())
        ]
        if mismatch := self._zone_mismatch(zones):
            # A notice too, on the source, where it stays until someone fixes the timezone.
            result.warnings.append(mismatch)
            result.notices.append(mismatch)
        result.details = {"property_id": self._pid, "batch_calls": calls, "quota": quota.details()}
        return result

    def _request(self, page: Page, window: Window) -> ga.RunReportRequest:
        report = page.report
        dims = ["date", *([report.split_by] if report.split_by else [])]
        return ga.RunReportRequest(
            date_ranges=[{"start_date": str(window.start), "end_date": str(window.end)}],
            dimensions=[{"name": d} for d in dims],
            metrics=[{"name": m} for m in report.metrics],
            dimension_filter=dimension_filter(report.filters),
            # A stable order is what makes `offset` paging safe.
            order_bys=[{"dimension": {"dimension_name": d}} for d in dims],
            limit=self.row_limit,
            offset=page.offset,
            keep_empty_rows=True,
            return_property_quota=True,
        )

    def _read(
        self,
        page: Page,
        response: ga.RunReportResponse,
        window: Window,
        values: _Values,
        result: FetchResult,
    ) -> list[Page]:
        """Values of one report page into ``values``; the next page if rows remain."""
        report = page.report
        names = [h.name for h in response.metric_headers] or report.metrics
        by_metric: dict[str, list[str]] = {}
        for query in report.queries:
            by_metric.setdefault(query.metric, []).append(query.id)
        unreadable = 0
        for row in response.rows:
            dims = [d.value for d in row.dimension_values]
            try:
                day = datetime.strptime(dims[0], "%Y%m%d").date()  # noqa: DTZ007 - a day
            except (ValueError, IndexError):
                unreadable += 1
                continue
            if day not in window:
                continue
            group = (dims[1] if len(dims) > 1 else "") if report.split_by else None
            for name, cell in zip(names, row.metric_values, strict=False):
                number = as_number(cell.value)
                if number is None:
                    unreadable += 1
                    continue
                for query_id in by_metric.get(name, ()):
                    values[day, query_id, group] = number
        if unreadable:
            result.warnings.append(f"{unreadable} values of {report.label()} could not be read")
        meta, what = response.metadata, f"GA4 report {report.label()}"
        caveats = []
        for sampling in meta.sampling_metadatas:
            read, space = int(sampling.samples_read_count), int(sampling.sampling_space_size)
            share = f" ({read / space:.1%} of {space} events)" if space else ""
            caveats.append(f"{what} is sampled{share}: its figures are estimates")
        if meta.subject_to_thresholding:
            caveats.append(
                f"{what} is subject to thresholding: GA4 withholds rows with few users "
                "(Google signals), so figures may be low"
            )
        if meta.data_loss_from_other_row:
            caveats.append(f'{what} lost data to GA4\'s "(other)" row')
        result.warnings += [c for c in dict.fromkeys(caveats) if c not in result.warnings]
        seen = page.offset + len(response.rows)
        return [Page(report, seen)] if response.rows and seen < response.row_count else []

    def _without_culprits(
        self, batch: Sequence[Page], message: str, result: FetchResult
    ) -> list[Page]:
        """A refused batch: fail the queries the message names, ask again for the others."""
        queries = [q for page in batch for q in page.report.queries]

        def named(query: MetricQuery) -> bool:
            names = [query.metric, *(f.field for f in query.filters)]
            split = getattr(query.params, "split_by", None)
            return any(re.search(rf"\b{re.escape(n)}\b", message) for n in [*names, split] if n)

        culprits = [q for q in queries if named(q)] or queries
        for query in culprits:
            result.query_errors[query.id] = f"GA4 refused the report: {message}"
        # The others' reports are asked again from their first row.
        return plan([q for q in queries if q not in culprits])
