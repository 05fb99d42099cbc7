"""The ``hubspot`` connector against :class:`FakeHubSpot`, HubSpot's CRM API played over respx.

Each test names the HubSpot page whose request and response shapes it relies on. Call counts
are the point of several tests: HubSpot has no aggregate endpoint for CRM records, so the
connector must choose between paging records and asking one ``total`` a day.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.core.http import KrsyncClient
from connectors.base import (
    FILTER_OPS,
    ConnectorAuthError,
    DailyValue,
    Filter,
    MappingError,
    MetricQuery,
    RateLimited,
    RetriableError,
    Window,
)
from connectors.hubspot.connector import (
    HOME_AMOUNT,
    PAGE_LIMIT,
    RESULT_CAP,
    HubSpotConnector,
    paging_calls,
)
from connectors.hubspot.models import CountParams, HubSpotConfig, HubSpotCredentials, SumParams

# kits.py imports every kit_*.py: loaded first, it finds this one's KIT defined.
from tests.connectors import (
    engine_client,
    kits,  # noqa: F401
)
from tests.connectors.kit_hubspot import (
    BASE_URL,
    CLIENT_ID,
    CLIENT_SECRET,
    READ_SCOPES,
    REFRESH_TOKEN,
    TOKEN,
    FakeHubSpot,
    ms,
    rate_limited,
)

pytestmark = pytest.mark.anyio

SEARCH_DOC = "https://developers.hubspot.com/docs/api/crm/search"
Q3 = Window(date(2026, 7, 1), date(2026, 9, 30))  # 92 days
WON = [{"field": "dealstage", "op": "eq", "value": "closedwon"}]


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with engine_client.engine_env(monkeypatch, attempts=100, cap=True):
        yield


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with engine_client.mocked(FakeHubSpot()) as account:
        yield account


@asynccontextmanager
async def connector(
    credentials: dict[str, Any] | None = None,
    *,
    timezone: str = "UTC",
    throttled: bool = False,
) -> AsyncIterator[HubSpotConnector]:
    """The connector on a client built as the engine builds it; unthrottled unless asked, so
    a quarter of daily searches doesn't take 23 seconds of a test run."""
    async with engine_client.connected(
        HubSpotConnector,
        {"base_url": BASE_URL},
        credentials or {"access_token": TOKEN},
        timezone=timezone,
        **({} if throttled else {"rate_per_second": None}),
    ) as (hs, client):
        assert isinstance(client, KrsyncClient)
        assert isinstance(hs, HubSpotConnector)
        yield hs


def query(
    metric: str = "deals.count",
    qid: str = "1",
    filters: list[dict[str, Any]] | None = None,
    **params: str,
) -> MetricQuery:
    flts = [Filter.model_validate(f) for f in (WON if filters is None else filters)]
    validated = HubSpotConnector.validate_query(metric, params, flts, "sum")
    return MetricQuery(qid, metric, validated, tuple(flts))


def canonical(item: object) -> str:
    return json.dumps(item, sort_keys=True)


def as_dict(values: list[DailyValue]) -> dict[date, float]:
    return {v.date: v.value for v in values}


def at(day: date, hour: int = 12, minute: int = 0, zone: Any = UTC) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)


def won_deals(fake: FakeHubSpot, window: Window, per_day: int, **props: Any) -> None:
    fake.spread(
        "deals",
        window.days(),
        lambda _: per_day,
        date_property="closedate",
        dealstage="closedwon",
        **props,
    )


# --- paging and planning ----------------------------------------------------------------------


async def test_paging_follows_paging_next_after_to_the_last_page(fake: FakeHubSpot) -> None:
    """https://developers.hubspot.com/docs/api/crm/search: a page holds at most 200 records and
    carries ``paging.next.after`` until the last one, which has no ``paging``."""
    window = Window(date(2026, 7, 1), date(2026, 7, 30))
    won_deals(fake, window, 15)  # 450 won deals over 30 days
    fake.spread("deals", window.days(), lambda _: 2, date_property="closedate", dealstage="lost")

    async with connector() as hs:
        result = await hs.fetch([query(date_property="closedate")], window)

    bodies = fake.search_bodies()
    assert [b.get("after") for b in bodies] == [None, "200", "400"]
    assert {b["limit"] for b in bodies} == {PAGE_LIMIT}
    assert {tuple(b["properties"]) for b in bodies} == {("closedate",)}
    assert as_dict(result.values) == dict.fromkeys(window.days(), 15.0)
    assert result.details["plans"]["1"] == {"plan": "paged", "total": 450, "calls": 3}


async def test_window_days_become_the_instants_that_bound_them_in_the_source_timezone(
    fake: FakeHubSpot,
) -> None:
    """HubSpot filters datetimes by epoch milliseconds
    (https://developers.hubspot.com/docs/faq/how-should-timestamps-be-formatted-for-hubspots-apis)
    and ``BETWEEN`` takes ``value`` and ``highValue`` (https://developers.hubspot.com/docs/api/crm/search):
    a New York day starts at 04:00 UTC in July, and records go back into New York days."""
    ny = ZoneInfo("America/New_York")
    window = Window(date(2026, 7, 1), date(2026, 7, 2))
    for moment in (
        datetime(2026, 7, 1, 3, 30, tzinfo=UTC),  # 30 June, 23:30 in New York: not asked
        datetime(2026, 7, 1, 4, 30, tzinfo=UTC),  # 1 July 00:30
        datetime(2026, 7, 1, 23, 0, tzinfo=UTC),  # 1 July 19:00
        datetime(2026, 7, 3, 3, 59, tzinfo=UTC),  # 2 July 23:59
        datetime(2026, 7, 3, 4, 0, tzinfo=UTC),  # 3 July 00:00: not asked
    ):
        fake.add("deals", closedate=moment, dealstage="closedwon")

    async with connector(timezone="America/New_York") as hs:
        result = await hs.fetch([query(date_property="closedate")], window)

    [body] = fake.search_bodies()
    between, won = body["filterGroups"][0]["filters"]
    assert between == {
        "propertyName": "closedate",
        "operator": "BETWEEN",
        "value": str(ms(datetime(2026, 7, 1, tzinfo=ny))),
        "highValue": str(ms(datetime(2026, 7, 3, tzinfo=ny)) - 1),
    }
    assert between["value"] == str(ms(datetime(2026, 7, 1, 4, tzinfo=UTC)))
    assert won == {"propertyName": "dealstage", "operator": "EQ", "value": "closedwon"}
    assert as_dict(result.values) == {date(2026, 7, 1): 2.0, date(2026, 7, 2): 1.0}


async def test_a_sparse_quarter_is_paged_in_two_calls(fake: FakeHubSpot) -> None:
    """https://developers.hubspot.com/docs/api/crm/search: 276 won deals are two pages of 200;
    a search a day would take 1 + 92 calls."""
    won_deals(fake, Q3, 3)

    async with connector() as hs:
        result = await hs.fetch([query(date_property="closedate")], Q3)

    assert len(fake.requests("search")) == 2
    assert as_dict(result.values) == dict.fromkeys(Q3.days(), 3.0)
    assert result.details["plans"]["1"]["plan"] == "paged"


async def test_a_quarter_past_the_10000_cap_is_split_until_each_half_can_be_paged(
    fake: FakeHubSpot,
) -> None:
    """https://developers.hubspot.com/docs/api/crm/search: paging stops at 10,000 results
    (400 beyond). 11,040 won deals (120 a day): the quarter's first page says so, then each
    half (1 July-15 August and 16 August-30 September, 5,520 each) is paged on its own:
    1 + 2 x 28 = 57 calls, against 1 + 92 for a search a day."""
    won_deals(fake, Q3, 120)

    async with connector() as hs:
        result = await hs.fetch([query(date_property="closedate")], Q3)

    bodies = fake.search_bodies()
    assert len(bodies) == 57
    assert all(int(b.get("after") or 0) + b["limit"] <= RESULT_CAP for b in bodies)
    firsts = [b["filterGroups"][0]["filters"][0] for b in bodies if "after" not in b]
    august_16 = ms(datetime(2026, 8, 16, tzinfo=UTC))
    assert [(int(f["value"]), int(f["highValue"])) for f in firsts[1:]] == [
        (ms(datetime(2026, 7, 1, tzinfo=UTC)), august_16 - 1),
        (august_16, ms(datetime(2026, 10, 1, tzinfo=UTC)) - 1),
    ]
    assert as_dict(result.values) == dict.fromkeys(Q3.days(), 120.0)
    assert not result.warnings


async def test_a_dense_quarter_is_counted_with_one_total_a_day(fake: FakeHubSpot) -> None:
    """https://developers.hubspot.com/docs/api/crm/search: ``total`` counts every match, also
    past the page. 36,800 won deals (400 a day) would take 184 pages and splits; the quarter's
    first page plus one ``limit: 1`` search a day is 1 + 92 = 93 calls."""
    won_deals(fake, Q3, 400)

    async with connector() as hs:
        result = await hs.fetch([query(date_property="closedate")], Q3)

    bodies = fake.search_bodies()
    assert len(bodies) == 93
    assert [b["limit"] for b in bodies[1:]] == [1] * 92
    assert as_dict(result.values) == dict.fromkeys(Q3.days(), 400.0)
    assert result.details["plans"]["1"] == {"plan": "per_day", "total": 36_800, "calls": 93}


async def test_a_busy_single_day_is_counted_from_the_first_total(fake: FakeHubSpot) -> None:
    """https://developers.hubspot.com/docs/api/crm/search: a one-day window's ``total`` is the
    day's count, so 1,000 won deals take one call, not five pages."""
    day = Window(date(2026, 7, 1), date(2026, 7, 1))
    won_deals(fake, day, 1_000)

    async with connector() as hs:
        result = await hs.fetch([query(date_property="closedate")], day)

    assert len(fake.requests("search")) == 1
    assert as_dict(result.values) == {date(2026, 7, 1): 1000.0}


def test_the_plan_weighs_pages_against_days() -> None:
    """Pages of 200 (https://developers.hubspot.com/docs/api/crm/search); over 10,000 the
    splits cost their first pages again."""
    assert paging_calls(0) == 0
    assert paging_calls(200) == 0
    assert paging_calls(201) == 1
    assert paging_calls(10_000) == 49
    assert paging_calls(11_040) == 55 + 4
    assert paging_calls(36_800) == 183 + 8


async def test_an_empty_window_asks_once_and_gives_nothing(fake: FakeHubSpot) -> None:
    """https://developers.hubspot.com/docs/api/crm/search: no match is ``total: 0`` and an
    empty ``results``."""
    async with connector() as hs:
        result = await hs.fetch(
            [query(), query("deals.sum", "2", property="amount")], Window(date(2026, 7, 1), Q3.end)
        )

    assert len(fake.requests("search")) == 1  # count and sum share the search
    assert result.values == []
    assert not result.query_errors


# --- sums and string-encoded numbers ----------------------------------------------------------


async def test_a_sum_pages_only_the_date_and_summed_properties_and_reads_strings(
    fake: FakeHubSpot,
) -> None:
    """https://developers.hubspot.com/docs/api/crm/search: property values come back as strings
    ("1500.50"); ``properties`` limits what a page carries (a deal's ``amount`` brings its
    ``deal_currency_code``, https://knowledge.hubspot.com/properties/hubspots-default-deal-properties)."""
    day = date(2026, 7, 1)
    for amount in ("1500.50", "250", "", None, "n/a"):
        fake.add("deals", closedate=at(day), dealstage="closedwon", amount=amount)
    fake.add("deals", closedate=at(day + timedelta(days=1)), dealstage="closedwon", amount="99.5")

    async with connector() as hs:
        result = await hs.fetch(
            [query("deals.sum", date_property="closedate", property="amount")],
            Window(day, day + timedelta(days=2)),
        )

    [body] = fake.search_bodies()
    assert body["properties"] == ["closedate", "amount", "deal_currency_code"]
    assert as_dict(result.values) == {day: 1750.5, day + timedelta(days=1): 99.5}
    assert all(type(v.value) is float for v in result.values)
    assert len(result.warnings) == 1
    assert "`n/a` is not a number" in result.warnings[0]


# --- currencies -------------------------------------------------------------------------------


async def test_a_sum_of_amount_in_several_currencies_warns_to_sum_the_company_currency(
    fake: FakeHubSpot,
) -> None:
    """A deal's ``amount`` is in its own currency, ``deal_currency_code``; HubSpot calculates
    ``amount_in_home_currency`` in the company currency
    (https://knowledge.hubspot.com/properties/hubspots-default-deal-properties; the code is one
    of the account's currencies, https://developers.hubspot.com/changelog/deal-currenct-code-validation).
    1,000 USD and 500 EUR are no 1,500 of anything: the sum is kept, with a warning naming the
    property that is."""
    day = date(2026, 7, 1)
    fake.add("deals", closedate=at(day), amount="1000", deal_currency_code="USD")
    fake.add("deals", closedate=at(day), amount="500", deal_currency_code="EUR")
    fake.add("deals", closedate=at(day), amount="", deal_currency_code="GBP")  # no amount to add
    fake.add("deals", closedate=at(day, 13), amount="250", deal_currency_code="USD")

    async with connector() as hs:
        result = await hs.fetch(
            [
                query("deals.sum", "a", [], date_property="closedate", property="amount"),
                query("deals.sum", "b", [], date_property="closedate", property="amount"),
            ],
            Window(day, day),
        )

    [body] = fake.search_bodies()
    assert body["properties"] == ["closedate", "amount", "deal_currency_code"]
    assert engine_client.by_query(result.values) == {"a": {day: 1750.0}, "b": {day: 1750.0}}
    [warning] = result.warnings  # one for the shared search, not one per mapping
    assert "2 currencies (EUR, USD)" in warning
    assert "`amount_in_home_currency`" in warning


async def test_a_sum_of_amount_in_one_currency_says_nothing(fake: FakeHubSpot) -> None:
    """Deals all in the company currency (``deal_currency_code`` USD, or blank where the account
    has no other currency: https://knowledge.hubspot.com/properties/hubspots-default-deal-properties)
    add up as they are."""
    day = date(2026, 7, 1)
    fake.add("deals", closedate=at(day), amount="1000", deal_currency_code="USD")
    fake.add("deals", closedate=at(day), amount="200", deal_currency_code="usd")
    fake.add("deals", closedate=at(day), amount="30")

    async with connector() as hs:
        result = await hs.fetch(
            [query("deals.sum", filters=[], date_property="closedate", property="amount")],
            Window(day, day),
        )

    assert as_dict(result.values) == {day: 1230.0}
    assert result.warnings == []


async def test_amount_in_home_currency_is_summed_in_the_company_currency(
    fake: FakeHubSpot,
) -> None:
    """``amount_in_home_currency`` is a number property HubSpot calculates from ``amount`` and
    the account's exchange rates
    (https://knowledge.hubspot.com/properties/hubspots-default-deal-properties, typed through
    https://developers.hubspot.com/docs/api/crm/properties): a mapping on it is accepted, its
    sum is one currency, and no currency code is asked for it."""
    day = date(2026, 7, 1)
    for amount, code, home in (("1000", "USD", "1000"), ("500", "EUR", "540.25")):
        fake.add(
            "deals",
            closedate=at(day),
            amount=amount,
            deal_currency_code=code,
            amount_in_home_currency=home,
        )
    home = query("deals.sum", filters=[], date_property="closedate", property=HOME_AMOUNT)

    async with connector() as hs:
        await hs.validate_mapping_online(home)
        result = await hs.fetch([home], Window(day, day))

    [body] = fake.search_bodies()
    assert body["properties"] == ["closedate", "amount_in_home_currency"]
    assert as_dict(result.values) == {day: 1540.25}
    assert result.warnings == []


async def test_counts_and_sums_with_the_same_filters_share_their_pages(fake: FakeHubSpot) -> None:
    """https://developers.hubspot.com/docs/api/crm/search: one page serves every mapping that
    searches the same object, date property and filters."""
    window = Window(date(2026, 7, 1), date(2026, 7, 10))
    won_deals(fake, window, 25, amount="100", hs_analytics_source="PAID_SOCIAL")
    queries = [
        query("deals.count", "n", date_property="closedate"),
        query("deals.sum", "s", date_property="closedate", property="amount"),
        query("deals.sum", "t", date_property="closedate", property="hs_object_id"),
    ]

    async with connector() as hs:
        result = await hs.fetch(queries, window)

    bodies = fake.search_bodies()
    assert len(bodies) == 2  # 250 deals: two pages for all three mappings
    assert bodies[0]["properties"] == [
        "closedate",
        "amount",
        "hs_object_id",
        "deal_currency_code",
    ]
    by_query = {(v.query_id, v.date): v.value for v in result.values}
    assert by_query[("n", date(2026, 7, 4))] == 25.0
    assert by_query[("s", date(2026, 7, 4))] == 2500.0
    assert len(result.values) == 30


async def test_a_sum_past_the_cap_within_one_day_splits_the_day(fake: FakeHubSpot) -> None:
    """https://developers.hubspot.com/docs/api/crm/search (10,000 results at most): a sum can't
    read totals, so a single day of 10,050 deals is split into two halves of the day."""
    day = date(2026, 7, 1)
    won_deals(fake, Window(day, day), 10_050, amount="2")

    async with connector() as hs:
        result = await hs.fetch(
            [query("deals.sum", date_property="closedate", property="amount")], Window(day, day)
        )

    assert as_dict(result.values) == {day: 20_100.0}
    # the day's first page, then 1 + 25 pages for each half of 5,025
    assert len(fake.requests("search")) == 1 + 2 * 26


async def test_a_date_property_is_bounded_and_bucketed_in_utc_days(fake: FakeHubSpot) -> None:
    """HubSpot stores a ``date`` property at midnight UTC of its day
    (https://developers.hubspot.com/docs/faq/how-should-timestamps-be-formatted-for-hubspots-apis);
    its type comes from https://developers.hubspot.com/docs/api/crm/properties."""
    fake.properties["deals"]["contract_start"] = "date"
    fake.add("deals", contract_start="2026-07-01", dealstage="closedwon")
    fake.add("deals", contract_start="2026-07-02", dealstage="closedwon")

    async with connector(timezone="America/Los_Angeles") as hs:
        result = await hs.fetch(
            [query(date_property="contract_start")], Window(date(2026, 7, 1), date(2026, 7, 1))
        )

    [prop] = fake.requests("properties")
    assert prop.url.path == "/crm/v3/properties/deals/contract_start"
    between = fake.search_bodies()[0]["filterGroups"][0]["filters"][0]
    assert between["value"] == str(ms(datetime(2026, 7, 1, tzinfo=UTC)))
    assert as_dict(result.values) == {date(2026, 7, 1): 1.0}


# --- filters and mapping checks ---------------------------------------------------------------


async def test_filters_become_one_group_next_to_the_date_range(fake: FakeHubSpot) -> None:
    """Operators of https://developers.hubspot.com/docs/api/crm/search: ``IN``/``NOT_IN`` take
    ``values``, the rest one ``value``, every value a string. Every operator krsync offers is
    sent (nine filters: the most a group takes next to the date range), and each one is what
    leaves out one of the deals."""
    filters: list[dict[str, Any]] = [
        {"field": "dealstage", "op": "in", "value": ["closedwon", "contractsent"]},
        {"field": "hs_analytics_source", "op": "not_in", "value": ["OFFLINE"]},
        {"field": "hs_analytics_source", "op": "eq", "value": "PAID_SOCIAL"},
        {"field": "amount", "op": "gte", "value": 1000},
        {"field": "amount", "op": "gt", "value": 1100},
        {"field": "amount", "op": "lt", "value": 2500.5},
        {"field": "amount", "op": "lte", "value": 2000},
        {"field": "dealname", "op": "contains", "value": "renewal"},
        {"field": "pipeline", "op": "neq", "value": "partner"},
    ]
    matching = {
        "dealstage": "closedwon",
        "amount": "1200",
        "dealname": "ACME renewal 2026",
        "pipeline": "default",
        "hs_analytics_source": "PAID_SOCIAL",
    }
    for changed in (
        {},  # the one deal counted
        {"dealstage": "closedlost"},  # IN
        {"hs_analytics_source": "OFFLINE"},  # NOT_IN (and EQ)
        {"hs_analytics_source": "ORGANIC_SEARCH"},  # EQ
        {"amount": "900"},  # GTE (and GT)
        {"amount": "1050"},  # GT
        {"amount": "3000"},  # LT (and LTE)
        {"amount": "2200"},  # LTE
        {"dealname": "ACME upsell"},  # CONTAINS_TOKEN
        {"pipeline": "partner"},  # NEQ
    ):
        fake.add("deals", createdate=at(date(2026, 7, 1)), **(matching | changed))

    async with connector() as hs:
        result = await hs.fetch(
            [query(filters=filters)], Window(date(2026, 7, 1), date(2026, 7, 1))
        )

    [body] = fake.search_bodies()
    assert len(body["filterGroups"]) == 1
    sent = body["filterGroups"][0]["filters"][1:]
    assert sorted(sent, key=canonical) == sorted(
        [
            {
                "propertyName": "dealstage",
                "operator": "IN",
                "values": ["closedwon", "contractsent"],
            },
            {"propertyName": "hs_analytics_source", "operator": "NOT_IN", "values": ["OFFLINE"]},
            {"propertyName": "hs_analytics_source", "operator": "EQ", "value": "PAID_SOCIAL"},
            {"propertyName": "amount", "operator": "GTE", "value": "1000"},
            {"propertyName": "amount", "operator": "GT", "value": "1100"},
            {"propertyName": "amount", "operator": "LT", "value": "2500.5"},
            {"propertyName": "amount", "operator": "LTE", "value": "2000"},
            {"propertyName": "dealname", "operator": "CONTAINS_TOKEN", "value": "renewal"},
            {"propertyName": "pipeline", "operator": "NEQ", "value": "partner"},
        ],
        key=canonical,
    )
    # Every op a mapping may use (SPEC's list) reached the body under HubSpot's name.
    assert {f["operator"] for f in sent} == {
        "EQ",
        "NEQ",
        "IN",
        "NOT_IN",
        "GT",
        "GTE",
        "LT",
        "LTE",
        "CONTAINS_TOKEN",
    }
    assert {f["op"] for f in filters} == set(FILTER_OPS)
    assert as_dict(result.values) == {date(2026, 7, 1): 1.0}


@pytest.mark.parametrize(
    ("value", "counted"),
    [
        ("renewal", ["ACME renewal 2026", "Renewal - Globex"]),
        ("renew*", ["ACME renewal 2026", "Renewal - Globex", "Renewals Q3"]),
        ("*renew*", ["ACME renewal 2026", "Renewal - Globex", "Renewals Q3", "Nonrenewable"]),
        ("*@acme.com", ["deals@acme.com"]),
    ],
)
async def test_contains_is_a_whole_word_match_with_wildcards(
    fake: FakeHubSpot, value: str, counted: list[str]
) -> None:
    """``contains`` goes out as CONTAINS_TOKEN, "contains a token", whose ``*`` wildcards
    "complete a partial search" (``*@hubspot.com`` finds HubSpot addresses): a word of the
    value, not any substring as every other platform's ``contains``, and no wildcard is added
    to what the mapping gave (https://developers.hubspot.com/docs/api/crm/search). The fake
    matches tokens so: "renewal" leaves out "Renewals Q3" and "Nonrenewable"."""
    names = [
        "ACME renewal 2026",
        "Renewal - Globex",
        "Renewals Q3",
        "Nonrenewable",
        "deals@acme.com",
        "ACME upsell",
    ]
    for name in names:
        fake.add("deals", createdate=at(date(2026, 7, 1)), dealname=name)
    flt = [{"field": "dealname", "op": "contains", "value": value}]

    async with connector() as hs:
        result = await hs.fetch([query(filters=flt)], Window(date(2026, 7, 1), date(2026, 7, 1)))

    [body] = fake.search_bodies()
    assert body["filterGroups"][0]["filters"][1] == {
        "propertyName": "dealname",
        "operator": "CONTAINS_TOKEN",
        "value": value,
    }
    assert as_dict(result.values) == {date(2026, 7, 1): float(len(counted))}


def test_the_catalogue_says_what_contains_means_on_hubspot() -> None:
    """HubSpot's ``contains`` is a word match (CONTAINS_TOKEN,
    https://developers.hubspot.com/docs/api/crm/search); the catalogue says so, and how to
    ask for part of a word, while its other operators read as everywhere."""
    meanings = HubSpotConnector.describe()["filter_meanings"]
    assert "whole word" in meanings["contains"]
    assert "CONTAINS_TOKEN" in meanings["contains"]
    assert "`*renew*`" in meanings["contains"]
    assert meanings["eq"] == "equals the value"
    assert set(meanings) == set(FILTER_OPS)


def test_more_filters_than_a_group_takes_are_refused_when_the_mapping_is_made() -> None:
    """Ten filters a group since 2024-08-26 (https://developers.hubspot.com/changelog/breaking-change-expanded-filtering-capabilities-and-error-messaging-in-hubspots-search-api);
    the date range takes one of them."""
    nine = [{"field": f"p{i}", "op": "eq", "value": "x"} for i in range(9)]
    HubSpotConnector.validate_query("contacts.count", {}, nine, "sum")

    with pytest.raises(MappingError) as refused:
        HubSpotConnector.validate_query("contacts.count", {}, [*nine, nine[0]], "sum")

    assert refused.value.part == "filters"
    assert "at most 10 filters" in refused.value.message
    assert "use at most 9" in refused.value.message


def test_the_catalogue_names_and_params() -> None:
    """SPEC section 4: `<object>.count` and `<object>.sum` for the four CRM objects searched
    through ``POST /crm/v3/objects/{object}/search`` (contacts, companies, deals, tickets:
    https://developers.hubspot.com/docs/api/crm/search); a sum names its `property`; the date
    property defaults to `createdate`, the creation date every object has
    (https://developers.hubspot.com/docs/api/crm/properties)."""
    names = {m.name for m in HubSpotConnector.metrics}
    assert names == {
        f"{o}.{k}" for o in ("contacts", "companies", "deals", "tickets") for k in ("count", "sum")
    }
    params = HubSpotConnector.validate_query("tickets.count", {}, [], "sum")
    assert isinstance(params, CountParams)
    assert params.date_property == "createdate"
    with pytest.raises(MappingError) as missing:
        HubSpotConnector.validate_query("deals.sum", {"date_property": "closedate"}, [], "sum")
    assert missing.value.part == "params.property"
    with pytest.raises(MappingError) as bad:
        HubSpotConnector.validate_query("deals.count", {"date_property": "close date"}, [], None)
    assert bad.value.part == "params.date_property"
    summed = HubSpotConnector.validate_query("deals.sum", {"property": "amount"}, [], "avg")
    assert isinstance(summed, SumParams)


async def test_a_mapping_is_checked_against_the_objects_properties(fake: FakeHubSpot) -> None:
    """Property names and types from https://developers.hubspot.com/docs/api/crm/properties."""
    async with connector() as hs:
        await hs.validate_mapping_online(
            query("deals.sum", date_property="closedate", property="amount")
        )
        with pytest.raises(MappingError) as typo:
            await hs.validate_mapping_online(query("deals.sum", property="amout"))
        with pytest.raises(MappingError) as text:
            await hs.validate_mapping_online(query("deals.sum", property="dealname"))
        with pytest.raises(MappingError) as not_a_date:
            await hs.validate_mapping_online(query(date_property="dealstage"))
        with pytest.raises(MappingError) as field:
            await hs.validate_mapping_online(
                query(filters=[{"field": "deal_stage", "op": "eq", "value": "closedwon"}])
            )

    assert typo.value.part == "params.property"
    assert "no property `amout`" in typo.value.message
    assert "`amount`" in typo.value.message  # the suggestion
    assert text.value.part == "params.property"
    assert "only a number property can be summed" in text.value.message
    assert not_a_date.value.part == "params.date_property"
    assert field.value.part == "filters[0].field"
    assert "`dealstage`" in field.value.message


async def test_a_mapping_is_checked_by_shape_when_the_schema_cant_be_read() -> None:
    """A token without ``crm.schemas.deals.read`` gets 403 from
    https://developers.hubspot.com/docs/api/crm/properties; the mapping isn't refused for it."""
    fake = FakeHubSpot(scopes=[READ_SCOPES["deals"]])
    with engine_client.mocked(fake):
        async with connector() as hs:
            await hs.validate_mapping_online(query(filters=[]))
    assert len(fake.requests("properties")) == 1


# --- errors -----------------------------------------------------------------------------------


async def test_a_missing_scope_is_an_auth_error_naming_the_scope() -> None:
    """403 ``MISSING_SCOPES`` with ``requiredGranularScopes``
    (https://developers.hubspot.com/docs/api-reference/error-handling)."""
    fake = FakeHubSpot(scopes=[READ_SCOPES["contacts"]])
    with engine_client.mocked(fake):
        async with connector() as hs:
            with pytest.raises(ConnectorAuthError) as refused:
                await hs.fetch([query()], Window(date(2026, 7, 1), date(2026, 7, 2)))

    message = refused.value.message
    assert "`crm.objects.deals.read`" in message
    assert "Private apps" in message
    assert TOKEN not in message


async def test_a_missing_scope_fails_only_the_mappings_of_that_object() -> None:
    """https://developers.hubspot.com/docs/api-reference/error-handling: the 403 is per
    endpoint, so contacts still count while deals can't be read."""
    fake = FakeHubSpot(scopes=[READ_SCOPES["contacts"]])
    fake.add("contacts", createdate=at(date(2026, 7, 1)))
    with engine_client.mocked(fake):
        async with connector() as hs:
            result = await hs.fetch(
                [query("deals.count", "d"), query("contacts.count", "c", filters=[])],
                Window(date(2026, 7, 1), date(2026, 7, 2)),
            )

    assert [(v.query_id, v.date, v.value) for v in result.values] == [("c", date(2026, 7, 1), 1.0)]
    assert "crm.objects.deals.read" in result.query_errors["d"]


async def test_a_search_hubspot_refuses_fails_only_its_mappings(fake: FakeHubSpot) -> None:
    """400 ``VALIDATION_ERROR`` (https://developers.hubspot.com/docs/api-reference/error-handling)
    for a filter on a property deals don't have."""
    fake.add("deals", createdate=at(date(2026, 7, 1)), dealstage="closedwon")
    bad = [{"field": "no_such_property", "op": "eq", "value": "x"}]

    async with connector() as hs:
        result = await hs.fetch(
            [query("deals.count", "bad", filters=bad), query("deals.count", "ok")],
            Window(date(2026, 7, 1), date(2026, 7, 1)),
        )

    assert "no_such_property" in result.query_errors["bad"]
    assert [(v.query_id, v.value) for v in result.values] == [("ok", 1.0)]


async def test_a_ten_secondly_429_is_retried_and_the_fetch_succeeds(fake: FakeHubSpot) -> None:
    """429 ``TEN_SECONDLY_ROLLING`` without ``Retry-After``
    (https://developers.hubspot.com/docs/api/usage-details): the client backs off and retries."""
    won_deals(fake, Window(date(2026, 7, 1), date(2026, 7, 2)), 4)
    fake.fail("search", rate_limited(), rate_limited())

    async with connector() as hs:
        result = await hs.fetch(
            [query(date_property="closedate")], Window(date(2026, 7, 1), date(2026, 7, 2))
        )
        stats = hs.http.stats  # type: ignore[attr-defined]

    assert as_dict(result.values) == {date(2026, 7, 1): 4.0, date(2026, 7, 2): 4.0}
    assert stats.rate_limited == 2
    assert stats.retries == 2


async def test_a_429_that_persists_is_rate_limited_for_the_interval(fake: FakeHubSpot) -> None:
    """https://developers.hubspot.com/docs/api/usage-details: the rolling window's length is
    ``X-HubSpot-RateLimit-Interval-Milliseconds``; the engine waits that long and tries again."""
    limited = rate_limited(**{"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
    fake.fail("search", *[limited] * 4)

    async with connector() as hs:
        with pytest.raises(RateLimited) as slow_down:
            await hs.fetch([query()], Window(date(2026, 7, 1), date(2026, 7, 1)))

    assert slow_down.value.retry_after == 10.0
    assert "TEN_SECONDLY_ROLLING" in slow_down.value.message


async def test_the_daily_limit_fails_at_once_and_says_so(fake: FakeHubSpot) -> None:
    """429 ``DAILY`` (https://developers.hubspot.com/docs/api/usage-details): waiting won't help
    today, so it is not a :class:`RateLimited` the engine would wait out."""
    fake.fail("search", *[rate_limited("DAILY")] * 4)

    async with connector() as hs:
        with pytest.raises(RetriableError) as used_up:
            await hs.fetch([query()], Window(date(2026, 7, 1), date(2026, 7, 1)))

    assert not isinstance(used_up.value, RateLimited)
    assert "daily API limit" in used_up.value.message
    assert "midnight" in used_up.value.message


async def test_5xx_is_retried_and_a_lasting_one_is_retriable(fake: FakeHubSpot) -> None:
    """https://developers.hubspot.com/docs/api-reference/error-handling: 5xx are HubSpot's own
    trouble; one is ridden out, four in a row leave it to the next run."""
    fake.add("deals", createdate=at(date(2026, 7, 1)), dealstage="closedwon")
    fake.fail("search", httpx.Response(502, text="Bad Gateway"))
    window = Window(date(2026, 7, 1), date(2026, 7, 1))

    async with connector() as hs:
        assert as_dict((await hs.fetch([query()], window)).values) == {date(2026, 7, 1): 1.0}
        fake.fail("search", *[httpx.Response(503, json={"status": "error"})] * 4)
        with pytest.raises(RetriableError) as down:
            await hs.fetch([query()], window)

    assert not isinstance(down.value, RateLimited)
    assert "503" in down.value.message


async def test_rate_limit_headers_with_nothing_left_hold_the_next_call(
    fake: FakeHubSpot, pacing_clock: engine_client.InstantClock
) -> None:
    """``X-HubSpot-RateLimit-Remaining: 0`` with its interval
    (https://developers.hubspot.com/docs/api/usage-details): the next call waits."""
    waits = pacing_clock.sleeps
    window = Window(date(2026, 7, 1), date(2026, 7, 3))
    won_deals(fake, window, 100)  # 300 deals: two pages
    fake.search_headers = {
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": "0",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "2000",
        "X-HubSpot-RateLimit-Daily": "500000",
        "X-HubSpot-RateLimit-Daily-Remaining": "499120",
    }

    async with connector() as hs:
        result = await hs.fetch([query(date_property="closedate")], window)

    assert len(fake.requests("search")) == 2
    assert len(waits) == 1
    assert 1.5 < waits[0] <= 2.0
    assert result.details["rate_limit"]["daily_remaining"] == 499_120


# --- auth and the account ---------------------------------------------------------------------


async def test_check_reads_the_account_and_its_timezone(fake: FakeHubSpot) -> None:
    """``GET /account-info/v3/details``
    (https://developers.hubspot.com/docs/api/settings/account-information-api)."""
    async with connector() as hs:
        checked = await hs.check()

    assert checked.timezone == "US/Eastern"
    assert "62515" in checked.message
    [request] = fake.requests("account")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_an_oauth_source_refreshes_its_token_first(fake: FakeHubSpot) -> None:
    """``POST /oauth/v1/token`` with ``grant_type=refresh_token``
    (https://developers.hubspot.com/docs/api/oauth/tokens), then the search with that token."""
    fake.add("deals", createdate=at(date(2026, 7, 1)), dealstage="closedwon")
    creds = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_TOKEN}

    async with connector(creds) as hs:
        result = await hs.fetch([query()], Window(date(2026, 7, 1), date(2026, 7, 1)))

    [token] = fake.requests("token")
    form = token.content.decode()
    assert "grant_type=refresh_token" in form
    assert f"client_secret={CLIENT_SECRET}" in form
    assert fake.requests("search")[0].headers["Authorization"] == "Bearer hubspot-access-1-c3d4e5"
    assert as_dict(result.values) == {date(2026, 7, 1): 1.0}


def test_http_options_limit_searches_and_refresh_at_hubspot() -> None:
    """4 searches a second (https://developers.hubspot.com/docs/api/usage-details, about 5 for
    search); the token endpoint under the same root as the API."""
    config = HubSpotConfig()
    private = HubSpotConnector.http_options(config, HubSpotCredentials(access_token=TOKEN))
    assert private.base_url == "https://api.hubapi.com"
    assert private.rate_per_second == 4
    assert private.headers == {"Authorization": f"Bearer {TOKEN}"}
    assert private.oauth is None

    oauth = HubSpotConnector.http_options(
        HubSpotConfig(base_url="https://eu1.example.test/"),
        HubSpotCredentials(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, refresh_token=REFRESH_TOKEN
        ),
    )
    assert oauth.oauth is not None
    assert oauth.oauth.token_endpoint == "https://eu1.example.test/oauth/v1/token"
    assert oauth.oauth.token == {"refresh_token": REFRESH_TOKEN}
    assert oauth.rate_per_second == 4
    assert "Authorization" not in oauth.headers


def test_credentials_take_one_way_in() -> None:
    """A private app's token, or an OAuth app's client and refresh token
    (https://developers.hubspot.com/docs/api/oauth/tokens); half of OAuth is refused."""
    HubSpotCredentials(access_token=TOKEN)
    for partial in ({}, {"client_id": CLIENT_ID, "refresh_token": REFRESH_TOKEN}):
        with pytest.raises(ValueError, match="refresh_token"):
            HubSpotCredentials.model_validate(partial)
