"""The Salesforce connector: checks the org, validates mappings against ``describe``, fetches
one SOQL aggregate per shared statement, and keeps the org's API usage and address current.

The statements and their rows come from :mod:`connectors.salesforce.soql`, the error rules from
:mod:`connectors.salesforce.errors`; what is left here is the calls and the hooks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import BaseModel

from connectors.base import (
    Aggregation,
    CheckResult,
    Connector,
    ConnectorAuthError,
    ConnectorConfigError,
    FetchResult,
    Filter,
    HttpOptions,
    MappingError,
    MetricQuery,
    MetricSpec,
    OAuthSpec,
    RetriableError,
    TokenRefreshError,
    Window,
    json_body,
    stored_token,
)
from connectors.salesforce.errors import (
    REFRESH_REFUSED,
    ObjectRefused,
    QueryRejected,
    _error,
)
from connectors.salesforce.models import (
    DEFAULT_VERSION,
    FIELD_PATH,
    METRIC,
    SalesforceConfig,
    SalesforceCountParams,
    SalesforceCredentials,
    SalesforceSumParams,
    _address,
    _metric_spec,
    _spec,
    version_retired,
)
from connectors.salesforce.soql import (
    DATETIME_PADDING_DAYS,
    GROUP_LIMIT,
    Statement,
    _values,
    soql_condition,
)

#: Audit fields every object has, always datetimes: no describe needed to group by them.
AUDIT_DATETIMES = frozenset({"createddate", "lastmodifieddate", "systemmodstamp"})
NUMERIC_TYPES = frozenset({"double", "currency", "int", "long", "percent"})
#: A daily API usage past this share of the org's limit is worth a warning on the run.
USAGE_WARNING = 0.9

#: The org's daily usage in ``Sforce-Limit-Info: api-usage=25/5000; per-app-api-usage=17/250
#: (appName=...)``: the ``api-usage`` item, not the tail of ``per-app-api-usage`` (a connected
#: app's own quota), whichever comes first
#: (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm).
_USAGE = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")


class SalesforceConnector(Connector[SalesforceConfig, SalesforceCredentials]):
    """Counts and sums of any object's records per day, one SOQL aggregate per statement."""

    key = "salesforce"
    name = "Salesforce"
    category = "crm"
    config_model = SalesforceConfig
    credentials_model = SalesforceCredentials
    #: Examples for the catalogue; ``metric_spec`` accepts any object's ``.count`` and ``.sum``.
    metrics = (
        _spec("Lead", "count"),
        _spec("Contact", "count"),
        _spec("Account", "count"),
        _spec("Opportunity", "count"),
        _spec("Opportunity", "sum"),
        _spec("Campaign", "count"),
    )
    #: Deals close, and get re-dated, days after they were last read.
    recommended_lookback_days = 7
    #: The REST API version in every path unless the source's config names another.
    api_version = DEFAULT_VERSION
    #: A grouped answer holds at most 2,000 rows, one a day: the engine's windows fit in one
    #: query whatever the date field (``fetch`` splits longer ones the same way).
    max_window_days = GROUP_LIMIT - DATETIME_PADDING_DAYS
    #: Opportunities move between stages and dates are corrected for days after the fact.
    settle_days = 7

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._describes: dict[str, dict[str, Any]] = {}
        self._usage: tuple[int, int] | None = None

    @classmethod
    def http_options(
        cls, config: SalesforceConfig, credentials: SalesforceCredentials
    ) -> HttpOptions:
        root = config.base_url or _address(credentials.instance_url) or config.instance_url
        # With no address known, the first call refreshes: the token answer says where the org is.
        token = stored_token(credentials.refresh_token, credentials.access_token if root else None)
        return HttpOptions(
            base_url=root or "",
            # Salesforce caps concurrent long-running requests per org, not a rate.
            max_concurrency=4,
            oauth=OAuthSpec(
                token_endpoint=f"{config.login_url}/services/oauth2/token",
                client_id=credentials.client_id,
                client_secret=credentials.client_secret,
                token=token,
            ),
        )

    @classmethod
    def merge_token(cls, credentials: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
        """Salesforce answers with no expiry but with the org's ``instance_url``: kept, it is
        where the next runs send their calls."""
        merged = dict(credentials)
        for key in ("access_token", "refresh_token", "instance_url"):
            value = token.get(key)
            if isinstance(value, str) and value:
                merged[key] = value
        return merged

    @classmethod
    def metric_spec(cls, name: str) -> MetricSpec | None:
        return _metric_spec(name)

    @classmethod
    def sunset_of(cls, version: str) -> date | None:
        return version_retired(version)

    @classmethod
    def validate_query(
        cls,
        metric: str,
        params: Mapping[str, Any] | None,
        filters: Sequence[Filter | Mapping[str, Any]],
        aggregation: Aggregation | None,
    ) -> BaseModel:
        if _metric_spec(metric) is None:
            raise MappingError(
                "metric",
                f"`{metric[:80]}` is not a Salesforce metric: name an object's API name and "
                "`.count` or `.sum`, e.g. `Lead.count`, `Opportunity.sum`, `Campaign__c.count`",
            )
        return super().validate_query(metric, params, filters, aggregation)

    @classmethod
    def check_filters(cls, filters: Sequence[Filter]) -> None:
        for i, flt in enumerate(filters):
            if not FIELD_PATH.fullmatch(flt.field):
                raise MappingError(
                    f"filters[{i}].field",
                    f"`{flt.field[:60]}` is not a Salesforce field name: use an API name such "
                    "as `LeadSource` or a parent's field such as `Account.Industry`",
                )
            for value in flt.values:
                if isinstance(value, float) and not abs(value) < float("inf"):
                    raise MappingError(f"filters[{i}].value", "a filter value must be finite")

    # --- hooks -----------------------------------------------------------------------------------

    async def check(self) -> CheckResult:
        info = await self._get_json("/services/oauth2/userinfo")
        # The versioned root proves `api_version` is served and the REST API is open to the user.
        await self._get_json(f"{self._data}/")
        info = info if isinstance(info, dict) else {}
        zone = info.get("zoneinfo")
        try:
            timezone = str(ZoneInfo(zone).key) if isinstance(zone, str) and zone else None
        except (ZoneInfoNotFoundError, ValueError):
            timezone = None
        who = info.get("preferred_username") or info.get("name") or "the API user"
        return CheckResult(
            f"Connected to Salesforce as {who}"
            + (f"; days are counted in {timezone}, the user's time zone" if timezone else ""),
            timezone=timezone,
            details={
                "organization_id": info.get("organization_id"),
                "user_id": info.get("user_id"),
                **self._usage_details(),
            },
            notices=self._notices(),
        )

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult()
        statements: dict[Statement, list[MetricQuery]] = {}
        for query in queries:
            try:
                statement = await self._statement(query)
            except (ObjectRefused, QueryRejected) as exc:
                result.query_errors[query.id] = exc.message
                continue
            statements.setdefault(statement, []).append(query)
        for statement, group in statements.items():
            sums = sorted(
                {q.params.field for q in group if isinstance(q.params, SalesforceSumParams)}
            )
            count = any(not isinstance(q.params, SalesforceSumParams) for q in group)
            values = []
            try:
                # A grouped answer can't be paged: each query spans few enough days for one.
                for part in window.split(statement.max_days):
                    soql = statement.soql(part, count, sums)
                    records = await self._query(soql, statement.sobject)
                    values += _values(group, sums, records, part, result.warnings)
            except (ObjectRefused, QueryRejected) as exc:
                result.query_errors |= {q.id: exc.message for q in group}
                continue
            result.values += values
            # The aggregate covers every record of the window: a day absent has none any more.
            result.complete.update(q.id for q in group)
        result.details |= self._usage_details()
        if self._usage is not None and self._usage[0] >= USAGE_WARNING * self._usage[1]:
            used, limit = self._usage
            result.warnings.append(
                f"the org has used {used} of its {limit} daily API requests: other integrations "
                "may soon be refused"
            )
        result.notices += self._notices()
        return result

    async def validate_mapping_online(self, query: MetricQuery) -> None:
        match = METRIC.fullmatch(query.metric)
        if match is None:
            raise MappingError("metric", f"`{query.metric}` is not a Salesforce metric")
        sobject = match.group(1)
        try:
            fields = await self._fields(sobject)
        except ObjectRefused as exc:
            raise MappingError("metric", exc.message) from None
        params = query.params
        assert isinstance(params, SalesforceCountParams)
        date_field = fields.get(params.date_field.lower())
        if date_field is None or date_field.get("type") not in ("date", "datetime"):
            what = "has no field" if date_field is None else "has no date field"
            raise MappingError(
                "params.date_field",
                f"{sobject} {what} `{params.date_field}`{self._date_fields(fields)}",
            )
        if params.date_type is not None and params.date_type != date_field.get("type"):
            raise MappingError(
                "params.date_type",
                f"`{params.date_field}` is a {date_field.get('type')}, not a {params.date_type}",
            )
        if isinstance(params, SalesforceSumParams):
            summed = fields.get(params.field.lower())
            if summed is None or summed.get("type") not in NUMERIC_TYPES:
                raise MappingError(
                    "params.field",
                    f"{sobject} has no numeric field `{params.field}` this user can see "
                    "(a currency, number or percent field; check its field-level security)",
                )
            if summed.get("aggregatable") is False:
                raise MappingError("params.field", f"Salesforce can't sum `{params.field}`")
        relations = {
            str(f.get("relationshipName")).lower()
            for f in fields.values()
            if f.get("relationshipName")
        }
        for i, flt in enumerate(query.filters):
            head = flt.field.split(".")[0].lower()
            known = head in relations if "." in flt.field else head in fields
            if not known or ("." not in flt.field and fields[head].get("filterable") is False):
                raise MappingError(
                    f"filters[{i}].field",
                    f"{sobject} has no field `{flt.field}` this user can filter on "
                    "(check the API name and its field-level security)",
                )

    # --- statements and values -------------------------------------------------------------------

    @property
    def _data(self) -> str:
        return f"/services/data/{self.config.api_version}"

    async def _statement(self, query: MetricQuery) -> Statement:
        match = METRIC.fullmatch(query.metric)
        params = query.params
        if match is None or not isinstance(params, SalesforceCountParams):
            raise QueryRejected(f"`{query.metric}` is not a Salesforce metric")
        sobject = match.group(1)
        try:
            conditions = tuple(sorted({soql_condition(f) for f in query.filters}))
        except ValueError as exc:
            raise QueryRejected(f"{query.metric}: {exc}") from None
        if params.date_type is not None:
            is_datetime = params.date_type == "datetime"
        elif params.date_field.lower() in AUDIT_DATETIMES:
            is_datetime = True
        else:
            fields = await self._fields(sobject)
            field = fields.get(params.date_field.lower())
            kind = None if field is None else field.get("type")
            if kind not in ("date", "datetime"):
                what = (
                    f"{sobject} has no field `{params.date_field}` this user can see"
                    if field is None
                    else f"`{params.date_field}` on {sobject} is a {kind}, not a date"
                )
                raise QueryRejected(what + self._date_fields(fields))
            is_datetime = kind == "datetime"
        return Statement(sobject, params.date_field, is_datetime, conditions)

    # --- HTTP ------------------------------------------------------------------------------------

    async def _query(self, soql: str, sobject: str) -> list[Any]:
        """The rows of one grouped query, which Salesforce answers whole or refuses.

        A GROUP BY answer can't be paged, so one that says it has more (``done: false``, a
        ``nextRecordsUrl``) is not what Salesforce documents: it is not followed anywhere, and
        rather than store part of the window the fetch fails and the next run asks again.
        """
        body = await self._get_json(f"{self._data}/query", {"q": soql}, sobject=sobject)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise RetriableError("Salesforce answered the query without `records`")
        if body.get("done", True) is not True or body.get("nextRecordsUrl"):
            raise RetriableError(
                "Salesforce answered a grouped query in parts (`done: false`, a "
                "`nextRecordsUrl`), which it documents it never does: nothing was written"
            )
        return records

    async def _fields(self, sobject: str) -> dict[str, dict[str, Any]]:
        """The object's fields by lower-cased name (SOQL names are case-insensitive)."""
        described = self._describes.get(sobject)
        if described is None:
            body = await self._get_json(
                f"{self._data}/sobjects/{sobject}/describe", sobject=sobject, describing=True
            )
            fields = body.get("fields") if isinstance(body, dict) else None
            if not isinstance(fields, list):
                raise RetriableError(f"Salesforce described {sobject} without its fields")
            described = {str(f.get("name", "")).lower(): f for f in fields if isinstance(f, dict)}
            self._describes[sobject] = described
        return described

    @staticmethod
    def _date_fields(fields: Mapping[str, Mapping[str, Any]]) -> str:
        names = sorted(
            str(f.get("name")) for f in fields.values() if f.get("type") in ("date", "datetime")
        )
        return f"; its date fields: {', '.join(names[:15])}" if names else ""

    async def _get_json(
        self,
        url: str,
        params: dict[str, str] | None = None,
        *,
        sobject: str | None = None,
        describing: bool = False,
    ) -> Any:
        try:
            response = await self.http.get(f"{await self._root()}{url}", params=params)
        except TokenRefreshError as exc:
            if exc.transient:
                raise RetriableError(
                    "Salesforce's token endpoint is unavailable: the next run tries again"
                ) from None
            raise ConnectorAuthError(REFRESH_REFUSED) from None
        usage = _USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
        if usage:
            self._usage = (int(usage.group(1)), int(usage.group(2)))
        if not response.is_success:
            raise _error(
                response,
                sobject,
                describing,
                api_version=self.config.api_version,
                mask=self.http.redact,
            )
        return json_body(response, "Salesforce")

    def _usage_details(self) -> dict[str, Any]:
        if self._usage is None:
            return {}
        return {"api_usage": {"used": self._usage[0], "limit": self._usage[1]}}

    async def _root(self) -> str:
        """Where the org's REST API lives, for the next call.

        The token answer's ``instance_url`` is that address (an instance refresh or a My Domain
        change moves it), so the one given in this run, else the one given before and stored
        with the credentials, comes ahead of the configured one; ``base_url`` (a proxy, a test
        host) overrides them all. A refresh that is due (always, with no address known: see
        :meth:`http_options`) is made before the address is chosen, so its answer counts.
        """
        if self.config.base_url:
            return self.config.base_url
        token = getattr(self.http, "token", None)
        ensure = getattr(self.http, "ensure_active_token", None)
        if token is not None and ensure is not None:
            await ensure(token)  # a no-op for a live token; the request would do it otherwise
        root = self._reported() or _address(self.credentials.instance_url)
        root = root or self.config.instance_url
        if root is None:
            raise ConnectorConfigError(
                "Salesforce's token answer named no `instance_url`: set `instance_url` to the "
                "org's address, e.g. https://acme.my.salesforce.com"
            )
        return root

    def _reported(self) -> str | None:
        """The ``instance_url`` of the token refreshed in this run, if there was one."""
        token = getattr(self.http, "token", None)
        return _address(token.get("instance_url")) if isinstance(token, Mapping) else None

    def _notices(self) -> list[str]:
        """The org moved: calls follow it already, but the configured address is stale."""
        reported = self._reported() or _address(self.credentials.instance_url)
        configured = self.config.instance_url
        if self.config.base_url or reported is None or configured is None:
            return []
        if httpx.URL(reported).host.lower() == httpx.URL(configured).host.lower():
            return []
        return [
            f"Salesforce serves this org at {reported}, where krsync sends its calls: set "
            "`instance_url` to it"
        ]
