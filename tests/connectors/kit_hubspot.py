"""The contract kit of ``hubspot``, and :class:`FakeHubSpot`: HubSpot's CRM API in memory.

The fake answers over respx the calls the connector makes, in the shapes HubSpot documents:

- ``POST /crm/v3/objects/{object}/search``: body ``filterGroups[{filters[{propertyName,
  operator, value | highValue | values}]}]``, ``properties``, ``limit`` (at most 200), ``after``;
  reply ``{"total", "results": [{"id", "properties": {...strings}, "createdAt", "updatedAt",
  "archived"}], "paging": {"next": {"after", "link"}}}``, no ``paging`` on the last page; at most
  5 groups, 10 filters a group and 25 in all; paging past 10,000 results answers 400
  (https://developers.hubspot.com/docs/api/crm/search, and the 2024-08-26 limits in
  https://developers.hubspot.com/changelog/breaking-change-expanded-filtering-capabilities-and-error-messaging-in-hubspots-search-api);
- ``GET /crm/v3/properties/{object}[/{name}]``: ``{"results": [{"name", "label", "type",
  "fieldType"}]}`` or one of them (https://developers.hubspot.com/docs/api/crm/properties);
- ``GET /account-info/v3/details``: ``{"portalId", "timeZone", "companyCurrency", ...}``
  (https://developers.hubspot.com/docs/api/settings/account-information-api);
- ``POST /oauth/v1/token``, form-encoded ``grant_type=refresh_token`` with ``client_id``,
  ``client_secret``, ``refresh_token``: ``{"access_token", "refresh_token", "expires_in",
  "token_type"}``; HubSpot hands back the same refresh token
  (https://developers.hubspot.com/docs/api/oauth/tokens);
- errors as https://developers.hubspot.com/docs/api/usage-details and
  https://developers.hubspot.com/docs/api-reference/error-handling show them: 401
  ``INVALID_AUTHENTICATION``, 403 ``MISSING_SCOPES`` with ``errors[].context.
  requiredGranularScopes``, 429 ``RATE_LIMIT`` with its ``policyName``.

Every property value is a string, as HubSpot sends it ("1500.50"); datetimes are ISO 8601 in
UTC, and a filter's date value is epoch milliseconds. Faults are scripted per endpoint
(``search``, ``properties``, ``account``, ``token``) as a queue consumed one call at a time.
"""

from __future__ import annotations

import bisect
import json
import re
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from copy import deepcopy
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import respx

from connectors.base import Window
from connectors.hubspot.connector import HubSpotConnector
from connectors.testing import Expected, Kit, Mocked, Query, Scenario

HOST = "api.hubspot.krsync.test"
BASE_URL = f"https://{HOST}"
TOKEN = "pat-na1-kit-0c7e4b2a-hubspot"
CLIENT_ID = "hubspot-client-id-kit"
CLIENT_SECRET = "hubspot-client-secret-9f3e"
REFRESH_TOKEN = "hubspot-refresh-kit-51b0"
RESULT_CAP = 10_000
READ_SCOPES = {
    "contacts": "crm.objects.contacts.read",
    "companies": "crm.objects.companies.read",
    "deals": "crm.objects.deals.read",
    "tickets": "tickets",
}
SCHEMA_SCOPES = {
    "contacts": "crm.schemas.contacts.read",
    "companies": "crm.schemas.companies.read",
    "deals": "crm.schemas.deals.read",
    "tickets": "tickets",
}
ALL_SCOPES = frozenset({*READ_SCOPES.values(), *SCHEMA_SCOPES.values(), "oauth"})

#: name -> HubSpot property type, per object: a few of the built-in ones.
PROPERTIES: dict[str, dict[str, str]] = {
    "deals": {
        "createdate": "datetime",
        "closedate": "datetime",
        "hs_lastmodifieddate": "datetime",
        "dealname": "string",
        "dealstage": "enumeration",
        "pipeline": "enumeration",
        "hs_analytics_source": "enumeration",
        "amount": "number",
        # The deal's currency, and its amount in the company currency as HubSpot calculates it
        # (https://knowledge.hubspot.com/properties/hubspots-default-deal-properties).
        "deal_currency_code": "enumeration",
        "amount_in_home_currency": "number",
        "hs_object_id": "number",
    },
    "contacts": {
        "createdate": "datetime",
        "lastmodifieddate": "datetime",
        "email": "string",
        "lifecyclestage": "enumeration",
        "hs_analytics_source": "enumeration",
        "hs_object_id": "number",
    },
    "companies": {
        "createdate": "datetime",
        "hs_lastmodifieddate": "datetime",
        "name": "string",
        "industry": "enumeration",
        "annualrevenue": "number",
        "hs_object_id": "number",
    },
    "tickets": {
        "createdate": "datetime",
        "hs_lastmodifieddate": "datetime",
        "subject": "string",
        "hs_pipeline_stage": "enumeration",
        "hs_ticket_priority": "enumeration",
        "hs_object_id": "number",
    },
}

Fault = httpx.Response | BaseException | None


def iso(moment: datetime) -> str:
    """A datetime as HubSpot writes one: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "correlationId": "5d7c1ab1-4b4f-4e79-9f38-3b0f6e3c1e55",
        "category": category,
        **extra,
    }


def rate_limited(policy: str = "TEN_SECONDLY_ROLLING", **headers: str) -> httpx.Response:
    """HubSpot's 429, as the usage guidelines show it."""
    what = "daily" if policy == "DAILY" else policy.lower()
    body = {
        "status": "error",
        "message": f"You have reached your {what} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24",
        "policyName": policy,
        "requestId": "3d3e35b7-0dae-4b9f-a6e3-9c230cbcf8dd",
    }
    return httpx.Response(429, json=body, headers=headers)


class FakeHubSpot:
    """Records, properties, tokens and scripted faults of one HubSpot account."""

    def __init__(
        self,
        base_url: str = BASE_URL,
        *,
        tokens: Iterable[str] = (TOKEN,),
        scopes: Iterable[str] = ALL_SCOPES,
        time_zone: str = "US/Eastern",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = urlparse(self.base_url).hostname or HOST
        self.records: dict[str, list[dict[str, Any]]] = {obj: [] for obj in PROPERTIES}
        self.properties = deepcopy(PROPERTIES)
        self.tokens: dict[str, frozenset[str]] = {t: frozenset(scopes) for t in tokens}
        self.refresh_tokens = {REFRESH_TOKEN: frozenset(scopes)}
        self.time_zone = time_zone
        #: Headers added to every search answer (``X-HubSpot-RateLimit-*``).
        self.search_headers: dict[str, str] = {}
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.log: list[tuple[str, httpx.Request]] = []
        self.issued = 0
        self._index: dict[tuple[str, str], tuple[list[int], list[dict[str, Any]]]] = {}

    # --- the account's data -------------------------------------------------------------------

    def add(self, obj: str, **properties: Any) -> dict[str, Any]:
        """One record; values become strings, datetimes ISO ones, as HubSpot stores them."""
        ident = str(sum(len(r) for r in self.records.values()) + 1001)
        values = {
            k: iso(v) if isinstance(v, datetime) else None if v is None else str(v)
            for k, v in properties.items()
        }
        values["hs_object_id"] = ident
        created = values.get("createdate") or "2026-01-05T09:00:00.000Z"
        record = {
            "id": ident,
            "properties": values,
            "createdAt": created,
            "updatedAt": created,
            "archived": False,
        }
        self.records[obj].append(record)
        self._index.clear()
        return record

    def spread(
        self,
        obj: str,
        days: Iterable[date],
        per_day: Callable[[date], int],
        *,
        date_property: str = "createdate",
        zone: tzinfo = UTC,
        **properties: Any,
    ) -> int:
        """``per_day(day)`` records on each day, evenly through the day in ``zone``."""
        added = 0
        for day in days:
            count = per_day(day)
            midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
            for i in range(count):
                at = midnight + timedelta(seconds=86_400 * i / count)
                self.add(obj, **{date_property: at}, **properties)
                added += 1
        return added

    def fail(self, endpoint: str, *faults: Fault) -> None:
        self.faults[endpoint].extend(faults)

    def requests(self, endpoint: str) -> list[httpx.Request]:
        return [r for e, r in self.log if e == endpoint]

    def search_bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests("search")]

    def install(self, router: respx.MockRouter) -> None:
        router.post(host=self.host, path__regex=r"^/crm/v3/objects/[a-z_0-9]+/search$").mock(
            side_effect=self._search
        )
        router.get(host=self.host, path__regex=r"^/crm/v3/properties/").mock(
            side_effect=self._properties
        )
        router.get(host=self.host, path="/account-info/v3/details").mock(side_effect=self._account)
        router.post(host=self.host, path="/oauth/v1/token").mock(side_effect=self._token)

    # --- endpoints ------------------------------------------------------------------------------

    def _fault(self, endpoint: str) -> httpx.Response | None:
        queue = self.faults.get(endpoint)
        fault = queue.popleft() if queue else None
        if isinstance(fault, BaseException):
            raise fault
        return fault

    def _scopes(self, request: httpx.Request) -> frozenset[str] | None:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        return self.tokens.get(token)

    def _refused(self, request: httpx.Request, scope: str | None) -> httpx.Response | None:
        scopes = self._scopes(request)
        if scopes is None:
            return httpx.Response(
                401,
                json=error_body(
                    "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    "INVALID_AUTHENTICATION",
                ),
            )
        if scope is not None and scope not in scopes:
            return httpx.Response(
                403,
                json=error_body(
                    "This app hasn't been granted all required scopes to make this call. Read "
                    "more about required scopes here: https://developers.hubspot.com/scopes.",
                    "MISSING_SCOPES",
                    errors=[
                        {
                            "message": "One or more of the following scopes are required.",
                            "context": {"requiredGranularScopes": [scope]},
                        }
                    ],
                    links={"scopes": "https://developers.hubspot.com/scopes"},
                ),
            )
        return None

    def _account(self, request: httpx.Request) -> httpx.Response:
        self.log.append(("account", request))
        refused = self._refused(request, None) or self._fault("account")
        if refused is not None:
            return refused
        return httpx.Response(
            200,
            json={
                "portalId": 62515,
                "accountType": "STANDARD",
                "timeZone": self.time_zone,
                "companyCurrency": "USD",
                "additionalCurrencies": [],
                "utcOffset": "-04:00",
                "utcOffsetMilliseconds": -14_400_000,
                "uiDomain": "app.hubspot.com",
                "dataHostingLocation": "na1",
            },
        )

    def _properties(self, request: httpx.Request) -> httpx.Response:
        self.log.append(("properties", request))
        parts = request.url.path.split("/")[4:]
        obj, name = parts[0], parts[1] if len(parts) > 1 else None
        if obj not in self.properties:
            return httpx.Response(
                400, json=error_body(f"Unable to infer object type from: {obj}", "VALIDATION_ERROR")
            )
        refused = self._refused(request, SCHEMA_SCOPES[obj]) or self._fault("properties")
        if refused is not None:
            return refused
        rows = [
            {
                "name": n,
                "label": n.replace("_", " ").title(),
                "type": kind,
                "fieldType": {"number": "number", "datetime": "date", "date": "date"}.get(
                    kind, "text"
                ),
                "groupName": f"{obj[:-1]}information",
            }
            for n, kind in self.properties[obj].items()
        ]
        if name is None:
            return httpx.Response(200, json={"results": rows})
        found = next((r for r in rows if r["name"] == name), None)
        if found is None:
            return httpx.Response(
                404,
                json=error_body(
                    f"Unable to find property {name} for object type {obj}", "OBJECT_NOT_FOUND"
                ),
            )
        return httpx.Response(200, json=found)

    def _token(self, request: httpx.Request) -> httpx.Response:
        self.log.append(("token", request))
        fault = self._fault("token")
        if fault is not None:
            return fault
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return httpx.Response(
                400, json={"status": "BAD_CLIENT_ID", "message": "missing or invalid client_id"}
            )
        refresh = form.get("refresh_token", "")
        if form.get("grant_type") != "refresh_token" or refresh not in self.refresh_tokens:
            return httpx.Response(
                400,
                json={"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token"},
            )
        self.issued += 1
        access = f"hubspot-access-{self.issued}-c3d4e5"
        self.tokens[access] = self.refresh_tokens[refresh]
        return httpx.Response(
            200,
            json={
                "token_type": "bearer",
                "refresh_token": refresh,
                "access_token": access,
                "expires_in": 1800,
            },
        )

    def _search(self, request: httpx.Request) -> httpx.Response:
        self.log.append(("search", request))
        obj = request.url.path.split("/")[4]
        refused = self._refused(request, READ_SCOPES.get(obj)) or self._fault("search")
        if refused is not None:
            return refused
        body = json.loads(request.content)
        limit = int(body.get("limit", 10))
        groups = body.get("filterGroups") or []
        filters = [f for g in groups for f in g.get("filters", [])]
        problem = None
        if limit > 200:
            problem = "limit must be less than or equal to 200"
        elif len(groups) > 5 or len(filters) > 25 or any(len(g["filters"]) > 10 for g in groups):
            problem = "Too many filters: at most 5 groups, 10 filters a group and 25 in all"
        else:
            unknown = [
                f["propertyName"] for f in filters if f["propertyName"] not in self.properties[obj]
            ]
            if unknown:
                problem = f'Property "{unknown[0]}" does not exist'
        after = int(body.get("after") or 0)
        if problem is None and after + limit > RESULT_CAP:
            problem = "Cannot page beyond 10000 results"
        if problem is not None:
            return httpx.Response(400, json=error_body(problem, "VALIDATION_ERROR"))
        matches = self._matches(obj, groups)
        wanted = [*body.get("properties", []), "hs_object_id", "createdate"]
        chunk = matches[after : after + limit]
        reply: dict[str, Any] = {
            "total": len(matches),
            "results": [
                {
                    "id": r["id"],
                    "properties": {p: r["properties"].get(p) for p in dict.fromkeys(wanted)},
                    "createdAt": r["createdAt"],
                    "updatedAt": r["updatedAt"],
                    "archived": False,
                }
                for r in chunk
            ],
        }
        if after + limit < len(matches):
            nxt = str(after + limit)
            reply["paging"] = {"next": {"after": nxt, "link": f"?after={nxt}"}}
        return httpx.Response(200, json=reply, headers=self.search_headers)

    # --- matching -------------------------------------------------------------------------------

    def _key(self, obj: str, name: str, raw: Any) -> Any:
        kind = self.properties[obj].get(name, "string")
        text = str(raw)
        if kind in ("datetime", "date"):
            if text.isdigit():
                return int(text)
            moment = datetime.fromisoformat(text)
            return ms(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
        if kind == "number":
            return float(text)
        return text.lower()

    def _matches(self, obj: str, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not groups:
            return list(self.records[obj])
        found: dict[str, dict[str, Any]] = {}
        for group in groups:
            for record in self._candidates(obj, group["filters"]):
                if all(self._match(obj, record, f) for f in group["filters"]):
                    found.setdefault(record["id"], record)
        return sorted(found.values(), key=lambda r: int(r["id"]))

    def _candidates(self, obj: str, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Records a ``BETWEEN`` on a date can hold, found by bisection: dense tests stay fast."""
        between = next((f for f in filters if f["operator"] == "BETWEEN"), None)
        name = between["propertyName"] if between else ""
        if between is None or self.properties[obj].get(name) not in ("datetime", "date"):
            return self.records[obj]
        if (obj, name) not in self._index:
            rows = sorted(
                (self._key(obj, name, r["properties"][name]), i)
                for i, r in enumerate(self.records[obj])
                if r["properties"].get(name)
            )
            self._index[obj, name] = ([k for k, _ in rows], [self.records[obj][i] for _, i in rows])
        keys, records = self._index[obj, name]
        lo = bisect.bisect_left(keys, self._key(obj, name, between["value"]))
        hi = bisect.bisect_right(keys, self._key(obj, name, between["highValue"]))
        return records[lo:hi]

    def _match(self, obj: str, record: dict[str, Any], flt: dict[str, Any]) -> bool:
        name, op = flt["propertyName"], flt["operator"]
        raw = record["properties"].get(name)
        if op == "HAS_PROPERTY":
            return raw not in (None, "")
        if op == "NOT_HAS_PROPERTY":
            return raw in (None, "")
        if raw in (None, ""):
            return op in ("NEQ", "NOT_IN")
        have = self._key(obj, name, raw)
        if op in ("IN", "NOT_IN"):
            inside = have in {self._key(obj, name, v) for v in flt["values"]}
            return inside if op == "IN" else not inside
        if op == "BETWEEN":
            low = self._key(obj, name, flt["value"])
            return bool(low <= have <= self._key(obj, name, flt["highValue"]))
        if op == "CONTAINS_TOKEN":
            return contains_token(str(raw), str(flt["value"]))
        want = self._key(obj, name, flt["value"])
        compare: dict[str, Callable[[Any, Any], bool]] = {
            "EQ": lambda a, b: a == b,
            "NEQ": lambda a, b: a != b,
            "GT": lambda a, b: a > b,
            "GTE": lambda a, b: a >= b,
            "LT": lambda a, b: a < b,
            "LTE": lambda a, b: a <= b,
        }
        return compare[op](have, want)


def contains_token(text: str, value: str) -> bool:
    """HubSpot's CONTAINS_TOKEN: "contains a token", with ``*`` to "complete a partial search"
    (``*@hubspot.com`` finds HubSpot addresses; https://developers.hubspot.com/docs/api/crm/search).

    A token is a word of the property's value, split at whitespace (an address is one word, as
    the documented example needs); ``*`` stands for any characters within that word. Case is
    ignored, as the fake's other text comparisons ignore it.
    """
    pattern = ".*".join(re.escape(part) for part in value.casefold().split("*"))
    return any(re.fullmatch(pattern, word) for word in text.casefold().split())


# --- the kit --------------------------------------------------------------------------------------

#: Days the kit's account has deals on: every window the contract asks falls inside.
SEEDED = Window(date(2026, 6, 15), date(2026, 7, 31))


def won_per_day(day: date) -> int:
    """Ten won deals for each day of the month: 10 on the 1st, 100 on the 10th."""
    return day.day * 10


def _mock(router: respx.MockRouter, scenario: Scenario) -> Mocked:
    fake = FakeHubSpot(tokens=() if scenario == "bad_credentials" else (TOKEN,))
    if scenario in ("data", "rate_limited"):
        days = list(SEEDED.days())
        fake.spread("deals", days, won_per_day, dealstage="closedwon", amount="1500.50")
        fake.spread("deals", days, lambda _: 3, dealstage="closedlost", amount="99")
    if scenario == "rate_limited":
        fake.fail("search", rate_limited(**{"Retry-After": "1"}))
    fake.install(router)

    def expected(window: Window) -> Expected:
        if scenario == "empty":
            return {}
        return {(d, None): float(won_per_day(d)) for d in window.days() if d in SEEDED}

    # 550 won deals in the contract's 10 days: three pages of 200, cheaper than ten searches.
    return Mocked(expected=expected, paginates=True)


KIT = Kit(
    connector=HubSpotConnector,
    config={"base_url": BASE_URL},
    credentials={"access_token": TOKEN},
    query=Query(
        "deals.count",
        params={"date_property": "createdate"},
        filters=[{"field": "dealstage", "op": "eq", "value": "closedwon"}],
    ),
    wrong_type={"base_url": 443},
    mock=_mock,
    auth_hint="access_token",
)
