"""End to end: "deals won from paid social this quarter", from HubSpot to the progress API.

Everything is made over the API as an admin would (cycle, objective, key result, a HubSpot data
source, the mapping), HubSpot is :class:`FakeHubSpot` behind respx answering CRM v3 search
(https://developers.hubspot.com/docs/api/crm/search), today is frozen, and the figure read back
over the API is the one worked out by hand below. Runs on SQLite and, with
``KRSYNC_TEST_DATABASE_URL``, on PostgreSQL.

The account reports days in New York time, and deals close at all hours, so the hand count
depends on it: a deal closed at 03:30 UTC on 1 July closed on 30 June in New York (last
quarter), one closed at 01:00 UTC on 15 August closed on 14 August (yesterday, counted).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import respx
import stamina
from fastapi.testclient import TestClient
from sync_factories import freeze_today

from app.core.settings import get_settings

# kits.py imports every kit_*.py: loaded first, it finds this one's KIT defined.
from tests.connectors import kits  # noqa: F401
from tests.connectors.acme import configure_engine
from tests.connectors.kit_hubspot import BASE_URL, TOKEN, FakeHubSpot

TODAY = date(2026, 8, 15)  # the backfill reads 1 July to 14 August, New York days
AS_OF = "2026-08-14"

#: (closedate in UTC, dealstage, hs_analytics_source), and whether it counts, and why.
DEALS: list[tuple[str | None, str, str]] = [
    ("2026-06-10T15:00:00.000Z", "closedwon", "PAID_SOCIAL"),  # last quarter
    ("2026-07-01T03:30:00.000Z", "closedwon", "PAID_SOCIAL"),  # 30 June 23:30 in New York
    ("2026-07-01T04:30:00.000Z", "closedwon", "PAID_SOCIAL"),  # 1 July 00:30: counts
    ("2026-07-14T18:00:00.000Z", "closedwon", "PAID_SOCIAL"),  # 14 July: counts
    ("2026-07-14T22:15:00.000Z", "closedwon", "PAID_SOCIAL"),  # 14 July: counts
    ("2026-07-20T15:00:00.000Z", "closedwon", "PAID_SEARCH"),  # another source
    ("2026-07-22T15:00:00.000Z", "closedlost", "PAID_SOCIAL"),  # lost
    ("2026-08-02T02:00:00.000Z", "closedwon", "PAID_SOCIAL"),  # 1 August 22:00: counts
    ("2026-08-03T12:00:00.000Z", "closedwon", "ORGANIC_SEARCH"),  # another source
    ("2026-08-15T01:00:00.000Z", "closedwon", "PAID_SOCIAL"),  # 14 August 21:00: counts
    ("2026-08-15T03:00:00.000Z", "closedwon", "PAID_SOCIAL"),  # 14 August 23:00: counts
    ("2026-08-15T14:00:00.000Z", "closedwon", "PAID_SOCIAL"),  # today: not synced yet
    (None, "closedwon", "PAID_SOCIAL"),  # no close date: on no day
]
#: Worked by hand from the list above, in New York days.
BY_DAY = {"2026-07-01": 1.0, "2026-07-14": 2.0, "2026-08-01": 1.0, "2026-08-14": 2.0}
WON = 6.0


@pytest.fixture(autouse=True)
def engine_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    configure_engine(monkeypatch)
    freeze_today(monkeypatch, TODAY)
    with stamina.set_testing(True, attempts=100, cap=True):
        yield
    get_settings.cache_clear()


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    account = FakeHubSpot()
    for closed, stage, source in DEALS:
        account.add(
            "deals",
            createdate="2026-05-04T10:00:00.000Z",
            closedate=closed,
            dealstage=stage,
            hs_analytics_source=source,
            amount="1200",
        )
    with respx.mock(assert_all_called=False) as router:
        account.install(router)
        yield account


def created(client: TestClient, path: str, body: dict[str, Any]) -> int:
    response = client.post(f"/api/v1/{path}", json=body)
    assert response.status_code == 201, response.text
    ident: int = response.json()["id"]
    return ident


def runs(client: TestClient, source: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/sync-runs?data_source_id={source}")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return sorted(items, key=lambda r: r["id"])


def deals_kr_and_source(client: TestClient) -> tuple[int, int]:
    """A key result counting deals and a HubSpot source, for mappings to be tried on."""
    cycle = created(
        client, "cycles", {"name": "2026-Q3", "start_date": "2026-07-01", "end_date": "2026-09-30"}
    )
    objective = created(client, "objectives", {"title": "Grow", "cycle_id": cycle})
    kr = created(
        client, "key-results", {"objective_id": objective, "title": "Deals", "target_value": 9}
    )
    source = created(
        client,
        "data-sources",
        {
            "name": "HubSpot",
            "connector": "hubspot",
            "config": {"base_url": BASE_URL},
            "credentials": {"access_token": TOKEN},
        },
    )
    return kr, source


def test_deals_won_from_paid_social_this_quarter(client: TestClient, hubspot: FakeHubSpot) -> None:
    """Mapping ``deals.count`` on ``closedate``, filtered on ``dealstage`` and
    ``hs_analytics_source`` (https://developers.hubspot.com/docs/api/crm/search), backfills the
    quarter so far; the key result reads 6 won deals of 40."""
    cycle = created(
        client, "cycles", {"name": "2026-Q3", "start_date": "2026-07-01", "end_date": "2026-09-30"}
    )
    objective = created(client, "objectives", {"title": "Make paid social pay", "cycle_id": cycle})
    kr = created(
        client,
        "key-results",
        {
            "objective_id": objective,
            "title": "40 deals won from paid social this quarter",
            "unit": "deals",
            "target_value": 40,
            "aggregation": "sum",
        },
    )
    source = created(
        client,
        "data-sources",
        {
            "name": "HubSpot",
            "connector": "hubspot",
            "config": {"base_url": BASE_URL},
            "credentials": {"access_token": TOKEN},
            "timezone": "America/New_York",
        },
    )
    created(
        client,
        "mappings",
        {
            "key_result_id": kr,
            "data_source_id": source,
            "metric": "deals.count",
            "params": {"date_property": "closedate"},
            "filters": [
                {"field": "dealstage", "op": "eq", "value": "closedwon"},
                {"field": "hs_analytics_source", "op": "eq", "value": "PAID_SOCIAL"},
            ],
        },
    )

    [backfill] = runs(client, source)
    assert backfill["status"] == "succeeded", backfill["error"]
    assert (backfill["trigger"], backfill["window_from"], backfill["window_to"]) == (
        "backfill",
        "2026-07-01",
        AS_OF,
    )
    [search] = hubspot.search_bodies()  # six deals: one page says it all
    filters = search["filterGroups"][0]["filters"]
    assert [f["propertyName"] for f in filters] == ["closedate", "dealstage", "hs_analytics_source"]
    assert search["properties"] == ["closedate"]

    # sync again as the nightly job would: the lookback days are read again, nothing changes
    response = client.post(f"/api/v1/data-sources/{source}/sync")
    assert response.status_code == 202, response.text
    assert runs(client, source)[-1]["status"] == "succeeded"

    series = client.get(f"/api/v1/key-results/{kr}/series?from=2026-07-01&to={AS_OF}")
    assert series.status_code == 200, series.text
    assert {p["date"]: p["value"] for p in series.json()["points"]} == BY_DAY

    read = client.get(f"/api/v1/key-results/{kr}?as_of={AS_OF}")
    assert read.status_code == 200, read.text
    progress = read.json()["progress"]
    # 6 of 40 from 0: 0.15. 45 of the quarter's 92 days are gone, so 0.489 was expected;
    # 0.15 is more than 0.25 behind that: off track. The run rate: 6 x 92 / 45 = 12.27 deals.
    assert progress["current_value"] == pytest.approx(WON)
    assert progress["progress"] == pytest.approx(0.15)
    assert progress["expected_progress"] == pytest.approx(45 / 92)
    assert progress["status"] == "off_track"
    assert progress["forecast_value"] == pytest.approx(WON * 92 / 45)
    assert progress["last_observation_date"] == AS_OF


def test_a_mapping_past_hubspots_filter_limit_is_refused_with_a_422(
    client: TestClient, hubspot: FakeHubSpot
) -> None:
    """A filter group takes at most 10 filters (https://developers.hubspot.com/changelog/breaking-change-expanded-filtering-capabilities-and-error-messaging-in-hubspots-search-api)
    and the date range is one of them: a tenth filter is refused when the mapping is made, not
    on the night it would first sync."""
    kr, source = deals_kr_and_source(client)
    filters = [{"field": "dealstage", "op": "neq", "value": f"stage{i}"} for i in range(10)]

    response = client.post(
        "/api/v1/mappings",
        json={
            "key_result_id": kr,
            "data_source_id": source,
            "metric": "deals.count",
            "filters": filters,
        },
    )

    assert response.status_code == 422, response.text
    assert "at most 10 filters" in response.text
    assert runs(client, source) == []
    assert hubspot.log == []


def test_a_misspelt_property_is_refused_with_the_one_hubspot_has(
    client: TestClient, hubspot: FakeHubSpot
) -> None:
    """Property names are checked against ``GET /crm/v3/properties/deals``
    (https://developers.hubspot.com/docs/api/crm/properties) when the mapping is made."""
    kr, source = deals_kr_and_source(client)

    response = client.post(
        "/api/v1/mappings",
        json={
            "key_result_id": kr,
            "data_source_id": source,
            "metric": "deals.count",
            "params": {"date_property": "closedate"},
            "filters": [{"field": "hs_analytics_sourse", "op": "eq", "value": "PAID_SOCIAL"}],
        },
    )

    assert response.status_code == 422, response.text
    assert "no property `hs_analytics_sourse`" in response.text
    assert "`hs_analytics_source`" in response.text
    assert [r.url.path for r in hubspot.requests("properties")] == ["/crm/v3/properties/deals"]
    assert runs(client, source) == []
