"""The webinar platform played by respx, for krsync's contract suite (connectors.testing).

It answers as the API in ``krsync_webinars/connector.py`` documents: any window asked, three
days a page (so the suite's 10-day window takes four pages), the day of the month as each
day's count; 401 to any other key; a 429 with ``Retry-After: 1`` on the first report call.
"""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import respx
from krsync_webinars.connector import WebinarConnector

from connectors.base import Window
from connectors.testing import Expected, Kit, Mocked, Query, Scenario

BASE_URL = "https://api.webinars.test"  # .test: see connectors.testing.Kit
API_KEY = "wbn_live_3f9c2d7a81b04e6f"
PAGE = 3


def _days(request: httpx.Request, empty: bool) -> httpx.Response:
    start = date.fromisoformat(request.url.params["from"])
    end = date.fromisoformat(request.url.params["to"])
    offset = int(request.url.params.get("cursor", "0"))
    first = start + timedelta(days=offset)
    last = min(end, first + timedelta(days=PAGE - 1))
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    rows = [] if empty else [{"date": d.isoformat(), "count": d.day} for d in days]
    more = not empty and last < end
    return httpx.Response(
        200, json={"days": rows, "next_cursor": str(offset + PAGE) if more else None}
    )


def mock(router: respx.MockRouter, scenario: Scenario) -> Mocked:
    held = "wbn_live_another_key_0000" if scenario == "bad_credentials" else API_KEY
    throttled = [httpx.Response(429, headers={"Retry-After": "1"})] * (scenario == "rate_limited")

    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {held}":
            return httpx.Response(401, json={"error": "invalid_api_key"})
        if request.url.path == "/v1/account":
            return httpx.Response(
                200, json={"id": "acc_1", "name": "Acme Events", "timezone": "UTC"}
            )
        if throttled:
            return throttled.pop()
        return _days(request, scenario == "empty")

    router.route(host="api.webinars.test").mock(side_effect=answer)

    def expected(window: Window) -> Expected:
        return {} if scenario == "empty" else {(d, None): float(d.day) for d in window.days()}

    return Mocked(expected=expected, paginates=True)


KIT = Kit(
    connector=WebinarConnector,
    config={"base_url": BASE_URL, "page_size": PAGE},
    credentials={"api_key": API_KEY},
    query=Query("attendees", filters=[{"field": "webinar_id", "op": "in", "value": ["w1", "w2"]}]),
    wrong_type={"base_url": BASE_URL, "page_size": "three"},
    mock=mock,
    auth_hint="create a new key",
)
