"""Salesforce: daily record counts and sums from SOQL aggregate queries over the REST API.

A metric is ``<SObject>.count`` or ``<SObject>.sum`` for any object API name (``Lead``,
``Opportunity``, ``Campaign__c``). Queries on the same object, date field and filters share one
statement, so ``COUNT(Id)`` and every ``SUM(field)`` asked of them come back in one call::

    GET {instance_url}/services/data/{api_version}/query?q=
      SELECT DAY_ONLY(convertTimezone(CreatedDate)) d, COUNT(Id) n, SUM(Amount) s0
      FROM Opportunity WHERE CreatedDate >= ... AND CreatedDate < ... AND (StageName = 'Won')
      GROUP BY DAY_ONLY(convertTimezone(CreatedDate))

``convertTimezone()`` makes a datetime field's day the API user's day (SOQL returns datetimes in
UTC otherwise); a date field (``CloseDate``) is grouped as it is. A window longer than one grouped
answer holds (:data:`GROUP_LIMIT`) is asked in parts.

Currency: in a multi-currency org a currency field such as ``Amount`` holds each record's value
in that record's ``CurrencyIsoCode``, but an aggregate of it in a query with ``GROUP BY`` (every
statement here has one) comes back in the org's corporate currency, and ``convertCurrency()``
can't be applied to an aggregate (the ``convertCurrency()`` page, formerly "Querying Currency
Fields in Multicurrency Orgs":
https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_querying_currency_fields.htm).
So ``SUM(Amount)`` is sent bare and its value stored as it comes: one figure a day in the
corporate currency, whatever the deals' own currencies, with no conversion of krsync's own.

No mapping text reaches SOQL raw: object and field names must be API-name identifiers, string
values are quoted with SOQL's escapes, numbers and booleans are rendered from Python values and
ISO dates only when they match a strict pattern.

The engine's client refreshes the OAuth token (on an expired session too: 401
``INVALID_SESSION_ID``). The token answer's ``instance_url`` is where the org's REST API lives,
so calls go there (this run's refresh's, else the stored one) ahead of the configured
``instance_url``, which a source may leave out: its first call then refreshes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx

from connectors.base import (
    CheckResult,
    Connector,
    ConnectorAuthError,
    ConnectorConfigError,
    DailyValue,
    FetchResult,
    Filter,
    HttpOptions,
    MappingError,
    MetricQuery,
    OAuthSpec,
    RateLimited,
    RetriableError,
    TokenRefreshError,
    Window,
    as_number,
)
from connectors.errors import Classifier, Hint, Refusal, RequestRefused, refresh_refused
from connectors.models import http_root
from connectors.objects import Described, ObjectRefused, read_groups
from connectors.salesforce.models import (
    DEFAULT_VERSION,
    FIELD_PATH,
    METRICS,
    SalesforceConfig,
    SalesforceCountParams,
    SalesforceCredentials,
    version_retired,
)
from connectors.series import iso_day, rows_of, zone_name

#: Rows a grouped (aggregate) query may answer. Such an answer can't be paged ("queries that
#: include a GROUP BY clause can't use the query locator to get more results",
#: https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_group_by_considerations.htm);
#: past 2,000 rows Salesforce refuses it with EXCEEDED_ID_LIMIT.
GROUP_LIMIT = 2000
#: Local days a datetime statement may group beyond its window: its UTC bounds reach a day
#: before and after it, and a user's zone (UTC-12 to UTC+14) moves each a day further.
DATETIME_PADDING_DAYS = 4
#: Audit fields every object has, always datetimes: no describe needed to group by them.
AUDIT_DATETIMES = frozenset({"createddate", "lastmodifieddate", "systemmodstamp"})
NUMERIC_TYPES = frozenset({"double", "currency", "int", "long", "percent"})
#: A daily API usage past this share of the org's limit is worth a warning on the run.
USAGE_WARNING = 0.9
#: REQUEST_LIMIT_EXCEEDED for the org's 24-hour request total: no point waiting within a run.
DAILY_LIMIT_RETRY_AFTER = 3600.0

#: The org's daily usage in ``Sforce-Limit-Info: api-usage=25/5000; per-app-api-usage=17/250
#: (appName=...)``: the ``api-usage`` item, not the tail of ``per-app-api-usage`` (a connected
#: app's own quota), whichever comes first
#: (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm).
_USAGE = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2})")
_COMPARE = {"eq": "=", "neq": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
#: SOQL's escapes for a quoted string: control characters without one of their own as ``\uXXXX``;
#: in a LIKE pattern ``%`` and ``_`` too.
_ESCAPES = {c: f"\\u{c:04x}" for c in [*range(0x20), 0x7F]} | {
    ord(c): "\\" + e for c, e in zip("\\'\"\n\r\t\b\f", "\\'\"nrtbf", strict=True)
}
_LIKE_ESCAPES = _ESCAPES | {ord("%"): "\\%", ord("_"): "\\_"}


class SalesforceConnector(Connector[SalesforceConfig, SalesforceCredentials]):
    """Counts and sums of any object's records per day, one SOQL aggregate per statement."""

    key = "salesforce"
    name = "Salesforce"
    category = "crm"
    #: Examples for the catalogue; ``metric_spec`` accepts any object's ``.count`` and ``.sum``.
    metrics = (
        *(METRICS.spec(o, "count") for o in ("Lead", "Contact", "Account", "Opportunity")),
        METRICS.spec("Opportunity", "sum"),
        METRICS.spec("Campaign", "count"),
    )
    #: Deals close, and get re-dated, days after they were last read.
    recommended_lookback_days = 7
    #: The REST API version in every path unless the source's config names another.
    api_version = DEFAULT_VERSION
    #: The engine's windows fit one grouped query whatever the date field (see ``fetch``).
    max_window_days = GROUP_LIMIT - DATETIME_PADDING_DAYS
    #: Opportunities move between stages and dates are corrected for days after the fact.
    settle_days = 7

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fields = Described(self._describe)
        #: ``{"used": n, "limit": n}`` of the org's daily API requests, as the last answer said.
        self._usage: dict[str, int] = {}

    @classmethod
    def http_options(
        cls, config: SalesforceConfig, credentials: SalesforceCredentials
    ) -> HttpOptions:
        root = config.base_url or http_root(credentials.instance_url) or config.instance_url
        # With no address known, the first call refreshes: the token answer says where the org is.
        stored = credentials if root else credentials.model_copy(update={"access_token": None})
        return HttpOptions(
            base_url=root or "",
            # Salesforce caps concurrent long-running requests per org, not a rate.
            max_concurrency=4,
            oauth=OAuthSpec.of(stored, f"{config.login_url}/services/oauth2/token"),
        )

    @classmethod
    def merge_token(cls, credentials: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
        """Salesforce answers with no expiry but with the org's ``instance_url``: kept, it is
        where the next runs send their calls."""
        kept = ("access_token", "refresh_token", "instance_url")
        return credentials | {k: v for k in kept if isinstance(v := token.get(k), str) and v}

    metric_spec = staticmethod(METRICS.metric_spec)
    metric_naming = (
        "Salesforce metric: name an object's API name and `.count` or `.sum`, e.g. "
        "`Lead.count`, `Opportunity.sum`, `Campaign__c.count`"
    )
    sunset_of = staticmethod(version_retired)

    @classmethod
    def check_filters(cls, filters: Sequence[Filter]) -> None:
        for i, flt in enumerate(filters):
            try:
                soql_condition(flt)
            except ValueError as exc:
                part = "value" if FIELD_PATH.fullmatch(flt.field) else "field"
                raise MappingError(f"filters[{i}].{part}", str(exc)) from None

    async def check(self) -> CheckResult:
        info = await self._get_json("/services/oauth2/userinfo")
        # The versioned root proves `api_version` is served and the REST API is open to the user.
        await self._get_json(f"{self._data}/")
        info = info if isinstance(info, dict) else {}
        timezone = zone_name(info.get("zoneinfo"))
        who = info.get("preferred_username") or info.get("name") or "the API user"
        return CheckResult(
            f"Connected to Salesforce as {who}"
            + (f"; days are counted in {timezone}, the user's time zone" if timezone else ""),
            timezone=timezone,
            details={k: info.get(k) for k in ("organization_id", "user_id")}
            | ({"api_usage": self._usage} if self._usage else {}),
            notices=self._notices(),
        )

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult()

        async def read(statement: Statement, group: list[MetricQuery]) -> list[DailyValue]:
            """Complete, for ``read_groups``: the aggregate covers every record of the window."""
            sums = METRICS.sums(group)
            count = any(METRICS.summed_of(q) is None for q in group)
            values: list[DailyValue] = []
            # A grouped answer can't be paged: each query spans few enough days for one.
            for part in window.split(statement.max_days):
                records = await self._query(statement.soql(part, count, sums), statement.sobject)
                values += _values(group, sums, records, part, result.warnings)
            return values

        await read_groups(result, queries, self._statement, read)
        if used := self._usage:
            result.details["api_usage"] = used
            if used["used"] >= USAGE_WARNING * used["limit"]:
                result.warnings.append(
                    f"the org has used {used['used']} of its {used['limit']} daily API requests: "
                    "other integrations may soon be refused"
                )
        result.notices += self._notices()
        return result

    async def validate_mapping_online(self, query: MetricQuery) -> None:
        sobject, params = METRICS.object_of(query.metric), query.params
        if sobject is None or not isinstance(params, SalesforceCountParams):
            raise MappingError("metric", f"`{query.metric}` is not a Salesforce metric")
        try:
            fields = await self._fields(sobject)
        except ObjectRefused as exc:
            raise MappingError("metric", exc.message) from None
        try:
            kind = _date_kind(sobject, params.date_field, fields)
        except RequestRefused as exc:
            raise MappingError("params.date_field", exc.message) from None
        if params.date_type is not None and params.date_type != kind:
            raise MappingError(
                "params.date_type",
                f"`{params.date_field}` is a {kind}, not a {params.date_type}",
            )
        if (field := METRICS.summed_of(query)) is not None:
            summed = fields.get(field.lower())
            if summed is None or summed.get("type") not in NUMERIC_TYPES:
                raise MappingError(
                    "params.field",
                    f"{sobject} has no numeric field `{field}` this user can see "
                    "(a currency, number or percent field; check its field-level security)",
                )
            if summed.get("aggregatable") is False:
                raise MappingError("params.field", f"Salesforce can't sum `{field}`")
        relations = {
            str(f["relationshipName"]).lower() for f in fields.values() if f.get("relationshipName")
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

    @property
    def _data(self) -> str:
        return f"/services/data/{self.config.api_version}"

    async def _statement(self, query: MetricQuery) -> Statement:
        sobject, params = METRICS.object_of(query.metric), query.params
        if sobject is None or not isinstance(params, SalesforceCountParams):
            raise RequestRefused(f"`{query.metric}` is not a Salesforce metric")
        try:
            conditions = tuple(sorted({soql_condition(f) for f in query.filters}))
        except ValueError as exc:
            raise RequestRefused(f"{query.metric}: {exc}") from None
        kind: str | None = params.date_type
        if kind is None and params.date_field.lower() in AUDIT_DATETIMES:
            kind = "datetime"
        elif kind is None:
            kind = _date_kind(sobject, params.date_field, await self._fields(sobject))
        return Statement(sobject, params.date_field, kind == "datetime", conditions)

    async def _query(self, soql: str, sobject: str) -> list[Any]:
        """The rows of one grouped query, answered whole: an answer in parts (``done: false``)
        isn't what Salesforce documents, so the fetch fails rather than store part of a window."""
        body = await self._get_json(f"{self._data}/query", {"q": soql}, sobject=sobject)
        records = rows_of(body, "records", "Salesforce's query")
        if body.get("done", True) is not True or body.get("nextRecordsUrl"):
            raise RetriableError(
                "Salesforce answered a grouped query in parts (`done: false`, a "
                "`nextRecordsUrl`), which it documents it never does: nothing was written"
            )
        return records

    async def _describe(self, sobject: str) -> dict[str, dict[str, Any]]:
        """The object's fields by lower-cased name (SOQL names are case-insensitive)."""
        path = f"{self._data}/sobjects/{sobject}/describe"
        body = await self._get_json(path, sobject=sobject)
        fields = rows_of(body, "fields", f"Salesforce's describe of {sobject}")
        return {str(f.get("name", "")).lower(): f for f in fields if isinstance(f, dict)}

    async def _get_json(
        self, url: str, params: dict[str, str] | None = None, sobject: str | None = None
    ) -> Any:
        try:
            response = await self.http.get(f"{await self._root()}{url}", params=params)
        except TokenRefreshError as exc:
            raise refresh_refused(exc, "Salesforce", _REFRESH_FIX) from None
        if usage := _USAGE.search(response.headers.get("Sforce-Limit-Info", "")):
            self._usage = {"used": int(usage.group(1)), "limit": int(usage.group(2))}
        return _ERRORS.json(
            response,
            self.http.redact,
            name=f"`{sobject}`" if sobject else "the object queried",
            api_version=self.config.api_version,
        )

    async def _root(self) -> str:
        """Where the org's REST API lives, for the next call (see the module's docstring; an
        instance refresh or a My Domain change moves it). A refresh that is due (always, with
        no address known) is made before the address is chosen, so its answer counts."""
        if self.config.base_url:
            return self.config.base_url
        token = getattr(self.http, "token", None)
        ensure = getattr(self.http, "ensure_active_token", None)
        if token is not None and ensure is not None:
            await ensure(token)  # a no-op for a live token; the request would do it otherwise
        root = self._known() or self.config.instance_url
        if root is None:
            raise ConnectorConfigError(
                "Salesforce's token answer named no `instance_url`: set `instance_url` to the "
                "org's address, e.g. https://acme.my.salesforce.com"
            )
        return root

    def _known(self) -> str | None:
        """The ``instance_url`` of the token refreshed in this run, else of the stored one."""
        token = getattr(self.http, "token", None)
        reported = http_root(token.get("instance_url")) if isinstance(token, Mapping) else None
        return reported or http_root(self.credentials.instance_url)

    def _notices(self) -> list[str]:
        """The org moved: calls follow it already, but the configured address is stale."""
        reported, configured = self._known(), self.config.instance_url
        if self.config.base_url or reported is None or configured is None:
            return []
        if httpx.URL(reported).host.lower() == httpx.URL(configured).host.lower():
            return []
        return [
            f"Salesforce serves this org at {reported}, where krsync sends its calls: set "
            "`instance_url` to it"
        ]


def _date_kind(sobject: str, name: str, fields: Mapping[str, Mapping[str, Any]]) -> str:
    """``date`` or ``datetime``, as the object's describe says ``name`` is; else why it can't
    date the object's records, as a ``RequestRefused`` naming the object's date fields."""
    field = fields.get(name.lower())
    kind = None if field is None else field.get("type")
    if kind in ("date", "datetime"):
        return str(kind)
    dates = sorted(
        str(f.get("name")) for f in fields.values() if f.get("type") in ("date", "datetime")
    )
    what = f"`{name}` on {sobject} is a {kind}, not a date"
    what = f"{sobject} has no field `{name}` this user can see" if field is None else what
    raise RequestRefused(what + (f"; its date fields: {', '.join(dates[:15])}" if dates else ""))


def soql_string(value: str, *, like: bool = False) -> str:
    """A quoted SOQL string literal: every quote, backslash and control character escaped."""
    return "'" + value.translate(_LIKE_ESCAPES if like else _ESCAPES) + "'"


def soql_literal(value: str | float | int | bool) -> str:
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("a filter value must be a finite number")
        return format(Decimal(repr(value)), "f")
    if ISO_DATE.fullmatch(value) or ISO_DATETIME.fullmatch(value):
        return value  # SOQL date literals are unquoted; the patterns admit nothing else
    return soql_string(value)


def soql_condition(flt: Filter) -> str:
    """One WHERE condition; the field was checked as an API name when the mapping was saved."""
    if not FIELD_PATH.fullmatch(flt.field):
        raise ValueError(
            f"`{flt.field[:60]}` is not a Salesforce field name: use an API name such as "
            "`LeadSource` or a parent's field such as `Account.Industry`"
        )
    if flt.op in ("in", "not_in"):
        values = ", ".join(soql_literal(v) for v in flt.values)
        return f"{flt.field} {'IN' if flt.op == 'in' else 'NOT IN'} ({values})"
    if flt.op == "contains":
        return f"{flt.field} LIKE '%{soql_string(str(flt.values[0]), like=True)[1:-1]}%'"
    return f"{flt.field} {_COMPARE[flt.op]} {soql_literal(flt.values[0])}"


@dataclass(frozen=True)
class Statement:
    """What queries may share: one SELECT per object, date field and set of conditions."""

    sobject: str
    date_field: str
    datetime: bool
    conditions: tuple[str, ...]

    @property
    def max_days(self) -> int:
        """Days one query may span with its groups (one a day) within :data:`GROUP_LIMIT`."""
        return GROUP_LIMIT - (DATETIME_PADDING_DAYS if self.datetime else 0)

    def soql(self, window: Window, count: bool, sums: Sequence[str]) -> str:
        day = f"DAY_ONLY(convertTimezone({self.date_field}))" if self.datetime else self.date_field
        select = [f"{day} d"] + (["COUNT(Id) n"] if count else [])
        select += [f"SUM({field}) s{i}" for i, field in enumerate(sums)]
        name = self.date_field
        if self.datetime:
            # UTC bounds a day wider on each side hold every local day of the window in any
            # time zone (UTC-12 to UTC+14); the days outside it are dropped from the answer.
            low = f"{window.start - timedelta(days=1)}T00:00:00Z"
            high = f"{window.end + timedelta(days=2)}T00:00:00Z"
            bounds = [f"{name} >= {low}", f"{name} < {high}"]
        else:
            bounds = [f"{name} >= {window.start}", f"{name} <= {window.end}"]
        where = " AND ".join(bounds + [f"({c})" for c in self.conditions])
        return f"SELECT {', '.join(select)} FROM {self.sobject} WHERE {where} GROUP BY {day}"


def _values(
    group: Sequence[MetricQuery],
    sums: Sequence[str],
    records: Sequence[Any],
    window: Window,
    warnings: list[str],
) -> list[DailyValue]:
    alias = {field: f"s{i}" for i, field in enumerate(sums)}
    values: list[DailyValue] = []
    for record in (r for r in records if isinstance(r, dict)):
        day = iso_day(raw := record.get("d"))
        if day is None:
            warnings.append(f"Salesforce sent a row dated `{str(raw)[:40]}`: skipped")
            continue
        for query in group if day in window else ():
            summed = METRICS.summed_of(query)
            key = "n" if summed is None else alias[summed]
            cell = record.get(key)
            # SUM over records whose field is blank is null: those records add nothing.
            value = 0.0 if cell is None and key != "n" else as_number(cell)
            if value is None:
                warnings.append(f"{query.metric} on {day}: `{str(cell)[:40]}` is not a number")
                continue
            values.append(DailyValue(query.id, day, value))
    return values


def _error_body(response: httpx.Response, body: Any) -> tuple[list[str], str]:
    """Salesforce's ``[{"message", "errorCode"}]`` (OAuth errors use ``error``): the code, and
    its family where the family decides (``INSUFFICIENT_ACCESS_*``)."""
    if body is None:
        return [], response.text
    first = body[0] if isinstance(body, list) and body else body
    if not isinstance(first, dict):
        return [], ""
    code = first.get("errorCode") or first.get("error") or ""
    code = code if isinstance(code, str) else ""  # an object is no code (another API's envelope)
    detail = str(first.get("message") or first.get("error_description") or "")
    family = ["INSUFFICIENT_ACCESS"] if code.startswith("INSUFFICIENT_ACCESS") else []
    return [code, *family], f"{code}: {detail}" if code else detail


def _limit(refusal: Refusal) -> Exception:
    daily = "TotalRequests" in refusal.said
    wait = refusal.retry_after or (DAILY_LIMIT_RETRY_AFTER if daily else None)
    what = "the org's daily API request limit" if daily else "a Salesforce request limit"
    return RateLimited(f"Salesforce refused the call: {what} is reached ({refusal.said})", wait)


def _too_many_groups(refusal: Refusal) -> Exception | None:
    if "queryMore" not in refusal.said:
        return None
    return RequestRefused(
        "Salesforce refused the query: a grouped (aggregate) answer can't be paged and "
        f"holds at most 2,000 groups, one a day here ({refusal.said}); sync a shorter window"
    )


_REFRESH_FIX = (
    "the `refresh_token` is revoked or expired, or `client_id`/`client_secret` don't belong to "
    "the connected app that issued it; reconnect the source to get a new `refresh_token`"
)
_NO_OBJECT = Hint(
    "Salesforce has no object {name} this user can see ({said}): check the API name (custom "
    "objects end in `__c`) and give the integration user Read access to the object in its "
    "profile or a permission set",
    ObjectRefused,
)
_ERRORS = Classifier(
    "Salesforce",
    {
        401: "Salesforce refused the session even after refreshing it (INVALID_SESSION_ID): "
        "reconnect the source and store a new `refresh_token`; the connected app needs the `api` "
        "and `refresh_token` OAuth scopes",
        ("REQUEST_LIMIT_EXCEEDED", 429): _limit,
        ("API_DISABLED_FOR_ORG", "API_CURRENTLY_DISABLED"): Hint(
            "Salesforce refused API access ({code}): the integration user's profile or a "
            "permission set needs the `API Enabled` permission, and the org's edition must "
            "include API access",
            ConnectorAuthError,
        ),
        "INVALID_TYPE": _NO_OBJECT,
        ("INSUFFICIENT_ACCESS", 403): Hint(
            "Salesforce refused access ({said}): give the integration user Read access to the "
            "object and its fields (profile or permission set) and `View All` or sharing rules "
            "for the records to count",
            ObjectRefused,
        ),
        404: (
            # A describe's 404 is an object the user can't see; elsewhere, a wrong address.
            replace(_NO_OBJECT, path="/describe$"),
            "Salesforce has nothing at this address ({said}): check `instance_url` and that "
            "the org serves `api_version` {api_version}",
        ),
        "EXCEEDED_ID_LIMIT": _too_many_groups,
        "INVALID_FIELD": Hint(
            "Salesforce refused a field ({said}): check the API names in `date_field`, `field` "
            "and the filters, and the integration user's field-level security",
            RequestRefused,
        ),
        "config": Hint("Salesforce refused the query ({status} {said})", RequestRefused),
    },
    read=_error_body,
)
