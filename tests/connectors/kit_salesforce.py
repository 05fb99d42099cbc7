"""Salesforce faked over respx, and the contract kit of ``salesforce`` (connectors/salesforce/).

Shapes follow Salesforce's documentation:

- query: https://developer.salesforce.com/docs/platform/api-rest/guide/resources-query.md and
  https://developer.salesforce.com/docs/platform/api-rest/guide/dome-query.md (``totalSize``,
  ``done``, ``records``); aggregate rows are ``{"attributes": {"type": "AggregateResult"},
  "<alias>": value}``. A GROUP BY answer "can't use the query locator to get more results"
  (https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_group_by_considerations.htm):
  it comes whole, ``done: true`` and no ``nextRecordsUrl``, and past 2,000 rows the query is
  refused, 400 ``[{"message": "Aggregate query does not support queryMore(), use LIMIT to
  restrict the results to a single batch", "errorCode": "EXCEEDED_ID_LIMIT"}]`` (the answer as
  recorded in https://github.com/restforce/restforce/issues/726).
- errors: https://developer.salesforce.com/docs/platform/api-rest/guide/errorcodes.md, a JSON
  array ``[{"message", "errorCode"}]`` (401 ``INVALID_SESSION_ID``, 403
  ``REQUEST_LIMIT_EXCEEDED``, 400 ``INVALID_TYPE`` / ``MALFORMED_QUERY``).
- ``Sforce-Limit-Info: api-usage=18/5000``:
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm
- refresh-token grant: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/
  intro_understanding_refresh_token_oauth.htm (``{access_token, instance_url, id, token_type,
  issued_at, signature}``, a ``refresh_token`` too when rotation is on).
- userinfo: https://help.salesforce.com/HTViewHelpDoc?id=remoteaccess_using_userinfo_endpoint.htm
  (``zoneinfo``, ``preferred_username``, ``organization_id``).
- describe: fields with ``name``, ``type``, ``aggregatable``, ``filterable``,
  ``relationshipName`` (https://developer.salesforce.com/docs/platform/object-reference/guide/
  access-for-fields.html).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import respx

from connectors.base import Window
from connectors.salesforce.connector import SalesforceConnector
from connectors.testing import Expected, Kit, Mocked, Query, Scenario

INSTANCE = "https://krsync.my.salesforce.test"
LOGIN = "https://login.salesforce.test"
VERSION = "v60.0"
DATA = f"/services/data/{VERSION}"
CLIENT_ID = "sf-consumer-key-3MVG9"
CLIENT_SECRET = "sf-consumer-secret-8a1f"
REFRESH_TOKEN = "sf-refresh-0-5Aep861"

#: Rows a grouped query may answer before Salesforce refuses it.
GROUP_LIMIT = 2000
AGGREGATE_QUERY_MORE = (
    "Aggregate query does not support queryMore(), use LIMIT to restrict the results to a single "
    "batch"
)

Fault = httpx.Response | None
Row = Callable[[list[str], date], dict[str, Any] | None]

_BOUNDS_DATETIME = re.compile(r">= (\d{4}-\d{2}-\d{2})T00:00:00Z AND \w+ < (\d{4}-\d{2}-\d{2})T")
_BOUNDS_DATE = re.compile(r">= (\d{4}-\d{2}-\d{2}) AND \w+ <= (\d{4}-\d{2}-\d{2})")
_ALIASES = re.compile(r"\) (n|s\d+)\b")
_FROM = re.compile(r" FROM (\w+) ")


def day_of_month(aliases: list[str], day: date) -> dict[str, Any]:
    """Counts are the day of the month, the i-th sum a hundred times it plus i."""
    return {a: day.day if a == "n" else day.day * 100.0 + int(a[1:]) for a in aliases}


def sf_error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=[{"message": message, "errorCode": code}], headers=headers)


class FakeSalesforce:
    """An org in memory: tokens, aggregate queries answered whole, describes, scripted faults."""

    def __init__(
        self,
        *,
        row: Row | None = day_of_month,
        rotate: bool = False,
        usage: tuple[int, int] = (18, 5000),
        zoneinfo: str = "America/Los_Angeles",
    ) -> None:
        self.row = row
        self.rotate = rotate
        self.used, self.limit = usage
        #: The REST API version the org serves in paths (others answer 404 NOT_FOUND).
        self.version = VERSION
        #: ``Sforce-Limit-Info`` as sent; a connected app with its own quota adds
        #: ``per-app-api-usage=17/250(appName=...)`` to the org's ``api-usage``.
        self.limit_info = "api-usage={used}/{limit}"
        self.zoneinfo = zoneinfo
        #: The org's address the token endpoint gives; every *.my.salesforce.test host answers.
        self.instance = INSTANCE
        self.access_tokens: set[str] = set()
        self.refresh_tokens: set[str] = {REFRESH_TOKEN}
        self.issued = 0
        self.objects: dict[str, list[dict[str, Any]]] = {}
        self.hidden: set[str] = set()
        self.faults: dict[str, deque[Fault]] = {
            k: deque() for k in ("token", "query", "userinfo", "describe", "root")
        }
        self.requests: list[tuple[str, httpx.Request]] = []

    # --- scripting -------------------------------------------------------------------------------

    def fail(self, endpoint: str, *faults: Fault) -> None:
        self.faults[endpoint].extend(faults)

    def calls(self, endpoint: str) -> list[httpx.Request]:
        return [r for e, r in self.requests if e == endpoint]

    def soql(self) -> list[str]:
        """The SOQL of every first-page query, in order."""
        return [r.url.params["q"] for r in self.calls("query") if "q" in r.url.params]

    def describe_object(self, name: str, fields: dict[str, str], **extra: Any) -> None:
        """An object with fields by name -> type; reference fields get a relationship name."""
        described = []
        for field, kind in fields.items():
            entry: dict[str, Any] = {
                "name": field,
                "type": kind,
                "aggregatable": kind not in ("textarea",),
                "filterable": True,
                "relationshipName": field[:-2] if kind == "reference" else None,
            }
            described.append(entry | extra.get(field, {}))
        self.objects[name] = described

    def install(self, router: respx.MockRouter) -> None:
        # Any instance, so a test can see where calls went (request.url.host) when an org moves.
        host = r"^[a-z0-9-]+\.my\.salesforce\.test$"
        router.post(host=httpx.URL(LOGIN).host, path="/services/oauth2/token").mock(
            side_effect=self._token
        )
        router.get(host__regex=host, path="/services/oauth2/userinfo").mock(
            side_effect=self._userinfo
        )
        data = r"/services/data/v\d+\.0"
        router.get(host__regex=host, path__regex=rf"^{data}/$").mock(side_effect=self._root)
        router.get(host__regex=host, path__regex=rf"^{data}/query(/.*)?$").mock(
            side_effect=self._query
        )
        router.get(host__regex=host, path__regex=rf"^{data}/sobjects/\w+/describe$").mock(
            side_effect=self._describe
        )

    # --- endpoints -------------------------------------------------------------------------------

    def _scripted(self, endpoint: str, request: httpx.Request) -> Fault:
        self.requests.append((endpoint, request))
        queue = self.faults[endpoint]
        return queue.popleft() if queue else None

    def _token(self, request: httpx.Request) -> httpx.Response:
        fault = self._scripted("token", request)
        if fault is not None:
            return fault
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if (
            form.get("grant_type") != "refresh_token"
            or form.get("client_id") != CLIENT_ID
            or form.get("client_secret") != CLIENT_SECRET
            or form.get("refresh_token") not in self.refresh_tokens
        ):
            return httpx.Response(
                400,
                json={
                    "error": "invalid_grant",
                    "error_description": "expired access/refresh token",
                },
            )
        self.issued += 1
        access = f"sf-access-{self.issued}-00D5e"
        self.access_tokens.add(access)
        body = {
            "access_token": access,
            "instance_url": self.instance,
            "id": f"{LOGIN}/id/00D5e000000K1xEAE/0055e000003abcDAAQ",
            "token_type": "Bearer",
            "issued_at": "1785456000000",
            "signature": "c2lnbmF0dXJl",
        }
        if self.rotate:
            self.refresh_tokens = {f"sf-refresh-{self.issued}-5Aep861"}
            body["refresh_token"] = next(iter(self.refresh_tokens))
        return httpx.Response(200, json=body)

    def _authorized(self, endpoint: str, request: httpx.Request) -> httpx.Response | None:
        fault = self._scripted(endpoint, request)
        if fault is not None:
            return fault
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer not in self.access_tokens:
            return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        self.used += 1
        path = request.url.path
        if path.startswith("/services/data/") and not path.startswith(
            f"/services/data/{self.version}/"
        ):
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        return None

    def _ok(self, body: Any) -> httpx.Response:
        info = self.limit_info.format(used=self.used, limit=self.limit)
        return httpx.Response(200, json=body, headers={"Sforce-Limit-Info": info})

    def _userinfo(self, request: httpx.Request) -> httpx.Response:
        refused = self._authorized("userinfo", request)
        return refused or self._ok(
            {
                "sub": f"{LOGIN}/id/00D5e000000K1xEAE/0055e000003abcDAAQ",
                "user_id": "0055e000003abcDAAQ",
                "organization_id": "00D5e000000K1xEAE",
                "preferred_username": "integration@krsync.example",
                "zoneinfo": self.zoneinfo,
            }
        )

    def _root(self, request: httpx.Request) -> httpx.Response:
        refused = self._authorized("root", request)
        return refused or self._ok({"query": f"{DATA}/query", "sobjects": f"{DATA}/sobjects"})

    def _describe(self, request: httpx.Request) -> httpx.Response:
        refused = self._authorized("describe", request)
        if refused is not None:
            return refused
        name = request.url.path.split("/")[-2]
        if name not in self.objects or name in self.hidden:
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        return self._ok({"name": name, "queryable": True, "fields": self.objects[name]})

    def _query(self, request: httpx.Request) -> httpx.Response:
        refused = self._authorized("query", request)
        if refused is not None:
            return refused
        if request.url.path != f"/services/data/{self.version}/query":
            # Only a non-aggregate query hands out a locator, and krsync sends none.
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        soql = request.url.params["q"]
        sobject = _FROM.search(soql)
        if sobject is None or sobject.group(1) in self.hidden:
            name = sobject.group(1) if sobject else "?"
            return sf_error(
                400,
                "INVALID_TYPE",
                f"sObject type '{name}' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name.",
            )
        bounds = _BOUNDS_DATETIME.search(soql)
        if bounds is not None:
            low, high = (date.fromisoformat(b) for b in bounds.groups())
            days = [low + timedelta(days=i) for i in range((high - low).days)]
        else:
            dated = _BOUNDS_DATE.search(soql)
            if dated is None:
                return sf_error(400, "MALFORMED_QUERY", "unexpected token")
            low, high = (date.fromisoformat(b) for b in dated.groups())
            days = [low + timedelta(days=i) for i in range((high - low).days + 1)]
        aliases = _ALIASES.findall(soql)
        records = []
        for day in days:
            cells = self.row(aliases, day) if self.row is not None else None
            if cells is not None:
                records.append(
                    {"attributes": {"type": "AggregateResult"}, "d": day.isoformat()} | cells
                )
        if len(records) > GROUP_LIMIT:
            return sf_error(400, "EXCEEDED_ID_LIMIT", AGGREGATE_QUERY_MORE)
        return self._ok({"totalSize": len(records), "done": True, "records": records})


# --- the contract kit ----------------------------------------------------------------------------


def _mock(router: respx.MockRouter, scenario: Scenario) -> Mocked:
    fake = FakeSalesforce(row=None if scenario == "empty" else day_of_month)
    if scenario == "bad_credentials":
        fake.refresh_tokens.clear()  # revoked: the token endpoint answers invalid_grant
    if scenario == "rate_limited":
        fake.fail("query", httpx.Response(429, headers={"Retry-After": "1"}))
    fake.install(router)

    def expected(window: Window) -> Expected:
        if scenario == "empty":
            return {}
        return {(day, None): float(day.day) for day in window.days()}

    # A grouped answer comes whole: the fetch is one call, however many days.
    return Mocked(expected=expected, paginates=False)


CONFIG = {"instance_url": INSTANCE, "login_url": LOGIN}

KIT = Kit(
    connector=SalesforceConnector,
    config=CONFIG,
    credentials={
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
    },
    query=Query("Lead.count", filters=[{"field": "LeadSource", "op": "eq", "value": "Web"}]),
    wrong_type={**CONFIG, "api_version": 60},
    mock=_mock,
    auth_hint="refresh_token",
)
