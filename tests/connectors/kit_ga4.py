"""The contract kit of ``ga4`` (connectors/ga4/), played by :mod:`google_fake` over respx.

The official client's requests reach respx because the connector carries them over the engine's
httpx client (connectors/google_auth.py). The service account's ``token_uri`` and the
``base_url`` are ``*.test`` hosts, which the contract suite resolves to a public address, so the
private-network guard stays in the path. Email sessions are the day of the month; Organic Search
traffic beside them proves the ``sessionDefaultChannelGroup`` filter is applied. Shapes:
developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/properties/batchRunReports.
"""

from __future__ import annotations

import respx

from connectors.base import Window
from connectors.ga4.connector import GA4Connector
from connectors.testing import Expected, Kit, Mocked, Query, Scenario
from tests.connectors.google_fake import (
    GA4_CONCURRENT,
    PROPERTY_ID,
    FakeGoogle,
    service_account,
    year_of_traffic,
)

GA4_HOST = "analyticsdata.krsync.test"
TOKEN_HOST = "oauth2.krsync.test"
TOKEN_URI = f"https://{TOKEN_HOST}/token"
BASE_URL = f"https://{GA4_HOST}"
EMAIL = {"field": "sessionDefaultChannelGroup", "op": "eq", "value": "Email"}


def _mock(router: respx.MockRouter, scenario: Scenario) -> Mocked:
    # A bad credential: the key the source holds is not the one Google knows for the account.
    registered = service_account(
        TOKEN_URI, key_name="rotated" if scenario == "bad_credentials" else "good"
    )
    fake = FakeGoogle(
        accounts=[registered],
        records=year_of_traffic() if scenario in ("data", "rate_limited") else [],
    )
    if scenario == "rate_limited":
        fake.fail("batchRunReports", 429, GA4_CONCURRENT, headers={"Retry-After": "1"})
    fake.install(router, GA4_HOST, TOKEN_HOST)

    def expected(window: Window) -> Expected:
        if scenario == "empty":
            return {}
        return {(day, None): float(day.day) for day in window.days()}

    # A date-only report of a 10-day window is one page of the API's 250,000 rows.
    return Mocked(expected=expected, paginates=False)


CONFIG = {"property_id": PROPERTY_ID, "base_url": BASE_URL}

KIT = Kit(
    connector=GA4Connector,
    config=CONFIG,
    credentials={"service_account_info": service_account(TOKEN_URI)},
    query=Query("sessions", filters=[EMAIL]),
    wrong_type={**CONFIG, "property_id": 123456789},
    mock=_mock,
    auth_hint="create a new JSON key",
)
