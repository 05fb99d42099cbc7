"""The HubSpot connector: checks the account, validates mappings, and fetches by searching.

What it decides is which searches to make (one shared search per object, date property and
filters; paged or one a day, whichever costs fewer calls; a window split past 10,000 records);
the bodies, pages and tallies come from :mod:`connectors.hubspot.search`, and the errors and
what the rate-limit headers ask from :mod:`connectors.hubspot.errors`.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Mapping, Sequence
from datetime import UTC, date, timedelta, tzinfo
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.base import (
    CheckResult,
    Connector,
    DailyValue,
    FetchResult,
    Filter,
    FilterOp,
    HttpOptions,
    MappingError,
    MetricQuery,
    OAuthSpec,
    Window,
    json_body,
    stored_token,
)
from connectors.hubspot.errors import (
    SEARCHES_PER_SECOND,
    MissingScope,
    SearchRefused,
    _client_wait,
    _error,
    _limits,
    _pace,
)
from connectors.hubspot.models import (
    CountParams,
    HubSpotConfig,
    HubSpotCredentials,
    SumParams,
    _metrics,
)
from connectors.hubspot.search import (
    MAX_FILTERS_PER_GROUP,
    PAGE_LIMIT,
    RESULT_CAP,
    Page,
    Plan,
    Search,
    _day_start,
    _page,
    currency_properties,
    paging_calls,
    tally,
)
from connectors.paginate import CursorPaginator, Request, pages

#: Where an object's records are searched.
_SEARCH = "/crm/v3/objects/{}/search"
#: Built-in datetime properties: no metadata call needed to learn how to bound them.
_KNOWN_DATETIMES = frozenset(
    {"createdate", "closedate", "hs_createdate", "lastmodifieddate", "hs_lastmodifieddate"}
)


class HubSpotConnector(Connector[HubSpotConfig, HubSpotCredentials]):
    """``<object>.count`` and ``<object>.sum`` for contacts, companies, deals and tickets."""

    key = "hubspot"
    name = "HubSpot CRM"
    category = "crm"
    config_model = HubSpotConfig
    credentials_model = HubSpotCredentials
    metrics = _metrics()
    #: Deals get closed and records edited days later, and their dates moved back with them.
    recommended_lookback_days = 7
    #: CRM v3, the version in every path; HubSpot has set no end of support for it.
    api_version = "v3"
    #: ``contains`` is sent as CONTAINS_TOKEN, which HubSpot documents as "contains a token",
    #: with ``*`` as its wildcard (https://developers.hubspot.com/docs/api/crm/search): a word
    #: of the value, where every other platform matches a substring. No wildcards are added, so
    #: a mapping's filter means what HubSpot says it does; the catalogue tells how to ask for part.
    filter_meanings: ClassVar[Mapping[FilterOp, str]] = {
        "contains": "contains the value as a whole word (HubSpot's CONTAINS_TOKEN): `renewal` "
        'matches "ACME renewal 2026", not "Renewals"; `*` stands for any characters within '
        "the word, so `renew*` matches words that start with it and `*renew*` words holding it",
    }
    #: Deals move between stages and dates are corrected for days after the fact.
    settle_days = 7

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits: dict[str, int] = {}
        self._types: dict[tuple[str, str], str] = {}
        self._searches = 0

    @classmethod
    def http_options(cls, config: HubSpotConfig, credentials: HubSpotCredentials) -> HttpOptions:
        base = config.base_url.rstrip("/")
        if not credentials.uses_oauth:
            return HttpOptions(
                base_url=base,
                rate_per_second=SEARCHES_PER_SECOND,
                max_concurrency=4,
                headers={"Authorization": f"Bearer {credentials.access_token}"},
                retry_after=_client_wait,
                pace=_pace,
            )
        token = stored_token(
            credentials.refresh_token, credentials.access_token, credentials.expires_at
        )
        return HttpOptions(
            base_url=base,
            rate_per_second=SEARCHES_PER_SECOND,
            max_concurrency=4,
            retry_after=_client_wait,
            pace=_pace,
            oauth=OAuthSpec(
                token_endpoint=f"{base}/oauth/v1/token",
                client_id=credentials.client_id or "",
                client_secret=credentials.client_secret or "",
                token=token,
            ),
        )

    @classmethod
    def check_filters(cls, filters: Sequence[Filter]) -> None:
        if len(filters) + 1 > MAX_FILTERS_PER_GROUP:
            raise MappingError(
                "filters",
                f"HubSpot's search takes at most {MAX_FILTERS_PER_GROUP} filters in a filter "
                f"group and the date range takes one: use at most {MAX_FILTERS_PER_GROUP - 1} "
                f"filters (this mapping has {len(filters)}; `in` matches a list in one)",
            )

    # --- check and metadata ----------------------------------------------------------------------

    async def check(self) -> CheckResult:
        body = await self._call("GET", "/account-info/v3/details")
        info = body if isinstance(body, dict) else {}
        portal, zone = info.get("portalId"), info.get("timeZone")
        try:
            timezone = str(ZoneInfo(str(zone))) if zone else None
        except (ZoneInfoNotFoundError, ValueError):
            timezone = None
        where = f" ({timezone})" if timezone else ""
        return CheckResult(
            f"Connected to HubSpot account {portal}{where}",
            timezone=timezone,
            details={
                "portal_id": portal,
                "time_zone": zone,
                "currency": info.get("companyCurrency"),
            },
        )

    async def validate_mapping_online(self, query: MetricQuery) -> None:
        obj = query.metric.split(".")[0]
        try:
            body = await self._call("GET", f"/crm/v3/properties/{obj}", obj=obj)
        except MissingScope:
            return  # the token may search without reading schemas: checked by shape only
        rows = body.get("results") if isinstance(body, dict) else None
        known = {
            str(p["name"]): str(p.get("type", ""))
            for p in rows or []
            if isinstance(p, dict) and p.get("name")
        }
        self._types.update({(obj, name): kind for name, kind in known.items()})

        def unknown(part: str, name: str) -> MappingError:
            close = difflib.get_close_matches(name, list(known), n=3)
            hint = f"; did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
            return MappingError(part, f"HubSpot {obj} have no property `{name}`{hint}")

        params = query.params
        assert isinstance(params, CountParams)
        date_kind = known.get(params.date_property)
        if date_kind is None:
            raise unknown("params.date_property", params.date_property)
        if date_kind not in ("date", "datetime"):
            raise MappingError(
                "params.date_property",
                f"`{params.date_property}` is a {date_kind} property, not a date: use a date or "
                "datetime property such as `createdate` or `closedate`",
            )
        if isinstance(params, SumParams):
            sum_kind = known.get(params.property)
            if sum_kind is None:
                raise unknown("params.property", params.property)
            if sum_kind != "number":
                raise MappingError(
                    "params.property",
                    f"`{params.property}` is a {sum_kind} property: only a number property can be "
                    "summed",
                )
        for i, flt in enumerate(query.filters):
            if flt.field not in known:
                raise unknown(f"filters[{i}].field", flt.field)

    # --- fetch -----------------------------------------------------------------------------------

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult()
        groups: dict[Search, list[MetricQuery]] = {}
        for query in queries:
            groups.setdefault(Search.of(query), []).append(query)
        plans: dict[str, dict[str, Any]] = {}
        lost: list[MissingScope] = []
        for search, members in groups.items():
            plan = Plan(search)
            try:
                values = await self._fetch_group(plan, members, window, result.warnings)
            except (MissingScope, SearchRefused) as exc:
                if isinstance(exc, MissingScope):
                    lost.append(exc)
                for query in members:
                    result.query_errors[query.id] = exc.message
                continue
            result.values += values
            # Every record of the window was counted: a day without one has none any more.
            result.complete.update(query.id for query in members)
            for query in members:
                plans[query.id] = {"plan": plan.kind, "total": plan.total, "calls": plan.calls}
        if lost and len(result.query_errors) == len(queries):
            raise lost[0]  # nothing could be read: the token is what needs fixing
        result.details = {"searches": self._searches, "plans": plans}
        if self._limits:
            result.details["rate_limit"] = dict(self._limits)
        return result

    async def _fetch_group(
        self, plan: Plan, members: list[MetricQuery], window: Window, warnings: list[str]
    ) -> list[DailyValue]:
        search = plan.search
        zone = await self._bucket_zone(search.object, search.date_property, warnings)
        lo = _day_start(window.start, zone)
        hi = _day_start(window.end + timedelta(days=1), zone) - 1
        summed = sorted({q.params.property for q in members if isinstance(q.params, SumParams)})
        currencies = currency_properties(search.object, summed)
        properties = list(
            dict.fromkeys([search.date_property, *summed, *sorted(set(currencies.values()))])
        )
        before = self._searches
        first = await self._search(search, lo, hi, PAGE_LIMIT, properties)
        plan.total = first.total
        # One day's count is the total already read; more days cost a search each.
        daily_calls = 0 if window.num_days == 1 else window.num_days
        if not summed and first.after is not None and daily_calls <= paging_calls(first.total):
            plan.kind = "per_day"
            counts = (
                [(window.start, first.total)]
                if daily_calls == 0
                else await self._per_day(search, window, zone)
            )
            plan.calls = self._searches - before
            return [DailyValue(q.id, day, float(n)) for q in members for day, n in counts if n > 0]
        records = await self._page_all(search, lo, hi, properties, first, warnings)
        plan.calls = self._searches - before
        return tally(members, records, search.date_property, window, zone, warnings, currencies)

    async def _bucket_zone(self, obj: str, name: str, warnings: list[str]) -> tzinfo:
        """A ``date`` property holds midnight UTC of its day; a ``datetime`` an instant."""
        if name in _KNOWN_DATETIMES:
            return self.zone
        kind = self._types.get((obj, name))
        if kind is None:
            try:
                body = await self._call(
                    "GET",
                    f"/crm/v3/properties/{obj}/{name}",
                    obj=obj,
                    not_found=f"HubSpot {obj} have no property `{name}`: set `date_property` "
                    "to one of theirs, such as `createdate`",
                )
            except MissingScope:
                warnings.append(
                    f"can't read the type of `{name}` (the token can't read {obj}' schema): "
                    "days are bounded as for a datetime property"
                )
                return self.zone
            kind = str(body.get("type", "")) if isinstance(body, dict) else ""
            self._types[obj, name] = kind
        if kind and kind not in ("date", "datetime"):
            raise SearchRefused(
                f"`{name}` is a {kind} property of HubSpot {obj}, not a date: set "
                "`date_property` to a date or datetime property such as `createdate`"
            )
        return UTC if kind == "date" else self.zone

    async def _per_day(
        self, search: Search, window: Window, zone: tzinfo
    ) -> list[tuple[date, int]]:
        async def one(day: date) -> tuple[date, int]:
            lo = _day_start(day, zone)
            hi = _day_start(day + timedelta(days=1), zone) - 1
            page = await self._search(search, lo, hi, 1, [search.date_property])
            return day, page.total

        tasks = [asyncio.ensure_future(one(day)) for day in window.days()]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _page_all(
        self,
        search: Search,
        lo: int,
        hi: int,
        properties: list[str],
        first: Page | None,
        warnings: list[str],
    ) -> list[dict[str, Any]]:
        page = first or await self._search(search, lo, hi, PAGE_LIMIT, properties)
        if page.total > RESULT_CAP and hi > lo:
            mid = (lo + hi) // 2
            return [
                *await self._page_all(search, lo, mid, properties, None, warnings),
                *await self._page_all(search, mid + 1, hi, properties, None, warnings),
            ]
        paginator = CursorPaginator(cursor=lambda p: p.after, param="after", into="body")
        body = search.body(lo, hi, PAGE_LIMIT, properties)
        request = Request("POST", _SEARCH.format(search.object), body=body)
        records: list[dict[str, Any]] = []
        capped = False
        async for got in pages(
            paginator,
            request,
            lambda r: self._ask(search.object, r.body),
            count=lambda p: len(p.results),
            first=page,
            what=f"HubSpot's search of {search.object}",
        ):
            records += got.results
            if capped := paginator.has_next and len(records) >= RESULT_CAP:
                break
        if paginator.warning or capped:
            warnings.append(
                f"HubSpot's paging of {search.object} did not end where expected: "
                f"{len(records)} of {page.total} records read"
            )
        return records

    # --- HTTP ------------------------------------------------------------------------------------

    async def _search(
        self, search: Search, lo: int, hi: int, limit: int, properties: Sequence[str]
    ) -> Page:
        return await self._ask(search.object, search.body(lo, hi, limit, properties))

    async def _ask(self, obj: str, body: dict[str, Any]) -> Page:
        self._searches += 1
        return _page(await self._call("POST", _SEARCH.format(obj), payload=body, obj=obj))

    async def _call(
        self,
        method: str,
        path: str,
        *,
        payload: Any = None,
        obj: str | None = None,
        not_found: str | None = None,
    ) -> Any:
        response = await self.http.request(method, path, json=payload)
        self._limits.update(_limits(response))
        if response.status_code == 404 and not_found is not None:
            raise SearchRefused(not_found)
        if not response.is_success:
            raise _error(
                response,
                obj,
                uses_oauth=self.credentials.uses_oauth,
                mask=self.http.redact,
            )
        return json_body(response, "HubSpot")
