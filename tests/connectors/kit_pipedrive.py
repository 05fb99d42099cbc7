"""Pipedrive faked over respx, and the contract kit of ``pipedrive`` (connectors/pipedrive/).

Shapes follow Pipedrive's documentation:

- ``GET /v1/deals/timeline`` (https://developers.pipedrive.com/docs/api/v1/Deals#getDealsTimeline):
  ``start_date``, ``interval``, ``amount``, ``field_key``, ``user_id``, ``pipeline_id``,
  ``filter_id``, ``exclude_deals``, ``totals_convert_currency``; the answer is
  ``{"success": true, "data": [{"period_start": "2018-06-19 00:00:00", "period_end":
  "2018-06-19 23:59:59", "deals": [], "totals": {"count", "values": {"USD": 133},
  "weighted_values", "open_count", "open_values", "weighted_open_values", "won_count",
  "won_values"}}]}`` (an empty day's ``values`` is ``[]``, as recorded by the pipedrive.rb
  client's VCR cassettes) and ``totals_converted`` when a currency is asked (``value``,
  ``won_value``... in that currency, as read by public client code; the page documents the
  parameter, not the object's keys).
- ``GET /v1/users/me`` (https://pipedrive.readme.io/docs/marketplace-getting-user-data):
  ``company_domain``, ``timezone_name``, ``default_currency``.
- ``x-api-token`` header (https://pipedrive.readme.io/docs/core-api-concepts-authentication) and
  ``x-ratelimit-limit/-remaining/-reset`` headers, 429 when over the 2-second burst limit
  (https://pipedrive.readme.io/docs/core-api-concepts-rate-limiting).
- OAuth refresh at ``https://oauth.pipedrive.com/oauth/token`` with HTTP Basic client
  authentication (https://pipedrive.readme.io/docs/marketplace-oauth-authorization).
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import respx

from connectors.base import Window
from connectors.pipedrive.connector import PipedriveConnector
from connectors.testing import Expected, Kit, Mocked, Query, Scenario

BASE = "https://krsync.pipedrive.test"
HOST = httpx.URL(BASE).host
API_TOKEN = "pd-token-659c9fddb16335e48cc6"
CLIENT_ID = "pd-client-b4d083d9"
CLIENT_SECRET = "pd-secret-2f1e"

Fault = httpx.Response | None
#: (field_key, day, query params) -> the period's totals (and totals_converted), None for empty.
Period = Callable[[str, date, dict[str, str]], dict[str, Any] | None]


def deals_by_day(_field: str, day: date, _params: dict[str, str]) -> dict[str, Any]:
    """``day`` deals on each day: 1 won, the rest open, each worth 100 EUR."""
    n = day.day
    return {
        "totals": {
            "count": n,
            "values": {"EUR": n * 100},
            "weighted_values": {"EUR": n * 50},
            "open_count": n - 1,
            "open_values": {"EUR": (n - 1) * 100} if n > 1 else [],
            "weighted_open_values": [],
            "won_count": 1,
            "won_values": {"EUR": 100},
        },
        "totals_converted": {
            "value": n * 100,
            "weighted_value": n * 50,
            "open_value": (n - 1) * 100,
            "weighted_open_value": 0,
            "won_value": 100,
            "currency": "EUR",
        },
    }


def pd_error(status: int, error: str, **headers: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={"success": False, "error": error, "errorCode": status, "error_info": ""},
        headers=headers,
    )


class FakePipedrive:
    """A company in memory: token checks, the daily timeline, burst-limit headers, faults."""

    def __init__(self, *, period: Period | None = deals_by_day, burst: int = 20) -> None:
        self.period = period
        self.burst = burst
        self.remaining = burst
        self.api_tokens = {API_TOKEN}
        self.access_tokens: set[str] = set()
        self.refresh_tokens: set[str] = set()
        self.issued = 0
        self.faults: dict[str, deque[Fault]] = {k: deque() for k in ("timeline", "me", "token")}
        self.requests: list[tuple[str, httpx.Request]] = []

    def fail(self, endpoint: str, *faults: Fault) -> None:
        self.faults[endpoint].extend(faults)

    def calls(self, endpoint: str) -> list[httpx.Request]:
        return [r for e, r in self.requests if e == endpoint]

    def install(self, router: respx.MockRouter) -> None:
        router.get(host=HOST, path="/api/v1/deals/timeline").mock(side_effect=self._timeline)
        router.get(host=HOST, path="/api/v1/users/me").mock(side_effect=self._me)
        router.post(host="oauth.pipedrive.com", path="/oauth/token").mock(side_effect=self._token)

    def _scripted(self, endpoint: str, request: httpx.Request) -> Fault:
        self.requests.append((endpoint, request))
        queue = self.faults[endpoint]
        return queue.popleft() if queue else None

    def _authorized(self, endpoint: str, request: httpx.Request) -> httpx.Response | None:
        fault = self._scripted(endpoint, request)
        if fault is not None:
            return fault
        token = request.headers.get("x-api-token")
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.api_tokens and bearer not in self.access_tokens:
            return pd_error(401, "unauthorized access")
        return None

    def _ok(self, data: Any) -> httpx.Response:
        self.remaining = max(self.remaining - 1, 0)
        headers = {
            "x-ratelimit-limit": str(self.burst),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": "2",
        }
        return httpx.Response(200, json={"success": True, "data": data}, headers=headers)

    def _me(self, request: httpx.Request) -> httpx.Response:
        refused = self._authorized("me", request)
        return refused or self._ok(
            {
                "id": 777,
                "name": "Integration User",
                "default_currency": "EUR",
                "timezone_name": "Europe/Tallinn",
                "timezone_offset": "+03:00",
                "company_id": 12882925,
                "company_name": "Krsync Sandbox",
                "company_domain": "krsync",
            }
        )

    def _timeline(self, request: httpx.Request) -> httpx.Response:
        refused = self._authorized("timeline", request)
        if refused is not None:
            return refused
        params = dict(request.url.params)
        start = date.fromisoformat(params["start_date"])
        periods = []
        for i in range(int(params["amount"])):
            day = start + timedelta(days=i)
            found = self.period(params["field_key"], day, params) if self.period else None
            totals = (found or {}).get("totals") or {
                "count": 0,
                "values": [],
                "weighted_values": [],
                "open_count": 0,
                "open_values": [],
                "weighted_open_values": [],
                "won_count": 0,
                "won_values": [],
            }
            period: dict[str, Any] = {
                "period_start": f"{day.isoformat()} 00:00:00",
                "period_end": f"{day.isoformat()} 23:59:59",
                "deals": [],
                "totals": totals,
            }
            if found is None and "totals_convert_currency" in params:
                period["totals_converted"] = {
                    "value": 0,
                    "won_value": 0,
                    "open_value": 0,
                    "currency": "EUR",
                }
            elif found is not None and "totals_converted" in found:
                period["totals_converted"] = found["totals_converted"]
            periods.append(period)
        return self._ok(periods)

    def _token(self, request: httpx.Request) -> httpx.Response:
        fault = self._scripted("token", request)
        if fault is not None:
            return fault
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if (
            request.headers.get("Authorization") != f"Basic {basic}"
            or form.get("grant_type") != "refresh_token"
            or form.get("refresh_token") not in self.refresh_tokens
        ):
            return httpx.Response(
                400, json={"error": "invalid_grant", "error_description": "Invalid refresh token"}
            )
        self.issued += 1
        access, refresh = f"pd-access-{self.issued}", f"pd-refresh-{self.issued}"
        self.access_tokens.add(access)
        self.refresh_tokens = {refresh}
        return httpx.Response(
            200,
            json={
                "access_token": access,
                "token_type": "Bearer",
                "refresh_token": refresh,
                "scope": "deals:read,users:read",
                "expires_in": 3599,
                "api_domain": BASE,
            },
        )


# --- the contract kit ----------------------------------------------------------------------------


def _mock(router: respx.MockRouter, scenario: Scenario) -> Mocked:
    fake = FakePipedrive(period=None if scenario == "empty" else deals_by_day)
    if scenario == "bad_credentials":
        fake.api_tokens.clear()
    if scenario == "rate_limited":
        fake.fail("timeline", pd_error(429, "Request over limit", **{"Retry-After": "1"}))
    fake.install(router)

    def expected(window: Window) -> Expected:
        if scenario == "empty":
            return {}
        return {(day, None): float(day.day) for day in window.days()}

    return Mocked(expected=expected, paginates=False)


CONFIG = {"company_domain": "krsync", "base_url": BASE}

KIT = Kit(
    connector=PipedriveConnector,
    config=CONFIG,
    credentials={"api_token": API_TOKEN},
    query=Query("deals.count", params={"date_field": "add_time", "pipeline_id": 1}),
    wrong_type={**CONFIG, "company_domain": 42},
    mock=_mock,
    auth_hint="api_token",
)
