"""The GA4 connector itself: its declarations (catalogue, HTTP options, mapping checks) and the
``check``, ``validate_mapping_online`` and ``fetch`` hooks the engine calls; the client and the
report plumbing come from its mixins."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, ClassVar

from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta import types as ga
from pydantic import BaseModel

from connectors.base import (
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
)
from connectors.ga4.errors import _BadRequest, _client_wait, _unknown
from connectors.ga4.models import API_NAME, CATALOGUE, GA4_ROOT, GA4Config, _spec
from connectors.ga4.planning import MAX_REPORTS_PER_BATCH, Page, plan
from connectors.ga4.quota import QuotaLog
from connectors.ga4.reports import GA4Reports
from connectors.google_auth import GoogleBridge, GoogleCredentials


class GA4Connector(GA4Reports, Connector[GA4Config, GoogleCredentials]):
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
        if known is not None:
            return known
        return _spec(name) if API_NAME.match(name) else None

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
        validated = super().validate_query(metric, params, filters, aggregation)
        for i, raw in enumerate(filters):
            name = raw.field if isinstance(raw, Filter) else str(raw.get("field", ""))
            if not API_NAME.match(name):
                raise MappingError(
                    f"filters[{i}].field",
                    f"`{name}` is not a GA4 dimension API name (e.g. `sessionDefaultChannelGroup`)",
                )
        return validated

    # --- hooks -----------------------------------------------------------------------------------

    async def check(self) -> CheckResult:
        """One tiny report: proves credentials and property access, and tells the timezone."""
        request = ga.RunReportRequest(
            property=self._property,
            date_ranges=[ga.DateRange(start_date="yesterday", end_date="today")],
            metrics=[ga.Metric(name="sessions")],
            limit=1,
            return_property_quota=True,
        )
        response = await self._call(self._ga().run_report, request=request)
        quota = QuotaLog()
        quota.record([response])
        zone = response.metadata.time_zone or None
        currency = response.metadata.currency_code or None
        # A UTC source takes the property's zone after this check (the engine's default); a
        # zone someone chose is kept, so that is the one worth a word.
        mismatch = self._zone_mismatch({zone} if zone else set())
        if self.timezone == "UTC":
            mismatch = None
        said = f"GA4 property {self.config.property_id} answered"
        if zone:
            said += f"; {mismatch}" if mismatch else f"; it reports days in {zone}"
        return CheckResult(
            said,
            timezone=zone,
            notices=[mismatch] if mismatch else [],
            details={
                "property_id": self.config.property_id,
                "time_zone": zone,
                "currency_code": currency,
                "quota": quota.details(),
            },
        )

    def _zone_mismatch(self, zones: set[str]) -> str | None:
        """What to do when the property's days are not the source's: the engine ends a window
        at the source's yesterday, which may be a day GA4's own calendar hasn't finished."""
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
        metrics = {m.api_name for m in metadata.metrics} | {
            old for m in metadata.metrics for old in m.deprecated_api_names
        }
        dimensions = {d.api_name for d in metadata.dimensions} | {
            old for d in metadata.dimensions for old in d.deprecated_api_names
        }
        if query.metric not in metrics:
            raise MappingError("metric", _unknown("metric", query.metric, metrics, self._pid))
        for i, flt in enumerate(query.filters):
            if flt.field not in dimensions:
                raise MappingError(
                    f"filters[{i}].field", _unknown("dimension", flt.field, dimensions, self._pid)
                )
        split = getattr(query.params, "split_by", None)
        if split is not None and split not in dimensions:
            raise MappingError(
                "params.split_by", _unknown("dimension", split, dimensions, self._pid)
            )

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult()
        quota = QuotaLog()
        pending = [Page(report) for report in plan(queries)]
        values: dict[tuple[str, date, str | None], float] = {}
        calls = 0
        zones: set[str] = set()
        while pending:
            batch, pending = pending[:MAX_REPORTS_PER_BATCH], pending[MAX_REPORTS_PER_BATCH:]
            if calls:
                await self._mind_the_quota(quota, result)
            calls += 1
            try:
                response = await self._call(
                    self._ga().batch_run_reports, request=self._batch(batch, window)
                )
            except _BadRequest as bad:
                pending = self._without_culprits(batch, bad.message, result) + pending
                continue
            quota.record(response.reports)
            for page, report in zip(batch, response.reports, strict=False):
                more = self._read(page, report, window, values, result)
                if more is not None:
                    pending.append(more)
                zones.add(report.metadata.time_zone)
        result.values = [
            DailyValue(query_id, day, value, group)
            for (query_id, day, group), value in sorted(
                values.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2] or "")
            )
        ]
        zones.discard("")
        mismatch = self._zone_mismatch(zones)
        if mismatch:
            result.warnings.append(mismatch)
            # Also on the source, where it stays until someone fixes the timezone.
            result.notices.append(mismatch)
        result.details = {"property_id": self._pid, "batch_calls": calls, "quota": quota.details()}
        return result
