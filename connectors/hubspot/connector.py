"""Daily counts and sums of HubSpot CRM records, through CRM v3 search.

HubSpot has no aggregate endpoint for CRM records: ``POST /crm/v3/objects/{object}/search``
answers a ``total`` and pages of records (200 at most a page, 10,000 at most a query). So a
mapping is one filter group: its filters and a ``BETWEEN`` on the date property over the
window's days in the source's timezone (in UTC for a ``date`` property, which HubSpot stores at
midnight UTC). Mappings with the same object, date property and filters share their searches; a
``.count`` pages or reads each day's ``total``, whichever takes fewer calls; a ``.sum`` pages;
a window holding more than 10,000 records is split in two, and again, until each part fits.

A deal's ``amount`` is in the deal's own currency (``deal_currency_code``): a sum of it over
several currencies warns that ``amount_in_home_currency`` (Amount in company currency, converted
by HubSpot with the account's exchange rates) is the one figure in one currency
(https://knowledge.hubspot.com/properties/hubspots-default-deal-properties).

Searches are limited to 4 a second per source, HubSpot's own limit for search, and
``X-HubSpot-RateLimit-*`` headers saying nothing is left hold every call of the source. A 429
of the ``DAILY`` policy fails the run at once, since retrying can only burn more of the next
day's quota; any other 429 is waited out.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, timedelta, tzinfo
from typing import Any, ClassVar

import httpx

from connectors.base import (
    FILTER_OPS,
    LIST_OPS,
    CheckResult,
    Connector,
    ConnectorAuthError,
    DailyValue,
    FetchResult,
    Filter,
    FilterOp,
    Hold,
    HttpOptions,
    MappingError,
    MetricQuery,
    OAuthSpec,
    RateLimited,
    RetriableError,
    Window,
    as_number,
    retry_after,
)
from connectors.errors import (
    Classifier,
    Hint,
    Hints,
    Refusal,
    RequestRefused,
    did_you_mean,
    json_or_none,
)
from connectors.hubspot.models import METRICS as _METRICS
from connectors.hubspot.models import OBJECTS, CountParams, HubSpotConfig, HubSpotCredentials
from connectors.objects import ObjectRefused, read_groups
from connectors.paginate import CursorPaginator, Request, pages
from connectors.records import filter_text
from connectors.series import MAX_LISTED, Sums, day_of, epoch_ms, rows_of, zone_name

SEARCHES_PER_SECOND = 4.0
#: Longest wait the rate-limit headers may impose between two calls.
MAX_HEADER_WAIT = 10.0
#: Wait for a rolling-window 429 that says neither Retry-After nor its interval.
ROLLING_WAIT = 10.0
#: The most records one search page holds.
PAGE_LIMIT = 200
#: Past this many records a search can't page ("10,000 total results"): split the window.
RESULT_CAP = 10_000
#: Filters a filter group may hold since the 2024-08-26 search change; the date range is one.
MAX_FILTERS_PER_GROUP = 10
#: The property naming a deal's ``amount`` currency, and HubSpot's conversion of that amount into
#: the company currency (the deal properties page cited above).
CURRENCY_CODE = "deal_currency_code"
HOME_AMOUNT = "amount_in_home_currency"

_SEARCH = "/crm/v3/objects/{}/search"
#: Built-in datetime properties: no metadata call needed to learn how to bound them.
_KNOWN_DATETIMES = frozenset(
    {"createdate", "closedate", "hs_createdate", "lastmodifieddate", "hs_lastmodifieddate"}
)
_OPERATORS = {op: op.upper() for op in FILTER_OPS} | {"contains": "CONTAINS_TOKEN"}
_READ_SCOPES = {o: f"crm.objects.{o}.read" for o in ("contacts", "companies", "deals")}
_READ_SCOPES["tickets"] = "tickets"
_LIMIT_HEADERS = {
    "max": "X-HubSpot-RateLimit-Max",
    "remaining": "X-HubSpot-RateLimit-Remaining",
    "interval_ms": "X-HubSpot-RateLimit-Interval-Milliseconds",
    "secondly_remaining": "X-HubSpot-RateLimit-Secondly-Remaining",
    "daily": "X-HubSpot-RateLimit-Daily",
    "daily_remaining": "X-HubSpot-RateLimit-Daily-Remaining",
}


class HubSpotConnector(Connector[HubSpotConfig, HubSpotCredentials]):
    """``<object>.count`` and ``<object>.sum`` for contacts, companies, deals and tickets."""

    key = "hubspot"
    name = "HubSpot CRM"
    category = "crm"
    metrics = _METRICS.specs(*OBJECTS)
    #: Deals get closed and records edited days later, and their dates moved back with them.
    recommended_lookback_days = 7
    #: CRM v3, the version in every path; HubSpot has set no end of support for it.
    api_version = "v3"
    #: ``contains`` is sent as CONTAINS_TOKEN, "contains a token" with ``*`` as its wildcard
    #: (https://developers.hubspot.com/docs/api/crm/search); no wildcards are added.
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
        base, creds = config.base_url.rstrip("/"), credentials
        oauth = OAuthSpec.of(creds, f"{base}/oauth/v1/token") if creds.uses_oauth else None
        return HttpOptions(
            base_url=base,
            rate_per_second=SEARCHES_PER_SECOND,
            max_concurrency=4,
            headers={} if oauth else {"Authorization": f"Bearer {creds.access_token}"},
            oauth=oauth,
            retry_after=_wait,
            pace=_pace,
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

    async def check(self) -> CheckResult:
        body = await self._call("GET", "/account-info/v3/details")
        info = body if isinstance(body, dict) else {}
        portal, zone, currency = (info.get(k) for k in ("portalId", "timeZone", "companyCurrency"))
        timezone = zone_name(zone)
        return CheckResult(
            f"Connected to HubSpot account {portal}" + (f" ({timezone})" if timezone else ""),
            timezone=timezone,
            details={"portal_id": portal, "time_zone": zone, "currency": currency},
        )

    async def validate_mapping_online(self, query: MetricQuery) -> None:
        obj = query.metric.split(".")[0]
        try:
            body = await self._call("GET", f"/crm/v3/properties/{obj}", obj=obj)
        except ObjectRefused:
            return  # the token may search without reading schemas: checked by shape only
        rows = body.get("results") if isinstance(body, dict) else None
        known = {
            str(p["name"]): str(p.get("type", ""))
            for p in rows or []
            if isinstance(p, dict) and p.get("name")
        }
        self._types.update({(obj, name): kind for name, kind in known.items()})

        def kind_of(part: str, name: str) -> str:
            if name in known:
                return known[name]
            hint = did_you_mean(name, known)
            raise MappingError(part, f"HubSpot {obj} have no property `{name}`{hint}")

        params = query.params
        assert isinstance(params, CountParams)
        kind = kind_of("params.date_property", params.date_property)
        if kind not in ("date", "datetime"):
            raise MappingError("params.date_property", _not_a_date(obj, params.date_property, kind))
        if (summed := _METRICS.summed_of(query)) is not None:
            kind = kind_of("params.property", summed)
            if kind != "number":
                raise MappingError(
                    "params.property",
                    f"`{summed}` is a {kind} property: only a number property can be summed",
                )
        for i, flt in enumerate(query.filters):
            kind_of(f"filters[{i}].field", flt.field)

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult()
        plans: dict[str, dict[str, Any]] = {}

        async def read(search: Search, members: list[MetricQuery]) -> list[DailyValue]:
            values, plan = await self._fetch_group(search, members, window, result.warnings)
            plans.update(dict.fromkeys((query.id for query in members), plan))
            return values

        lost = await read_groups(result, queries, Search.of, read)
        if lost and len(result.query_errors) == len(queries):
            raise lost[0]  # nothing could be read: the token is what needs fixing
        result.details = {"searches": self._searches, "plans": plans}
        if self._limits:
            result.details["rate_limit"] = dict(self._limits)
        return result

    async def _fetch_group(
        self, search: Search, members: list[MetricQuery], window: Window, warnings: list[str]
    ) -> tuple[list[DailyValue], dict[str, Any]]:
        """The group's values, and how they were read (kept on the run)."""
        zone = await self._bucket_zone(search.object, search.date_property, warnings)
        lo, hi = _bounds(window.start, window.end, zone)
        summed = _METRICS.sums(members)
        # Summed property -> the one naming its currency, where one sum can mix currencies: only
        # a deal's `amount` (what a user sums first), so other searches stay as lean as before.
        currencies = (
            {"amount": CURRENCY_CODE} if "amount" in summed and search.object == "deals" else {}
        )
        properties = list(dict.fromkeys([search.date_property, *summed, *currencies.values()]))
        before = self._searches
        first = await self._search(search, search.body(lo, hi, PAGE_LIMIT, properties))
        plan: dict[str, Any] = {"plan": "paged", "total": first.total}
        # One day's count is the total already read; more days cost a search each.
        daily_calls = 0 if window.num_days == 1 else window.num_days
        if not summed and first.after is not None and daily_calls <= paging_calls(first.total):
            plan["plan"] = "per_day"
            one_day = [(window.start, first.total)]
            counts = await self._per_day(search, window, zone) if daily_calls else one_day
            values = [DailyValue(q.id, day, float(n)) for q in members for day, n in counts if n]
        else:
            records = await self._page_all(search, lo, hi, properties, first, warnings)
            values = tally(
                members, records, search.date_property, window, zone, warnings, currencies
            )
        return values, plan | {"calls": self._searches - before}

    async def _bucket_zone(self, obj: str, name: str, warnings: list[str]) -> tzinfo:
        """A ``date`` property holds midnight UTC of its day; a ``datetime`` an instant."""
        if name in _KNOWN_DATETIMES:
            return self.zone
        kind = self._types.get((obj, name))
        if kind is None:
            try:
                unknown = f"HubSpot {obj} have no property `{name}`: set `date_property` to one of "
                body = await self._call(
                    "GET",
                    f"/crm/v3/properties/{obj}/{name}",
                    obj=obj,
                    hints={404: Hint(unknown + "theirs, such as `createdate`", RequestRefused)},
                )
            except ObjectRefused:
                warnings.append(
                    f"can't read the type of `{name}` (the token can't read {obj}' schema): "
                    "days are bounded as for a datetime property"
                )
                return self.zone
            kind = str(body.get("type", "")) if isinstance(body, dict) else ""
            self._types[obj, name] = kind
        if kind and kind not in ("date", "datetime"):
            raise RequestRefused(_not_a_date(obj, name, kind))
        return UTC if kind == "date" else self.zone

    async def _per_day(
        self, search: Search, window: Window, zone: tzinfo
    ) -> list[tuple[date, int]]:
        async def one(day: date) -> tuple[date, int]:
            body = search.body(*_bounds(day, day, zone), 1, [search.date_property])
            return day, (await self._search(search, body)).total

        try:  # the first failure cancels the other days' searches
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(day)) for day in window.days()]
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        return [task.result() for task in tasks]

    async def _page_all(
        self,
        search: Search,
        lo: int,
        hi: int,
        properties: list[str],
        first: Page | None,
        warnings: list[str],
    ) -> list[dict[str, Any]]:
        body = search.body(lo, hi, PAGE_LIMIT, properties)
        page = first or await self._search(search, body)
        if page.total > RESULT_CAP and hi > lo:
            mid = (lo + hi) // 2
            return [
                *await self._page_all(search, lo, mid, properties, None, warnings),
                *await self._page_all(search, mid + 1, hi, properties, None, warnings),
            ]
        paginator = CursorPaginator(cursor=lambda p: p.after, param="after", into="body")
        request = Request("POST", _SEARCH.format(search.object), body=body)
        records: list[dict[str, Any]] = []
        capped = False
        async for got in pages(
            paginator,
            request,
            lambda r: self._search(search, r.body),
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

    async def _search(self, search: Search, body: dict[str, Any]) -> Page:
        self._searches += 1
        path = _SEARCH.format(search.object)
        return Page.of(await self._call("POST", path, payload=body, obj=search.object))

    async def _call(
        self,
        method: str,
        path: str,
        *,
        payload: Any = None,
        obj: str | None = None,
        hints: Hints | None = None,
    ) -> Any:
        response = await self.http.request(method, path, json=payload)
        self._limits.update(_limits(response))
        oauth = _OAUTH_REFUSED if self.credentials.uses_oauth else {}
        hints = {**oauth, **(hints or {})}
        return _ERRORS.json(response, self.http.redact, hints=hints, object=obj)


def _not_a_date(obj: str, name: str, kind: str) -> str:
    return (
        f"`{name}` is a {kind} property of HubSpot {obj}, not a date: set `date_property` to a "
        "date or datetime property such as `createdate` or `closedate`"
    )


def _filter(flt: Filter) -> dict[str, Any]:
    rule = {"propertyName": flt.field, "operator": _OPERATORS[flt.op]}
    if flt.op in LIST_OPS:
        return rule | {"values": [filter_text(v) for v in flt.values]}
    return rule | {"value": filter_text(flt.value)}


@dataclass(frozen=True)
class Search:
    """What mappings share: one object, one date property, one set of filters."""

    object: str
    date_property: str
    filters: tuple[str, ...]  # JSON of each filter, sorted: the group ANDs them in any order

    @classmethod
    def of(cls, query: MetricQuery) -> Search:
        params = query.params
        assert isinstance(params, CountParams)
        filters = sorted(json.dumps(_filter(f), sort_keys=True) for f in query.filters)
        return cls(query.metric.split(".")[0], params.date_property, tuple(filters))

    def body(self, lo: int, hi: int, limit: int, properties: Sequence[str]) -> dict[str, Any]:
        between = {"propertyName": self.date_property, "operator": "BETWEEN"}
        between |= {"value": str(lo), "highValue": str(hi)}
        return {
            "filterGroups": [{"filters": [between, *(json.loads(f) for f in self.filters)]}],
            "properties": list(properties),
            "limit": limit,
        }


@dataclass
class Page:
    total: int
    results: list[dict[str, Any]]
    after: str | None

    @classmethod
    def of(cls, body: Any) -> Page:
        results = rows_of(body, "results", "HubSpot's search")
        total = body.get("total")
        after = (body.get("paging") or {}).get("next", {}).get("after")
        return cls(
            total=int(total) if isinstance(total, int | str) and str(total).isdigit() else 0,
            results=[r for r in results if isinstance(r, dict)],
            after=str(after) if after not in (None, "") else None,
        )


def paging_calls(total: int) -> int:
    """Calls still needed to page ``total`` records once the first page is in.

    Past the cap, each split costs the first page of both halves again; the estimate counts the
    halves of an even split, enough to compare with one call a day.
    """
    calls = math.ceil(total / PAGE_LIMIT) - 1
    if total > RESULT_CAP:
        calls += 2 * math.ceil(total / RESULT_CAP)
    return max(calls, 0)


def _bounds(first: date, last: date, zone: tzinfo) -> tuple[int, int]:
    """The epoch milliseconds from the start of ``first`` to the end of ``last`` in ``zone``."""
    return epoch_ms(first, zone), epoch_ms(last + timedelta(days=1), zone) - 1


def tally(
    members: list[MetricQuery],
    records: list[dict[str, Any]],
    date_property: str,
    window: Window,
    zone: tzinfo,
    warnings: list[str],
    currencies: Mapping[str, str],
) -> list[DailyValue]:
    """Count the records of each day, and sum each summed property over them; a sum over
    records in more than one of its ``currencies`` is kept, with a warning saying what to sum."""
    counts = Sums()
    bad: list[str] = []
    codes: dict[str, set[str]] = {}
    # Each property once, however many mappings sum it: they share the figure, not add to it.
    sums = {name: Sums() for name in _METRICS.sums(members)}
    for record in records:
        props = record.get("properties") or {}
        day = day_of(props.get(date_property), zone)
        if day is None or day not in window:
            continue  # outside the bounds asked: HubSpot wouldn't send it, a proxy might
        counts.add(day, 1.0)
        for name, total in sums.items():
            # HubSpot sends numbers as strings ("1500.50"); blank means no value.
            raw = props.get(name)
            blank = raw is None or (isinstance(raw, str) and not raw.strip())
            number = None if blank else as_number(raw)
            total.add(day, number or 0.0)  # a day with records has a sum, if only 0
            if number is None and not blank:
                bad.append(
                    f"{name} of record {record.get('id')}: `{str(raw)[:40]}` is not a number"
                )
            code = str(props.get(currencies.get(name, "")) or "").strip()
            if number is not None and code:  # blank: the account's only currency, or not asked
                codes.setdefault(name, set()).add(code.upper())
    for reason in sorted(set(bad))[:MAX_LISTED]:
        warnings.append(f"HubSpot sent a value that can't be summed: {reason}")
    for name, found in sorted(codes.items()):
        if len(found) > 1:
            warnings.append(
                f"HubSpot's `{name}` values summed here are in {len(found)} currencies "
                f"({', '.join(sorted(found))}) and were added up as they are: sum "
                f"`{HOME_AMOUNT}` (Amount in company currency) to get one currency"
            )
    values: list[DailyValue] = []
    for query in members:
        summed = _METRICS.summed_of(query)
        values += (counts if summed is None else sums[summed]).values(query.id)
    return values


def _limits(response: httpx.Response) -> dict[str, int]:
    """The quota figures of ``X-HubSpot-RateLimit-*`` an answer carries, kept on the run."""
    seen = {key: response.headers.get(name, "").strip() for key, name in _LIMIT_HEADERS.items()}
    return {key: int(raw) for key, raw in seen.items() if raw.isdigit()}


def _pace(response: httpx.Response) -> Hold | None:
    """Nothing left in the rolling window: hold for its interval; nothing left this second:
    for a second. The daily quota is not held for: its 429 fails the run (see ``_slow_down``)."""
    seen = _limits(response)
    pause = seen.get("interval_ms", 10_000) / 1000 if seen.get("remaining") == 0 else 0.0
    if seen.get("secondly_remaining") == 0:
        pause = max(pause, 1.0)
    if not pause:
        return None
    return Hold(min(pause, MAX_HEADER_WAIT), "HubSpot says no call is left in its rate window")


def _wait(response: httpx.Response) -> float | None:
    """What to wait before retrying: never, for a 429 of the ``DAILY`` policy (each retry would
    only burn tomorrow's quota); for another 429, ``Retry-After`` when sent, else the rate-limit
    interval, else a rolling window's length."""
    asked = retry_after(response)
    if response.status_code != 429:
        return asked
    body = json_or_none(response)
    if isinstance(body, dict) and "DAILY" in str(body.get("policyName") or "").upper():
        return math.inf
    interval = response.headers.get(_LIMIT_HEADERS["interval_ms"], "").strip()
    fallback = int(interval) / 1000 if interval.isdigit() else ROLLING_WAIT
    return asked if asked is not None else fallback


def _words(response: httpx.Response, body: Any) -> tuple[tuple[str, ...], str]:
    """HubSpot's ``message`` (else the body), after the status, as its errors quote it."""
    message = body.get("message") if isinstance(body, dict) else None
    text = str(message) if message else response.text
    return (), f"{response.status_code}: {text}" if text.strip() else str(response.status_code)


def _forbidden(refusal: Refusal) -> Exception:
    body = refusal.body if isinstance(refusal.body, dict) else {}
    obj = refusal.fields.get("object")
    contexts = [e.get("context") for e in body.get("errors") or [] if isinstance(e, dict)]
    keys = ("requiredGranularScopes", "requiredScopes")
    found = [s for c in contexts if isinstance(c, dict) for k in keys for s in c.get(k) or []]
    scopes = list(dict.fromkeys(map(str, found)))
    scopes = scopes or ([_READ_SCOPES[obj]] if obj in _READ_SCOPES else [])
    if body.get("category") != "MISSING_SCOPES" and not scopes:
        return ConnectorAuthError(
            f"HubSpot refused access ({refusal.said}): check the token's scopes"
        )
    what = f"read HubSpot {obj}" if obj else "make this call"
    needed = " or ".join(f"`{s}`" for s in scopes) or "the scope this call needs"
    return ObjectRefused(
        f"the HubSpot token lacks the scope {needed} to {what}: add it under the "
        "private app's Scopes (Settings > Integrations > Private apps), or reinstall the "
        "OAuth app with it, then sync again"
    )


def _slow_down(refusal: Refusal) -> Exception:
    body = refusal.body if isinstance(refusal.body, dict) else {}
    policy = refusal.quote(str(body.get("policyName") or ""))
    if "DAILY" in policy.upper():
        return RetriableError(
            f"HubSpot's daily API limit for this account is used up ({policy}): it "
            "resets at midnight in the account's timezone, and every app of the account "
            "shares it; the next run tries again"
        )
    return RateLimited(
        f"HubSpot asks to slow down ({policy or 'rate limit'}): {refusal.said}",
        refusal.retry_after,
    )


_ERRORS = Classifier(
    "HubSpot",
    {
        401: "HubSpot refused the private app's access token ({said}): check `access_token`, "
        "or copy a new one from Settings > Integrations > Private apps",
        403: _forbidden,
        429: _slow_down,
        (400, 422): Hint("HubSpot refused the request ({said})", RequestRefused),
        404: Hint("HubSpot has nothing at that address ({said}): check `base_url`", RequestRefused),
        "retriable": "HubSpot is having trouble ({said})",
        "config": "HubSpot refused the request ({said})",
    },
    read=_words,
    wait=_wait,
)
_OAUTH_REFUSED: Hints = {
    401: "HubSpot refused the OAuth access token even after a refresh ({said}): reconnect the "
    "HubSpot app to get a new `refresh_token`"
}
