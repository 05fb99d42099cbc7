"""``search_console``: ``searchAnalytics.query`` against a fake Google on 127.0.0.1.

google-auth signs the service account's JWT with a key made at test time and exchanges it at the
key's ``token_uri``; the fake verifies it with the public key. Every call, the token exchange
included, goes over the engine's HTTP client. Each test cites the page it reproduces.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

import pytest
import stamina
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sync_factories import freeze_today

from app.core.http import KrsyncClient, PrivateNetworkError
from app.core.redact import secrets_in
from app.core.settings import get_settings
from connectors.base import (
    ConnectorAuthError,
    DailyValue,
    Filter,
    MappingError,
    MetricQuery,
    RateLimited,
    Window,
)
from connectors.search_console.connector import (
    PACIFIC,
    SearchConsoleConfig,
    SearchConsoleConnector,
)
from factories import cycle, data_source, key_result, mapping, objective
from tests.connectors import engine_client
from tests.connectors.acme import configure_engine
from tests.connectors.google_fake import (
    INTERNAL,
    JWT_BEARER,
    SC_SCOPE,
    SITE_URL,
    UNAUTHENTICATED,
    FakeGoogle,
    SearchRecord,
    google_error,
    service_account,
    year_of_search,
)

WINDOW = Window(date(2026, 7, 1), date(2026, 7, 10))
MOBILE = Filter(field="device", op="eq", value="MOBILE")


@pytest.fixture(autouse=True)
def fast_retries() -> Iterator[None]:
    with stamina.set_testing(True, attempts=4, cap=True):
        yield


@pytest.fixture
def google() -> Iterator[tuple[FakeGoogle, str]]:
    fake = FakeGoogle(search=year_of_search())
    with fake.serving() as served:
        yield served


@asynccontextmanager
async def console(
    base: str,
    credentials: dict[str, Any] | None = None,
    *,
    site_url: str = SITE_URL,
    allow_private: bool = True,
) -> AsyncIterator[tuple[SearchConsoleConnector, KrsyncClient]]:
    async with engine_client.connected(
        SearchConsoleConnector,
        {"site_url": site_url, "base_url": base},
        credentials or {"service_account_info": service_account(f"{base}/token")},
        timezone=PACIFIC,
        source_name="search console test",
        allow_private=allow_private,
    ) as (connector, http):
        assert isinstance(connector, SearchConsoleConnector)
        yield connector, http


def query(
    metric: str,
    *filters: Filter,
    qid: str | None = None,
    search_type: str | None = None,
    aggregation: str | None = None,
) -> MetricQuery:
    params = SearchConsoleConnector.validate_query(
        metric,
        {"search_type": search_type} if search_type else {},
        list(filters),
        aggregation or ("sum" if metric in ("clicks", "impressions") else "avg"),  # type: ignore[arg-type]
    )
    return MetricQuery(qid or metric, metric, params, tuple(filters))


def by_day(values: list[DailyValue], qid: str) -> dict[date, float]:
    return {v.date: v.value for v in values if v.query_id == qid}


def bodies(fake: FakeGoogle) -> list[dict[str, Any]]:
    return [call.body for call in fake.of("searchAnalytics/query")]


@pytest.mark.anyio
async def test_a_query_goes_out_as_documented(google: tuple[FakeGoogle, str]) -> None:
    """``POST /webmasters/v3/sites/{siteUrl}/searchAnalytics/query`` by date, final data.

    The siteUrl is URL-encoded in the path; one ``and`` group holds the filters; rows carry
    clicks, impressions, ctr and position as numbers. Docs:
    https://developers.google.com/webmaster-tools/v1/searchanalytics/query
    https://developers.google.com/identity/protocols/oauth2/service-account#httprest
    """
    fake, base = google
    async with console(base) as (connector, http):
        result = await connector.fetch(
            [
                query("clicks", MOBILE, qid="c"),
                query("impressions", MOBILE, qid="i"),
                query("ctr", MOBILE, qid="r"),
                query("position", MOBILE, qid="p"),
            ],
            WINDOW,
        )

    token, call = fake.calls
    assert token.body["grant_type"] == JWT_BEARER
    assert (
        call.path == "/webmasters/v3/sites/https%3A%2F%2Fwww.example.com%2F/searchAnalytics/query"
    )
    issued = next(iter(fake.issued))
    assert fake.issued[issued] == (SC_SCOPE,)
    assert call.headers["authorization"] == f"Bearer {issued}"
    assert call.body == {
        "startDate": "2026-07-01",
        "endDate": "2026-07-10",
        "dimensions": ["date"],
        "type": "web",
        "aggregationType": "auto",
        "dataState": "final",
        "rowLimit": 25_000,
        "startRow": 0,
        "dimensionFilterGroups": [
            {
                "groupType": "and",
                "filters": [{"dimension": "device", "operator": "equals", "expression": "MOBILE"}],
            }
        ],
    }
    # Four mappings of one filter set: one request (every row carries the four metrics).
    assert http.stats.requests == 2
    assert by_day(result.values, "c") == {d: float(d.day) for d in WINDOW.days()}
    assert by_day(result.values, "i") == {d: 10.0 * d.day for d in WINDOW.days()}
    assert set(by_day(result.values, "r").values()) == {0.1}
    assert set(by_day(result.values, "p").values()) == {3.0}
    assert result.details["aggregation"] == ["byProperty"]


@pytest.mark.anyio
async def test_pages_follow_start_row_until_a_short_page(
    google: tuple[FakeGoogle, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows come sorted by clicks, not by date: page with ``startRow`` until a short page.

    Docs ("Results are sorted by click count descending"; paging with ``startRow``):
    https://developers.google.com/webmaster-tools/v1/searchanalytics/query
    https://developers.google.com/webmaster-tools/v1/how-tos/all-your-data
    """
    monkeypatch.setattr(SearchConsoleConnector, "row_limit", 3)
    fake, base = google
    async with console(base) as (connector, _):
        ten = await connector.fetch([query("clicks", MOBILE, qid="ten")], WINDOW)
    assert [b["startRow"] for b in bodies(fake)] == [0, 3, 6, 9]  # 3, 3, 3, then 1: done
    assert by_day(ten.values, "ten") == {d: float(d.day) for d in WINDOW.days()}

    fake.calls.clear()
    nine = Window(date(2026, 7, 1), date(2026, 7, 9))
    async with console(base) as (connector, _):
        full = await connector.fetch([query("clicks", MOBILE, qid="nine")], nine)
    assert [b["startRow"] for b in bodies(fake)] == [0, 3, 6, 9]  # the last page is empty
    assert len(by_day(full.values, "nine")) == 9


@pytest.mark.anyio
async def test_filter_sets_and_search_types_are_separate_requests(
    google: tuple[FakeGoogle, str],
) -> None:
    """One request per (filters, type); ``in``/``not_in`` are anchored RE2 alternations.

    Docs (``dimensionFilterGroups``, operators ``equals``, ``notEquals``, ``contains``,
    ``includingRegex``, ``excludingRegex``; ``type``):
    https://developers.google.com/webmaster-tools/v1/searchanalytics/query
    """
    fake, base = google
    fake.search = [
        SearchRecord(
            WINDOW.start, {"query": q, "page": p, "country": c, "device": "MOBILE"}, n, 10 * n, 2.0
        )
        for q, p, c, n in (
            ("krsync pricing", "https://www.example.com/pricing?plan=pro", "fra", 1),
            ("krsync docs", "https://www.example.com/docs", "fra", 2),
            ("krsync", "https://www.example.com/", "usa", 4),
            ("okr tool", "https://www.example.com/pricing?plan=pro", "deu", 8),
        )
    ]  # fmt: skip
    pages = Filter(
        field="page",
        op="in",
        value=["https://www.example.com/pricing?plan=pro", "https://www.example.com/docs"],
    )
    branded = Filter(field="query", op="contains", value="krsync")
    not_germany = Filter(field="country", op="not_in", value=["DEU"])
    async with console(base) as (connector, _):
        result = await connector.fetch(
            [
                query("clicks", pages, branded, qid="a"),
                query("impressions", branded, pages, qid="b"),  # the same set
                query("clicks", not_germany, qid="c"),
                query("clicks", not_germany, qid="d", search_type="image"),
            ],
            WINDOW,
        )

    first, second, third = bodies(fake)
    assert first["dimensionFilterGroups"][0]["filters"] == [
        {
            "dimension": "page",
            "operator": "includingRegex",
            "expression": r"^(https://www\.example\.com/pricing\?plan=pro|https://www\.example\.com/docs)$",
        },
        {"dimension": "query", "operator": "contains", "expression": "krsync"},
    ]
    assert second["dimensionFilterGroups"][0]["filters"] == [
        {"dimension": "country", "operator": "excludingRegex", "expression": "^(deu)$"}
    ]
    assert (second["type"], third["type"]) == ("web", "image")
    assert by_day(result.values, "a") == {WINDOW.start: 3.0}
    assert by_day(result.values, "b") == {WINDOW.start: 30.0}
    assert by_day(result.values, "c") == {WINDOW.start: 7.0}


def test_mappings_are_checked_against_the_catalogue() -> None:
    """Filters on query, page, country, device, searchAppearance; ctr and position not summed.

    Docs (dimensions and their values: ISO 3166-1 alpha-3 countries; DESKTOP, MOBILE, TABLET):
    https://developers.google.com/webmaster-tools/v1/searchanalytics/query
    """
    with pytest.raises(MappingError) as device:
        SearchConsoleConnector.validate_query(
            "clicks", {}, [{"field": "device", "op": "eq", "value": "phone"}], "sum"
        )
    assert device.value.part == "filters[0].value"
    with pytest.raises(MappingError) as country:
        SearchConsoleConnector.validate_query(
            "clicks", {}, [{"field": "country", "op": "eq", "value": "FR"}], "sum"
        )
    assert "alpha-3" in country.value.message
    with pytest.raises(MappingError) as op:
        SearchConsoleConnector.validate_query(
            "clicks", {}, [{"field": "query", "op": "gt", "value": "a"}], "sum"
        )
    assert op.value.part == "filters[0].op"
    with pytest.raises(MappingError) as field:
        SearchConsoleConnector.validate_query(
            "clicks", {}, [{"field": "channel", "op": "eq", "value": "a"}], "sum"
        )
    assert "searchAppearance" in field.value.message
    for rate in ("ctr", "position"):
        with pytest.raises(MappingError) as summed:
            SearchConsoleConnector.validate_query(rate, {}, [], "sum")
        assert summed.value.part == "aggregation"
        SearchConsoleConnector.validate_query(rate, {}, [], "avg")
    with pytest.raises(MappingError) as search_type:
        SearchConsoleConnector.validate_query("clicks", {"search_type": "maps"}, [], "sum")
    assert search_type.value.part == "params.search_type"
    SearchConsoleConnector.validate_query(
        "clicks",
        {"search_type": "discover"},
        [{"field": "searchAppearance", "op": "eq", "value": "AMP_BLUE_LINK"}],
        "sum",
    )
    assert SearchConsoleConnector.recommended_lookback_days == 4


def test_site_url_is_a_url_prefix_or_a_domain_property() -> None:
    """``https://www.example.com/`` or ``sc-domain:example.com``, as Search Console names them.

    Docs: https://developers.google.com/webmaster-tools/v1/sites/get (``siteUrl``).
    """
    assert SearchConsoleConfig(site_url="https://www.example.com").site_url == SITE_URL
    assert SearchConsoleConfig(site_url="sc-domain:example.com").site_url == "sc-domain:example.com"
    with pytest.raises(ValidationError):
        SearchConsoleConfig(site_url="example.com")


@pytest.mark.anyio
async def test_check_reads_the_site_and_says_days_are_pacific(
    google: tuple[FakeGoogle, str],
) -> None:
    """``sites.get`` proves access; Search Console counts days in Pacific Time.

    Docs (``permissionLevel``; "dates ... in PT"):
    https://developers.google.com/webmaster-tools/v1/sites/get
    https://developers.google.com/webmaster-tools/v1/searchanalytics/query
    """
    fake, base = google
    async with console(base) as (connector, _):
        checked = await connector.check()
    assert checked.timezone == "America/Los_Angeles"
    assert checked.details["permission_level"] == "siteFullUser"
    [call] = fake.of("sites.get")
    assert call.method == "GET"
    assert call.path == "/webmasters/v3/sites/https%3A%2F%2Fwww.example.com%2F"


@pytest.mark.anyio
async def test_a_site_without_access_is_an_auth_error(google: tuple[FakeGoogle, str]) -> None:
    """403 "User does not have sufficient permission for site": add the account as a user.

    Docs: https://developers.google.com/webmaster-tools/v1/sites/get and
    https://support.google.com/webmasters/answer/2451999 (users and permissions).
    """
    _, base = google
    raw = {"service_account_info": service_account(f"{base}/token")}
    async with console(base, raw, site_url="sc-domain:other.example") as (connector, _):
        with pytest.raises(ConnectorAuthError) as checked:
            await connector.check()
        with pytest.raises(ConnectorAuthError) as fetched:
            await connector.fetch([query("clicks")], WINDOW)
    for error in (checked.value, fetched.value):
        assert "sc-domain:other.example" in error.message
        assert "Users and permissions" in error.message
        for secret in secrets_in(raw):
            assert secret not in error.message


@pytest.mark.parametrize("unverified", ["SITE_UNVERIFIED_USER", "siteUnverifiedUser"])
def test_an_unverified_user_fails_the_test_in_either_spelling(
    client: TestClient, db_url: str, monkeypatch: pytest.MonkeyPatch, unverified: str
) -> None:
    """``sites.get`` answers 200 to an account that may not read the property's data, with a
    ``permissionLevel`` saying so: SITE_UNVERIFIED_USER in the Search Console API v1 definition
    ("Unverified user has no access to site's data": WmxSite in the searchconsole.v1 discovery
    document, googleapis/google-api-python-client), siteUnverifiedUser in the Webmasters v3
    reference (https://developers.google.com/webmaster-tools/v1/sites). Either one fails the
    source's test with what to fix; a verified level passes it.
    """
    configure_engine(monkeypatch, allow_private=True)  # the fake listens on 127.0.0.1
    fake = FakeGoogle(permission_level=unverified)
    with fake.serving() as (_, base):
        source = data_source(
            client,
            name="Search Console",
            connector="search_console",
            config={"site_url": SITE_URL, "base_url": base},
            credentials={"service_account_info": service_account(f"{base}/token")},
            lookback_days=4,
        )
        tested = client.post(f"/api/v1/data-sources/{source['id']}/test").json()
        fake.permission_level = "SITE_FULL_USER"
        verified = client.post(f"/api/v1/data-sources/{source['id']}/test").json()
    get_settings.cache_clear()

    assert tested["ok"] is False, tested
    assert "not a verified user" in tested["message"]
    assert "Users and permissions" in tested["message"]
    assert verified["ok"] is True, verified


@pytest.mark.anyio
async def test_a_401_gets_one_fresh_token(google: tuple[FakeGoogle, str]) -> None:
    """A refused token is replaced once by google-auth; refused again, it is an auth error.

    Docs: https://developers.google.com/identity/protocols/oauth2/service-account#httprest and
    https://cloud.google.com/apis/design/errors#handling_errors (401 UNAUTHENTICATED).
    """
    fake, base = google
    fake.fail("searchAnalytics/query", 401, UNAUTHENTICATED)
    async with console(base) as (connector, _):
        result = await connector.fetch([query("clicks", MOBILE, qid="q")], WINDOW)
    assert by_day(result.values, "q")
    assert len(fake.of("token")) == 2

    fake.fail("searchAnalytics/query", 401, UNAUTHENTICATED, times=2)
    async with console(base) as (connector, _):
        with pytest.raises(ConnectorAuthError) as refused:
            await connector.fetch([query("clicks", MOBILE)], WINDOW)
    assert "credentials" in refused.value.message


@pytest.mark.anyio
async def test_a_429_the_client_cant_wait_out_is_rate_limited(
    google: tuple[FakeGoogle, str],
) -> None:
    """Over quota with a long ``Retry-After``: ``RateLimited`` carries it to the engine.

    Docs: https://developers.google.com/webmaster-tools/limits (QPS and load quotas) and
    https://cloud.google.com/apis/design/errors#handling_errors (429 RESOURCE_EXHAUSTED).
    """
    fake, base = google
    body = google_error(429, "RESOURCE_EXHAUSTED", "Search Analytics load quota exceeded.")
    fake.fail("searchAnalytics/query", 429, body, headers={"Retry-After": "120"})
    async with console(base) as (connector, _):
        with pytest.raises(RateLimited) as limited:
            await connector.fetch([query("clicks", MOBILE)], WINDOW)
    assert limited.value.retry_after == 120.0
    assert "load quota" in limited.value.message


@pytest.mark.anyio
async def test_a_500_then_success_is_retried(google: tuple[FakeGoogle, str]) -> None:
    """The engine's client retries a 500, then the rows arrive.

    Docs: https://cloud.google.com/apis/design/errors#handling_errors (500 INTERNAL: retry) and
    https://developers.google.com/webmaster-tools/v1/searchanalytics/query.
    """
    fake, base = google
    fake.fail("searchAnalytics/query", 500, INTERNAL)
    async with console(base) as (connector, http):
        result = await connector.fetch([query("clicks", MOBILE, qid="q")], WINDOW)
    assert len(by_day(result.values, "q")) == 10
    assert http.stats.retries == 1


@pytest.mark.anyio
async def test_a_refused_filter_set_fails_its_mappings_only(google: tuple[FakeGoogle, str]) -> None:
    """A 400 for one request fails the mappings of that filter set; the others go on.

    Docs: https://developers.google.com/webmaster-tools/v1/searchanalytics/query and
    https://developers.google.com/webmaster-tools/v1/errors (400 invalidParameter).
    """
    fake, base = google
    fake.fail(
        "searchAnalytics/query",
        400,
        {
            "error": {
                "code": 400,
                "message": "Invalid regular expression",
                "errors": [{"reason": "invalidParameter"}],
            }
        },
    )
    async with console(base) as (connector, _):
        result = await connector.fetch(
            [
                query("clicks", Filter(field="query", op="in", value=["a", "b"]), qid="bad"),
                query("clicks", MOBILE, qid="good"),
            ],
            WINDOW,
        )
    assert set(result.query_errors) == {"bad"}
    assert "Invalid regular expression" in result.query_errors["bad"]
    assert len(by_day(result.values, "good")) == 10


@pytest.mark.anyio
async def test_an_oauth_client_and_a_bad_key(google: tuple[FakeGoogle, str]) -> None:
    """OAuth refresh at ``token_uri`` works; a key Google doesn't know is an auth error.

    Docs: https://developers.google.com/identity/protocols/oauth2/web-server#offline and
    https://developers.google.com/identity/protocols/oauth2/service-account#error-codes
    """
    fake, base = google
    fake.oauth_clients = {("cid", "csecret", "1//refresh"): (SC_SCOPE,)}
    oauth = {
        "client_id": "cid",
        "client_secret": "csecret",
        "refresh_token": "1//refresh",
        "token_uri": f"{base}/token",
    }
    async with console(base, oauth) as (connector, _):
        result = await connector.fetch([query("clicks", MOBILE, qid="q")], WINDOW)
    assert len(by_day(result.values, "q")) == 10

    bad = {"service_account_info": service_account(f"{base}/token", key_name="deleted")}
    async with console(base, bad) as (connector, _):
        with pytest.raises(ConnectorAuthError) as refused:
            await connector.check()
    assert "create a new JSON key" in refused.value.message
    for secret in secrets_in(bad):
        assert secret not in refused.value.message


@pytest.mark.anyio
async def test_private_addresses_need_the_setting(google: tuple[FakeGoogle, str]) -> None:
    """The token call and the API call both pass the engine's private-network guard (SPEC 5).

    Both addresses come from the source: the key's ``token_uri``, where the signed JWT is
    exchanged, and the ``searchAnalytics.query`` path under ``base_url``. Docs:
    https://developers.google.com/identity/protocols/oauth2/service-account#httprest
    https://developers.google.com/webmaster-tools/v1/searchanalytics/query
    """
    fake, base = google
    async with console(base, allow_private=False) as (connector, _):
        with pytest.raises(PrivateNetworkError):
            await connector.fetch([query("clicks", MOBILE)], WINDOW)
    assert fake.calls == []


@pytest.mark.anyio
async def test_no_rows_is_no_values(google: tuple[FakeGoogle, str]) -> None:
    """Days without data are omitted; a window without any gives nothing, and no error.

    Docs ("When date is one of the dimensions, any days without data are omitted"):
    https://developers.google.com/webmaster-tools/v1/searchanalytics/query
    """
    fake, base = google
    fake.search = []
    async with console(base) as (connector, _):
        result = await connector.fetch([query("clicks", MOBILE)], WINDOW)
    assert result.values == []
    assert not result.query_errors
    assert len(bodies(fake)) == 1


# --- end to end: an "average position" key result over the API ---------------------------------

FRANCE = {"field": "country", "op": "eq", "value": "fra"}


@pytest.fixture
def positions(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeGoogle, str]]:
    """The engine on 1 August 2026, a fake Google with a month of positions in France.

    Each July day in France: 100 mobile impressions and 300 desktop ones, so the day's position
    (Search Console averages it over impressions) is (100 x mobile + 300 x desktop) / 400:
    1-20 July mobile 14, desktop 10 -> 11; 21-31 July mobile 10, desktop 6 -> 7.
    The USA ranks 2 all along with more impressions than France (a missing filter would pull
    the average under 8), and June and August rank 50 (a wrong window would pick them up).
    """
    configure_engine(monkeypatch, allow_private=True)  # the fake listens on 127.0.0.1
    freeze_today(monkeypatch, date(2026, 8, 1))
    records: list[SearchRecord] = []
    for offset in range(92):
        day = date(2026, 6, 1) + timedelta(days=offset)
        mobile, desktop = (14.0, 10.0) if day.day <= 20 else (10.0, 6.0)
        if day.month != 7:
            mobile = desktop = 50.0
        for device, impressions, position in (("MOBILE", 100, mobile), ("DESKTOP", 300, desktop)):
            dims = {"query": "krsync", "page": SITE_URL, "country": "fra", "device": device}
            records.append(SearchRecord(day, dims, impressions // 10, impressions, position))
        usa = {"query": "krsync", "page": SITE_URL, "country": "usa", "device": "DESKTOP"}
        records.append(SearchRecord(day, usa, 500, 5000, 2.0))
    fake = FakeGoogle(search=records)
    with fake.serving() as served:
        yield served
    get_settings.cache_clear()


def test_an_average_position_key_result_synced_from_search_console(
    client: TestClient, positions: tuple[FakeGoogle, str]
) -> None:
    """ "Average position in France at most 8": `at_most`, `avg`, read over the API.

    Cycle 2026-Q3 (1 July - 30 September, 92 days), read as of 31 July (31 days elapsed):
    current = (20 x 11 + 11 x 7) / 31 = 297 / 31 = 9.5806 (the mean of the days' positions);
    `at_most` progress = max(0, 1 - (current - 8) / 8) = (16 - 297/31) / 8 = 199/248 = 0.8024;
    score 0.8. The threshold doesn't hold now, but the least-squares line through the days
    (x = 0..30, mean 15; Sxy = 11 x -110 + 7 x 110 = -440, Sxx = 2480, slope -11/62) reads
    297/31 - 76 x 11/62 = -121/31 on day 91, which meets "at most 8": on_track (SPEC section
    2, Status).
    Docs (``position``: "Average position", one value a row, rows by ``date``):
    https://developers.google.com/webmaster-tools/v1/searchanalytics/query
    """
    fake, base = positions
    catalogue = client.get("/api/v1/connectors", params={"limit": 100}).json()["items"]
    [console] = [c for c in catalogue if c["key"] == "search_console"]
    metrics = {m["name"]: m for m in console["metrics"]}
    assert metrics["position"]["lower_is_better"] is True
    assert metrics["clicks"]["lower_is_better"] is False

    source = data_source(
        client,
        name="Search Console",
        connector="search_console",
        config={"site_url": SITE_URL, "base_url": base},
        credentials={"service_account_info": service_account(f"{base}/token")},
        lookback_days=4,
    )
    tested = client.post(f"/api/v1/data-sources/{source['id']}/test").json()
    assert tested["ok"] is True, tested
    assert client.get(f"/api/v1/data-sources/{source['id']}").json()["timezone"] == PACIFIC

    c = cycle(client)
    o = objective(client, c["id"], title="Be found in France")
    kr = key_result(
        client,
        o["id"],
        title="Average position in France at most 8",
        unit="position",
        direction="at_most",
        target_value=8,
        aggregation="avg",
    )
    mapping(client, kr["id"], source["id"], "position", filters=[FRANCE])  # backfills

    [run] = client.get("/api/v1/sync-runs", params={"data_source_id": source["id"]}).json()["items"]
    assert run["status"] == "succeeded", run["error"]
    assert (run["window_from"], run["window_to"]) == ("2026-07-01", "2026-07-31")
    [body] = bodies(fake)
    assert body["dimensionFilterGroups"][0]["filters"] == [
        {"dimension": "country", "operator": "equals", "expression": "fra"}
    ]

    read = client.get(f"/api/v1/key-results/{kr['id']}", params={"as_of": "2026-07-31"})
    progress: dict[str, Any] = read.json()["progress"]
    assert progress["current_value"] == pytest.approx(297 / 31)
    assert progress["target_value"] == 8.0
    assert progress["progress"] == pytest.approx(199 / 248)
    assert progress["expected_progress"] == pytest.approx(31 / 92)
    assert progress["score"] == 0.8
    assert progress["forecast_value"] == pytest.approx(-121 / 31)
    assert progress["status"] == "on_track"
    assert progress["last_observation_date"] == "2026-07-31"
