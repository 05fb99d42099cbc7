"""The contract kit of ``search_console`` (connectors/search_console/), over respx.

:mod:`google_fake` plays the token endpoint and ``searchAnalytics.query`` as documented at
developers.google.com/webmaster-tools/v1/searchanalytics/query, on ``*.test`` hosts the contract
suite resolves to a public address. Mobile clicks are the day of the month (desktop traffic
beside them proves the ``device`` filter). A 10-day window is one page of the API's 25,000 rows;
test_search_console.py lowers the page size to prove paging.
"""

from __future__ import annotations

import respx

from connectors.base import Window
from connectors.search_console.connector import SearchConsoleConnector
from connectors.testing import Expected, Kit, Mocked, Query, Scenario
from tests.connectors.google_fake import (
    SITE_URL,
    FakeGoogle,
    google_error,
    service_account,
    year_of_search,
)

API_HOST = "searchconsole.krsync.test"
TOKEN_HOST = "oauth2.krsync.test"
TOKEN_URI = f"https://{TOKEN_HOST}/token"
BASE_URL = f"https://{API_HOST}"
MOBILE = {"field": "device", "op": "eq", "value": "MOBILE"}


def _mock(router: respx.MockRouter, scenario: Scenario) -> Mocked:
    registered = service_account(
        TOKEN_URI, key_name="rotated" if scenario == "bad_credentials" else "good"
    )
    fake = FakeGoogle(
        accounts=[registered],
        search=year_of_search() if scenario in ("data", "rate_limited") else [],
    )
    if scenario == "rate_limited":
        fake.fail(
            "searchAnalytics/query",
            429,
            google_error(429, "RESOURCE_EXHAUSTED", "Search Analytics QPS quota exceeded."),
            headers={"Retry-After": "1"},
        )
    fake.install(router, API_HOST, TOKEN_HOST)

    def expected(window: Window) -> Expected:
        if scenario == "empty":
            return {}
        return {(day, None): float(day.day) for day in window.days()}

    # The token call and one page: no paging at 25,000 rows a page.
    return Mocked(expected=expected, paginates=False)


CONFIG = {"site_url": SITE_URL, "base_url": BASE_URL}

KIT = Kit(
    connector=SearchConsoleConnector,
    config=CONFIG,
    credentials={"service_account_info": service_account(TOKEN_URI)},
    query=Query("clicks", filters=[MOBILE]),
    wrong_type={**CONFIG, "site_url": 42},
    mock=_mock,
    auth_hint="create a new JSON key",
)
