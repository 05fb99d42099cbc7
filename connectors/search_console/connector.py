"""Google Search Console: daily clicks, impressions, CTR and position (``searchAnalytics.query``).

``POST {base}/webmasters/v3/sites/{siteUrl}/searchAnalytics/query`` (the path documented at
developers.google.com/webmaster-tools/v1/searchanalytics/query) with the ``date`` dimension,
``dataState: "final"`` and the mapping's filters as one ``and`` group. Every row carries all four
metrics, so the mappings of a fetch that share filters and search type share one request. Rows
come sorted by clicks, not by date, so paging (``startRow``) goes on until a page comes back
shorter than ``rowLimit``.

google-auth obtains the access token from the credentials (a service account's signed JWT, or an
OAuth refresh token); that token call, like the API calls, goes over the engine's client (through
:class:`~connectors.google_auth.GoogleBridge`), so it is counted, guarded against private
addresses, retried and redacted like the rest, and tests see it where they see the API.

Search Console dates are Pacific Time whatever the site's audience, so ``check()`` reports
``America/Los_Angeles``; final data lags two to three days, hence a lookback of four.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import Field, field_validator

from connectors.base import (
    BaseUrl,
    CheckResult,
    Connector,
    ConnectorAuthError,
    FetchResult,
    Filter,
    FilterOp,
    HttpOptions,
    MappingError,
    MetricQuery,
    Window,
)
from connectors.errors import Classifier, Hint, RequestRefused
from connectors.google_auth import (
    GoogleBridge,
    GoogleCredentials,
    build_credentials,
    google_hints,
    google_words,
)
from connectors.models import Params, Strict, catalogue, root_field
from connectors.paginate import OffsetPaginator, Request, pages
from connectors.series import daily, group_queries, iso_day

SC_ROOT = "https://www.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/webmasters.readonly"
#: "Dates are in PT" (searchanalytics/query, startDate): the day boundaries of every figure.
PACIFIC = "America/Los_Angeles"
METRICS = ("clicks", "impressions", "ctr", "position")
DEVICES = frozenset({"DESKTOP", "MOBILE", "TABLET"})
#: ``permissionLevel`` of an account that may not read the property's data. The Search Console
#: API v1 definition spells it SITE_UNVERIFIED_USER (WmxSite in its discovery document), the
#: Webmasters v3 reference siteUnverifiedUser; which one an answer uses is Google's choice.
UNVERIFIED = frozenset({"SITE_UNVERIFIED_USER", "siteUnverifiedUser"})
_TEXT_OPS: frozenset[FilterOp] = frozenset({"eq", "neq", "contains", "in", "not_in"})
_CODE_OPS: frozenset[FilterOp] = frozenset({"eq", "neq", "in", "not_in"})
_OPERATORS = {"eq": "equals", "neq": "notEquals", "contains": "contains"}
#: RE2 metacharacters; escaping only these keeps the expression valid RE2.
_RE2_SPECIAL = re.compile(r"([\\.^$|?*+()\[\]{}])")


class SearchConsoleConfig(Strict):
    site_url: str = Field(
        description="The property as Search Console names it: `https://www.example.com/` "
        "(URL prefix) or `sc-domain:example.com` (domain)."
    )
    base_url: BaseUrl | None = root_field(SC_ROOT, unset=True)

    @field_validator("site_url")
    @classmethod
    def _property(cls, value: str) -> str:
        value = value.strip()
        if re.match(r"^sc-domain:[^\s/]+$", value):
            return value
        if not re.match(r"(?i)^https?://[^/\s]+", value):
            raise ValueError(
                "`site_url` is `https://www.example.com/` (URL prefix) or "
                "`sc-domain:example.com` (domain property)"
            )
        # A URL-prefix property always ends with a slash; without it Search Console says 403.
        return value if re.match(r"(?i)^https?://[^/]+/", value) else value + "/"


class SearchConsoleParams(Params):
    search_type: Literal["web", "image", "video", "news", "discover", "googleNews"] = Field(
        "web", description="Which Google results: web, image, video, news, discover, googleNews."
    )


_ERRORS = Classifier(
    "Search Console",
    {
        **google_hints("Search Console", "Search Console"),
        403: "the credentials have no access to Search Console property {config.site_url} "
        "({said}): add the service account's `client_email` (or the authorizing user) under "
        "Settings > Users and permissions, and check `site_url` (`sc-domain:` for a domain "
        "property)",
        404: "Search Console has no property {config.site_url}: check `site_url`",
        429: "Search Console asks to slow down ({said})",
        400: Hint("{said}", RequestRefused),
        "retriable": "Search Console is having trouble ({status} {said})",
        "config": "Search Console refused the request ({status} {said})",
    },
    read=google_words,
)


class SearchConsoleConnector(Connector[SearchConsoleConfig, GoogleCredentials]):
    """Daily Search Console performance, one request per filter set, paged to the end."""

    key = "search_console"
    name = "Google Search Console"
    category = "analytics"
    metrics = catalogue(
        {
            "clicks": ("Clicks from Google Search results to the site", "clicks"),
            "impressions": ("Times a link to the site appeared in results", "impressions"),
            "ctr": ("Clicks / impressions of the day (0-1)", "ratio", {"additive": False}),
            # 1 is the top of the page: an "average position at most 8" key result is `at_most`.
            "position": (
                "Average top position of the site in results (1 is the top: lower is better)",
                "position",
                {"additive": False, "lower_is_better": True},
            ),
        },
        params_model=SearchConsoleParams,
        filters={
            "query": _TEXT_OPS,
            "page": _TEXT_OPS,
            "country": _CODE_OPS,
            "device": _CODE_OPS,
            "searchAppearance": _CODE_OPS,
        },
    )
    recommended_lookback_days = 4
    #: The Search Console API v1 (its paths keep ``/webmasters/v3/``); Google dates no sunset.
    api_version = "v1"
    #: Search Console's final figures come 2 to 3 days late and the last days still move.
    settle_days = 3
    #: Rows a page asks for; the API's maximum (tests lower it to exercise paging).
    row_limit: ClassVar[int] = 25_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._bridge = GoogleBridge(self.http)
        self._google = build_credentials(self.credentials, SCOPE)
        base = self.config.base_url or SC_ROOT
        self._site = f"{base}/webmasters/v3/sites/{quote(self.config.site_url, safe='')}"

    @classmethod
    def http_options(
        cls, config: SearchConsoleConfig, credentials: GoogleCredentials
    ) -> HttpOptions:
        # Search Analytics allows 1,200 queries a minute per site: 10 a second stays well clear.
        return HttpOptions(base_url=config.base_url or SC_ROOT, rate_per_second=10.0)

    @classmethod
    def check_filters(cls, filters: Sequence[Filter]) -> None:
        for i, flt in enumerate(filters):
            for text in map(str, flt.values):
                wrong = None
                if flt.field == "device" and text.upper() not in DEVICES:
                    wrong = "a Search Console device: use DESKTOP, MOBILE or TABLET"
                if flt.field == "country" and not re.fullmatch(r"[A-Za-z]{3}", text):
                    wrong = (
                        "a country code: Search Console uses ISO 3166-1 alpha-3 codes, "
                        "e.g. `fra`, `usa`"
                    )
                if wrong:
                    raise MappingError(f"filters[{i}].value", f"`{text}` is not {wrong}")

    async def check(self) -> CheckResult:
        """``sites.get``: the credentials work and may read this property."""
        body = await self._send("GET", self._site)
        level = str(body.get("permissionLevel", "")) if isinstance(body, Mapping) else ""
        if level in UNVERIFIED:
            raise ConnectorAuthError(
                f"the credentials are not a verified user of {self.config.site_url} in Search "
                "Console: add the service account's `client_email` (or the authorizing user) "
                "under Settings > Users and permissions"
            )
        return CheckResult(
            f"Search Console property {self.config.site_url} answered ({level or 'access'}); "
            f"its days are Pacific Time",
            timezone=PACIFIC,
            details={"site_url": self.config.site_url, "permission_level": level or None},
        )

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult()
        requests = 0
        aggregations: set[str] = set()
        groups = group_queries(
            queries,
            lambda q: (str(getattr(q.params, "search_type", "web")), repr(_filters(q.filters))),
        )
        for (search_type, _), members in groups.items():
            try:
                days, calls, aggregation = await self._days(
                    window, search_type, _filters(members[0].filters)
                )
            except RequestRefused as bad:
                result.fail(members, f"Search Console refused the query: {bad}")
                requests += 1
                continue
            requests += calls
            aggregations |= {aggregation} - {""}
            for q in members:
                result.values += daily(
                    q.id, {day: row[q.metric] for day, row in days.items() if q.metric in row}
                )
        result.details = {
            "site_url": self.config.site_url,
            "requests": requests,
            "aggregation": sorted(aggregations),
        }
        return result

    async def _days(
        self, window: Window, search_type: str, filters: list[dict[str, str]]
    ) -> tuple[dict[date, dict[str, float]], int, str]:
        """Every row of the window, page after page, until a short page."""
        body: dict[str, Any] = {
            "startDate": window.start.isoformat(),
            "endDate": window.end.isoformat(),
            "dimensions": ["date"],
            "type": search_type,
            "aggregationType": "auto",
            "dataState": "final",
            "rowLimit": self.row_limit,
            "startRow": 0,
        }
        if filters:
            body["dimensionFilterGroups"] = [{"groupType": "and", "filters": filters}]
        days: dict[date, dict[str, float]] = {}
        calls, aggregation = 0, ""
        paginator = OffsetPaginator(
            offset_param="startRow", limit_param=None, limit=self.row_limit, into="body"
        )
        async for page in pages(
            paginator,
            Request("POST", f"{self._site}/searchAnalytics/query", body=body),
            lambda r: self._send(r.method, r.url, r.body),
            count=lambda page: len(_rows(page)),
            what="Search Console's",
        ):
            calls += 1
            aggregation = str(page.get("responseAggregationType", "")) if page else aggregation
            for row in _rows(page):
                keys = row.get("keys") if isinstance(row, Mapping) else None
                day = iso_day(keys[0]) if isinstance(keys, list) and keys else None
                if day is not None and day in window:
                    days[day] = {m: float(row[m]) for m in METRICS if m in row}
        return days, calls, aggregation

    async def _headers(self, *, renew: bool = False) -> dict[str, str]:
        """google-auth's ``Authorization`` header; ``renew`` forces a new token."""
        credentials = self._google

        def apply() -> dict[str, str]:
            request = self._bridge.auth_request()
            if renew:
                credentials.refresh(request)  # type: ignore[no-untyped-call]
            headers: dict[str, str] = {}
            credentials.before_request(request, "POST", self._site, headers)  # type: ignore[no-untyped-call]
            return headers

        headers = await self._bridge.authorized(self.credentials, apply)
        self._bridge.hold_bearer(headers)
        return headers

    async def _send(self, method: str, url: str, body: Any = None) -> Any:
        """One call; a 401 gets one fresh token (tokens die before they expire), then fails."""
        for renew in (False, True):
            headers = await self._headers(renew=renew)
            response = await self.http.request(method, url, headers=headers, json=body)
            if response.status_code != 401:
                break
        return _ERRORS.json(response, self.http.redact, config=self.config)


def _rows(page: Any) -> list[Any]:
    rows = page.get("rows", []) if isinstance(page, Mapping) else []
    return rows if isinstance(rows, list) else []


def _filters(filters: Sequence[Filter]) -> list[dict[str, str]]:
    """One ``and`` group's filters; ``in`` and ``not_in`` become anchored RE2 alternations.
    Countries are lower-case ISO 3166-1 alpha-3 in Search Console, devices upper-case."""
    out: list[dict[str, str]] = []
    for flt in sorted(filters, key=lambda f: (f.field, f.op, str(f.value))):
        case = {"country": str.lower, "device": str.upper}.get(flt.field, str)
        values = [case(str(v)) for v in flt.values]
        if flt.op in ("in", "not_in"):
            operator = "includingRegex" if flt.op == "in" else "excludingRegex"
            expression = "^(" + "|".join(_RE2_SPECIAL.sub(r"\\\1", v) for v in values) + ")$"
        else:
            operator, expression = _OPERATORS[flt.op], values[0]
        out.append({"dimension": flt.field, "operator": operator, "expression": expression})
    return out
