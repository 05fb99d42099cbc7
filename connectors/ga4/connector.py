"""Google Analytics 4 through the official ``google-analytics-data`` client (Data API v1beta, REST).

The plan asks for as few calls as the API allows: the mappings of a fetch that share filters (and
``split_by``) share one report of up to 10 metrics, each report has the ``date`` dimension over
the window, and reports go five at a time through ``batchRunReports``. A report pages with
``offset`` until its ``rowCount`` is reached; the follow-up pages of several reports are batched
together too. A ``400`` caused by one mapping (a metric the property doesn't have) fails that
mapping only: the others are asked again without it.

Every request, the token exchange included, goes out through the engine's client via
:class:`~connectors.google_auth.GoogleBridge` (``base_url`` and the key's ``token_uri`` alike),
so its retries, rate limit, private-network guard, call count and redaction apply to the official
client as to any connector.

Quotas: every report asks for ``returnPropertyQuota``, kept in ``FetchResult.details["quota"]``;
:class:`QuotaLog` pauses, then stops before being refused, as the property's tokens run low, and
a ``429`` for them waits for the hour or fails for the day (:func:`_quota`).

Honesty: days are the property's reporting timezone (``metadata.timeZone``, which ``check()``
returns); sampled, thresholded or "(other)"-rolled reports come back with warnings.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any, ClassVar

import httpx
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta import types as ga
from google.analytics.data_v1beta.services.beta_analytics_data.transports.base import (
    DEFAULT_CLIENT_INFO,
)
from google.analytics.data_v1beta.services.beta_analytics_data.transports.rest import (
    BetaAnalyticsDataRestTransport,
)
from google.api_core import exceptions as gexc
from pydantic import Field, field_validator

from connectors.base import (
    LIST_OPS,
    BaseUrl,
    CheckResult,
    Connector,
    ConnectorError,
    DailyValue,
    FetchResult,
    Filter,
    HttpOptions,
    MappingError,
    MetricQuery,
    MetricSpec,
    RateLimited,
    RetriableError,
    Window,
    as_number,
    retry_after,
)
from connectors.errors import Classifier, Hint, Refusal, RequestRefused, did_you_mean, json_or_none
from connectors.google_auth import (
    GoogleBridge,
    GoogleCredentials,
    build_credentials,
    client_refusal,
    google_error,
    google_hints,
)
from connectors.models import Params, Strict
from connectors.records import TEXT_OPS, FilterKey, filter_key
from connectors.series import group_queries

GA4_ROOT = "https://analyticsdata.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/analytics.readonly"
#: API names: `sessions`, `keyEvents:purchase`, `customEvent:plan`, `customUser:tier`.
API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(?::[A-Za-z0-9_]+)?$")


class GA4Config(Strict):
    property_id: str = Field(
        description="The GA4 property's numeric ID (Admin > Property details), e.g. 123456789.",
        pattern=r"^(properties/)?\d+$",
    )
    base_url: BaseUrl | None = Field(
        None, description=f"Replaces {GA4_ROOT} (a proxy, a regional endpoint, a test server)."
    )

    @field_validator("property_id")
    @classmethod
    def _bare_id(cls, value: str) -> str:
        return value.removeprefix("properties/")


class GA4Params(Params):
    split_by: str | None = Field(
        None,
        description="A dimension API name (e.g. `sessionDefaultChannelGroup`): one group per "
        "value instead of one figure a day.",
        pattern=API_NAME.pattern,
    )

    @field_validator("split_by")
    @classmethod
    def _not_date(cls, value: str | None) -> str | None:
        if value == "date":
            raise ValueError("every figure is already split by `date`")
        return value


_DISTINCT_USERS = re.compile(r"(Users|Purchasers)$")
#: Rates, averages and per-X ratios: `bounceRate`, `sessionKeyEventRate:purchase`,
#: `averageSessionDuration`, `sessionsPerUser`, `dauPerMau`, `returnOnAdSpend`, ...
_LEVEL = re.compile(r"(Rate(:|$)|^average|Average|Per[A-Z]|^returnOnAdSpend|Position$)")
#: Counted once per user ever, so daily values do add up.
_FIRST_TIME = frozenset({"newUsers", "firstTimePurchasers"})


def is_additive(metric: str) -> bool:
    """Distinct user counts and rates can't be summed over days; counts and amounts can."""
    base = metric.split(":", 1)[0]
    return base in _FIRST_TIME or not (_DISTINCT_USERS.search(base) or _LEVEL.search(base))


def _unit(metric: str) -> str:
    base = metric.split(":", 1)[0]
    if _LEVEL.search(base) and "Rate" in base:
        return "ratio"
    if "Duration" in base:
        return "seconds"
    if re.search(r"Revenue|Cost|AdSpend|Value$", base):
        return "currency"
    return "count"


def _spec(name: str, description: str = "", *, lower_is_better: bool = False) -> MetricSpec:
    return MetricSpec(
        name=name,
        description=description or f"GA4 metric `{name}`, per day",
        unit=_unit(name),
        params_model=GA4Params,
        filters={"*": TEXT_OPS},
        additive=is_additive(name),
        lower_is_better=lower_is_better,
    )


#: The usual metrics; any other metric API name is accepted too (``metric_spec``).
CATALOGUE: tuple[MetricSpec, ...] = (
    _spec("sessions", "Sessions that began on the day"),
    _spec("engagedSessions", "Sessions that lasted over 10 s, had a key event or 2+ page views"),
    _spec("newUsers", "Users who visited for the first time"),
    _spec("keyEvents", "Key events (formerly conversions); `keyEvents:<event>` for one event"),
    _spec("totalRevenue", "Purchase, subscription and ad revenue, in the property's currency"),
    _spec("purchaseRevenue", "Revenue from purchases, in the property's currency"),
    _spec("transactions", "Purchase-like events"),
    _spec("screenPageViews", "App screens and web pages viewed"),
    _spec("eventCount", "Events triggered"),
    _spec("activeUsers", "Distinct users engaged on the day (not additive: don't sum days)"),
    _spec("totalUsers", "Distinct users on the day (not additive: don't sum days)"),
    _spec("bounceRate", "Share of sessions that were not engaged (0-1)", lower_is_better=True),
    _spec("engagementRate", "Share of sessions that were engaged (0-1)"),
)

#: Pauses once tokens run low: the property's other users (dashboards) need some too.
LOW_HOURLY_TOKENS = 2_000  # 5 % of a standard property's 40,000 an hour
LOW_DAILY_TOKENS = 10_000  # 5 % of a standard property's 200,000 a day
#: Google says exhausted hourly tokens "return in under an hour".
HOURLY_QUOTA_WAIT = 3600.0
_HOURLY = ("tokens_per_hour", "tokens_per_project_per_hour")
#: The ``propertyQuota`` fields, in the order the details list them.
_QUOTAS = (
    "tokens_per_day tokens_per_hour tokens_per_project_per_hour concurrent_requests"
    " server_errors_per_project_per_hour potentially_thresholded_requests_per_hour"
).split()


class DailyQuotaExhausted(ConnectorError):
    """The property's tokens for the day are spent: no retry today can succeed."""


@dataclass
class QuotaLog:
    """Tokens as GA4 reports them: consumed summed over calls, the latest ``remaining``."""

    consumed: dict[str, int] = field(default_factory=dict)
    remaining: dict[str, int] = field(default_factory=dict)
    last_call_cost: int = 0
    slowed_down: bool = False

    def record(self, reports: Iterable[ga.RunReportResponse]) -> None:
        """One call's reports; each tells the property's state, so the largest cost counts."""
        consumed: dict[str, int] = {}
        remaining: dict[str, int] = {}
        for report in reports:
            quota = report.property_quota if "property_quota" in report else None
            for name in (n for n in _QUOTAS if quota is not None and n in quota):
                status = getattr(quota, name)
                consumed[name] = max(consumed.get(name, 0), status.consumed)
                remaining[name] = min(remaining.get(name, status.remaining), status.remaining)
        for name, tokens in consumed.items():
            self.consumed[name] = self.consumed.get(name, 0) + tokens
        self.remaining.update(remaining)
        self.last_call_cost = max(self.last_call_cost, consumed.get("tokens_per_hour", 0))

    async def before_call(self, pid: str, result: FetchResult, pause: float) -> None:
        """Stop if the next call can't be paid for, pause if tokens run low."""
        cost = max(self.last_call_cost, 1)
        # The property's hourly tokens, or this project's share of them, whichever is lower.
        hourly = min((self.remaining[n] for n in _HOURLY if n in self.remaining), default=None)
        daily = self.remaining.get("tokens_per_day")
        if daily is not None and daily < cost:
            raise DailyQuotaExhausted(
                f"GA4 property {pid} has {daily} tokens left today, fewer than the next "
                f"request needs (~{cost}): the run stops here; the tokens return tomorrow"
            )
        if hourly is not None and hourly < cost:
            raise RateLimited(
                f"GA4 property {pid} has {hourly} tokens left this hour, fewer than the "
                f"next request needs (~{cost}): stopped before being refused",
                HOURLY_QUOTA_WAIT,
            )
        if (hourly is None or hourly >= LOW_HOURLY_TOKENS) and (
            daily is None or daily >= LOW_DAILY_TOKENS
        ):
            return
        if not self.slowed_down:
            self.slowed_down = True
            known = ((hourly, "this hour"), (daily, "today"))
            left = [f"{n} left {when}" for n, when in known if n is not None]
            result.warnings.append(
                f"GA4 property {pid} is low on tokens ({', '.join(left)}): krsync "
                "slowed down to leave some for the property's other users"
            )
        await asyncio.sleep(pause)

    def details(self) -> dict[str, Any]:
        named = [n for n in _QUOTAS if n in self.consumed or n in self.remaining]
        quotas = {
            n: {"consumed": self.consumed.get(n, 0), "remaining": self.remaining.get(n)}
            for n in named
        }
        return quotas | {"slowed_down": self.slowed_down}


def _quota(refusal: Refusal) -> Exception | None:
    """A property's tokens for the day or the hour are used up: no retry within the run helps
    the first, the second waits for the hour."""
    pid, lowered = refusal.fields["pid"], refusal.said.lower()
    if "per day" in lowered:
        return DailyQuotaExhausted(
            f"GA4 property {pid} has used all its tokens for today ({refusal.said}): the run "
            "fails; the tokens return tomorrow, fewer or lighter mappings use fewer"
        )
    if "per hour" in lowered:
        return RateLimited(
            f"GA4 property {pid} has used its tokens for this hour ({refusal.said})",
            HOURLY_QUOTA_WAIT,
        )
    return None


_ERRORS = Classifier(
    "GA4",
    {
        **google_hints("GA4", "Google Analytics Data"),
        403: "the credentials have no access to GA4 property {pid} ({said}): in GA4 Admin > "
        "Property access management, give the service account's `client_email` (or the "
        "authorizing user) at least the Viewer role",
        404: "GA4 has no property {pid} ({said}): check `property_id` (Admin > Property "
        "details, the numeric ID)",
        429: _quota,
        "rate_limited": "GA4 asks to slow down ({said})",
        400: Hint("{said}", RequestRefused),
        # 409 ABORTED: Google says retry
        (409, "retriable"): Hint("GA4 is having trouble ({status} {said})", RetriableError),
        "config": "GA4 refused the request ({status} {said})",
    },
)


def _client_wait(response: httpx.Response) -> float | None:
    """What the engine's client waits before retrying: a 429 for exhausted property tokens
    won't clear within a retry (an hour, or tomorrow), so it goes straight to the connector."""
    if response.status_code == 429:
        message = google_error(json_or_none(response))[1].lower()
        if "per day" in message or "per hour" in message:
            return math.inf
    return retry_after(response)


def _unknown(kind: str, name: str, known: set[str], pid: str) -> str:
    return f"GA4 property {pid} has no {kind} `{name}`{did_you_mean(name, known)}"


MAX_METRICS_PER_REPORT = 10
MAX_REPORTS_PER_BATCH = 5
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
    groups = group_queries(queries, _report_key)
    pages: list[Page] = []
    for (key, split), members in groups.items():
        metrics = list(dict.fromkeys(q.metric for q in members))
        for start in range(0, len(metrics), MAX_METRICS_PER_REPORT):
            chunk = metrics[start : start + MAX_METRICS_PER_REPORT]
            pages.append(Page(Report(key, split, chunk, [q for q in members if q.metric in chunk])))
    return pages


def _report_key(query: MetricQuery) -> tuple[FilterKey, str | None]:
    return filter_key(query.filters), getattr(query.params, "split_by", None)


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


class GA4Connector(Connector[GA4Config, GoogleCredentials]):
    """Any GA4 metric, per day, filtered on any dimension, batched into as few calls as possible."""

    key = "ga4"
    name = "Google Analytics 4"
    category = "analytics"
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
        self._metadata: ga.Metadata | None = None

    @classmethod
    def http_options(cls, config: GA4Config, credentials: GoogleCredentials) -> HttpOptions:
        # A standard property takes 10 concurrent requests; leave room for its dashboards.
        return HttpOptions(
            base_url=config.base_url or GA4_ROOT, max_concurrency=5, retry_after=_client_wait
        )

    @property
    def _pid(self) -> str:
        return self.config.property_id

    @property
    def _property(self) -> str:
        return f"properties/{self._pid}"

    @cached_property
    def _ga(self) -> BetaAnalyticsDataClient:
        """The official REST transport, its session's HTTP carried over the engine's client;
        built on first use."""
        credentials = build_credentials(self.credentials, SCOPE)
        transport = BetaAnalyticsDataRestTransport(
            host=self.config.base_url or GA4_ROOT,
            credentials=credentials,
            # Exchange the signed JWT at the key's `token_uri` (SPEC: it is honoured) rather
            # than sending it as a self-signed bearer.
            always_use_jwt_access=False,
        )
        self._bridge.carry(transport, credentials, DEFAULT_CLIENT_INFO, "google-analytics-data")
        return BetaAnalyticsDataClient(transport=transport)

    async def _property_metadata(self) -> ga.Metadata:
        if self._metadata is None:
            request = ga.GetMetadataRequest(name=f"{self._property}/metadata")
            self._metadata = await self._call(self._ga.get_metadata, request=request)
        return self._metadata

    async def _call(self, method: Any, **kwargs: Any) -> Any:
        try:
            return await self._bridge.authorized(self.credentials, method, **kwargs)
        except gexc.GoogleAPICallError as exc:
            refusal = client_refusal(exc, self._bridge.redact, pid=self._pid)
            raise _ERRORS.classify(refusal) from None

    metric_naming = (
        "GA4 metric API name (e.g. `sessions`, `keyEvents:purchase`; the list: "
        "developers.google.com/analytics/devguides/reporting/data/v1/api-schema)"
    )

    @classmethod
    def metric_spec(cls, name: str) -> MetricSpec | None:
        known = super().metric_spec(name)
        return known or (_spec(name) if API_NAME.match(name) else None)

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
        response = await self._call(self._ga.run_report, request=request)
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
                response = await self._call(self._ga.batch_run_reports, request=request)
            except RequestRefused as bad:
                pending = _without_culprits(batch, bad.message, result) + pending
                continue
            quota.record(response.reports)
            for page, report in zip(batch, response.reports, strict=False):
                pending += _read(page, report, window, values, result)
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
    page: Page, response: ga.RunReportResponse, window: Window, values: _Values, result: FetchResult
) -> list[Page]:
    """Values of one report page into ``values``; the next page if rows remain."""
    report = page.report
    names = [h.name for h in response.metric_headers] or report.metrics
    by_metric = group_queries(report.queries, lambda q: q.metric)
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
            for query in by_metric.get(name, ()):
                values[day, query.id, group] = number
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


def _without_culprits(batch: Sequence[Page], message: str, result: FetchResult) -> list[Page]:
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
