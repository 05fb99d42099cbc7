"""The contract kit of ``rest_json`` (connectors/rest_json/): a generic JSON stats endpoint.

``GET https://stats.krsync.test/v1/daily?since={from}&until={to}`` pages with a cursor
(``next`` in the body, sent back as ``cursor``), three records a page, each
``{"day": "YYYY-MM-DD", "stats": {"signups": n}}``. The ``*.test`` host resolves to a public
address in the contract suite, so the private-network guard stays in the path.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import respx

from connectors.base import Window
from connectors.rest_json.connector import RestJsonConnector
from connectors.testing import Expected, Kit, Mocked, Query, Scenario

HOST = "stats.krsync.test"
PATH = "/v1/daily"
URL = f"https://{HOST}{PATH}"
TOKEN = "kit-rest-json-token"
PAGE = 3


def _answer(request: httpx.Request, *, empty: bool) -> httpx.Response:
    if request.headers.get("Authorization") != f"Bearer {TOKEN}":
        return httpx.Response(401, json={"error": "invalid_token"})
    since = date.fromisoformat(request.url.params["since"])
    until = date.fromisoformat(request.url.params["until"])
    days = [] if empty else [since + timedelta(days=i) for i in range((until - since).days + 1)]
    start = int(request.url.params.get("cursor", "0"))
    chunk = days[start : start + PAGE]
    body: dict[str, Any] = {
        "data": [{"day": d.isoformat(), "stats": {"signups": d.day}} for d in chunk],
        "next": str(start + PAGE) if start + PAGE < len(days) else None,
    }
    return httpx.Response(200, json=body)


def _mock(router: respx.MockRouter, scenario: Scenario) -> Mocked:
    calls = iter(range(1_000))

    def answer(request: httpx.Request) -> httpx.Response:
        if scenario == "rate_limited" and next(calls) == 0:
            return httpx.Response(429, headers={"Retry-After": "1"})
        if scenario == "bad_credentials":
            return httpx.Response(401, json={"error": "invalid_token"})
        return _answer(request, empty=scenario == "empty")

    router.get(host=HOST, path=PATH).mock(side_effect=answer)

    def expected(window: Window) -> Expected:
        if scenario == "empty":
            return {}
        return {(day, None): float(day.day) for day in window.days()}

    return Mocked(expected=expected, paginates=True)


CONFIG = {
    "url": URL,
    "query": {"since": "{from}", "until": "{to}"},
    "pagination": {"type": "cursor", "cursor_param": "cursor", "next_cursor_path": "$.next"},
}

KIT = Kit(
    connector=RestJsonConnector,
    config=CONFIG,
    credentials={"token": TOKEN},
    query=Query("value", params={"records": "$.data", "date": "$.day", "value": "$.stats.signups"}),
    wrong_type={**CONFIG, "headers": 5},
    mock=_mock,
    auth_hint="credentials",
)
