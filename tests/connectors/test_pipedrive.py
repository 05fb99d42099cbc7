"""The ``pipedrive`` connector against a faked company (tests/connectors/kit_pipedrive.py).

Every request and answer is built from Pipedrive's documented shapes; each test names the page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import sync_factories
from fastapi.testclient import TestClient
from sync_factories import freeze_today, make_kr, make_mapping, make_source, observations, runs

from app.core import http as http_module
from app.core.db import session_scope
from app.core.http import KrsyncClient
from app.core.vault import decrypt_credentials, encrypt_credentials
from app.models import DataSource
from connectors.base import (
    ConnectorAuthError,
    MappingError,
    MetricQuery,
    RateLimited,
    Window,
)
from connectors.pipedrive.connector import MAX_DAYS, PipedriveConnector
from factories import cycle, data_source, key_result, objective
from tests.connectors import (
    engine_client,
    kits,  # first: it loads every kit, this one included
)
from tests.connectors.acme import PUBLIC_IP
from tests.connectors.kit_pipedrive import (
    API_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    FakePipedrive,
    pd_error,
)

WINDOW = Window(date(2026, 7, 1), date(2026, 7, 10))
CONFIG = kits.KITS["pipedrive"].config
TIMELINE_DOC = "https://developers.pipedrive.com/docs/api/v1/Deals#getDealsTimeline"


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with engine_client.engine_env(monkeypatch, attempts=100, cap=True):
        resolve = http_module.resolve_host  # *.test hosts resolve to a public address

        async def with_oauth_host(host: str, port: int) -> list[str]:
            # Pipedrive's token endpoint is a fixed public host; respx answers for it.
            return [PUBLIC_IP] if host == "oauth.pipedrive.com" else await resolve(host, port)

        monkeypatch.setattr(http_module, "resolve_host", with_oauth_host)
        yield


@pytest.fixture
def fake() -> Iterator[FakePipedrive]:
    with engine_client.mocked(FakePipedrive()) as company:
        yield company


@asynccontextmanager
async def connected(
    credentials: dict[str, Any] | None = None,
) -> AsyncIterator[tuple[PipedriveConnector, KrsyncClient]]:
    """The connector on a client built as the engine builds it, unthrottled."""
    async with engine_client.connected(
        PipedriveConnector, CONFIG, credentials or {"api_token": API_TOKEN}, rate_per_second=None
    ) as (connector, http):
        assert isinstance(connector, PipedriveConnector)
        yield connector, http


def query(metric: str, qid: str = "1", **params: Any) -> MetricQuery:
    validated = PipedriveConnector.validate_query(metric, params, [], "sum")
    return MetricQuery(qid, metric, validated)


# --- the timeline --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_one_timeline_call_gives_counts_and_converted_values(fake: FakePipedrive) -> None:
    """`interval=day`, `amount` days, totals only, values converted into the company currency.

    https://developers.pipedrive.com/docs/api/v1/Deals#getDealsTimeline
    """
    queries = [
        query("deals.count", "all", pipeline_id=3),
        query("deals.count", "won", pipeline_id=3, status="won"),
        query("deals.value", "value", pipeline_id=3),
        query("deals.value", "open_value", pipeline_id=3, status="open"),
    ]
    async with connected() as (connector, http):
        result = await connector.fetch(queries, WINDOW)

    [call] = fake.calls("timeline")
    assert dict(call.url.params) == {
        "start_date": "2026-07-01",
        "interval": "day",
        "amount": "10",
        "field_key": "add_time",
        "exclude_deals": "1",
        "totals_convert_currency": "default_currency",
        "pipeline_id": "3",
    }
    assert call.headers["x-api-token"] == API_TOKEN
    assert "api_token" not in call.url.params  # the header, never the query string
    assert http.stats.requests == 1
    days = list(WINDOW.days())
    assert engine_client.by_query(result.values) == {
        "all": {d: float(d.day) for d in days},
        "won": dict.fromkeys(days, 1.0),
        "value": {d: d.day * 100.0 for d in days},
        # day 1 has no open deal: nothing recorded for it
        "open_value": {d: (d.day - 1) * 100.0 for d in days if d.day > 1},
    }
    assert all(type(v.value) is float for v in result.values)
    assert result.details["currency"] == "EUR"
    assert result.details["ratelimit"] == {"limit": 20, "remaining": 19}


@pytest.mark.anyio
async def test_each_date_field_filter_and_pipeline_is_its_own_call(fake: FakePipedrive) -> None:
    """`field_key`, `filter_id` and `pipeline_id` narrow the timeline: one call for each set.

    https://developers.pipedrive.com/docs/api/v1/Deals#getDealsTimeline
    """
    async with connected() as (connector, _):
        await connector.fetch(
            [
                query("deals.count", "a", date_field="won_time", filter_id=12),
                query("deals.value", "b", date_field="won_time", filter_id=12),
                query("deals.count", "c", date_field="close_time"),
            ],
            WINDOW,
        )
    calls = [dict(c.url.params) for c in fake.calls("timeline")]
    assert [(c["field_key"], c.get("filter_id")) for c in calls] == [
        ("won_time", "12"),
        ("close_time", None),
    ]


@pytest.mark.anyio
async def test_a_long_window_is_split_into_calls_of_a_quarter(fake: FakePipedrive) -> None:
    """`amount` days from `start_date` per call; a window longer than MAX_DAYS takes several.

    https://developers.pipedrive.com/docs/api/v1/Deals#getDealsTimeline
    """
    window = Window(date(2026, 1, 1), date(2026, 7, 19))  # 200 days
    async with connected() as (connector, _):
        result = await connector.fetch([query("deals.count")], window)

    calls = [dict(c.url.params) for c in fake.calls("timeline")]
    assert [(c["start_date"], c["amount"]) for c in calls] == [
        ("2026-01-01", str(MAX_DAYS)),
        ((date(2026, 1, 1) + timedelta(days=MAX_DAYS)).isoformat(), str(MAX_DAYS)),
        ((date(2026, 1, 1) + timedelta(days=2 * MAX_DAYS)).isoformat(), "16"),
    ]
    assert {v.date for v in result.values} == set(window.days())
    assert PipedriveConnector.max_window_days == MAX_DAYS  # the engine splits the same way


@pytest.mark.anyio
async def test_empty_days_record_nothing(fake: FakePipedrive) -> None:
    """A day without deals has `count: 0` and `values: []` (PHP's empty array).

    https://developers.pipedrive.com/docs/api/v1/Deals#getDealsTimeline
    """
    fake.period = None
    async with connected() as (connector, _):
        result = await connector.fetch(
            [query("deals.count", "n"), query("deals.value", "v")], WINDOW
        )
    assert len(fake.calls("timeline")) == 1
    assert result.values == []
    assert not result.query_errors
    assert not result.warnings


@pytest.mark.anyio
async def test_string_numbers_and_one_currency_without_conversion(fake: FakePipedrive) -> None:
    """Totals as sent, numbers possibly strings; without `totals_converted`, one currency is read
    as it is and several are an error for that query.

    https://developers.pipedrive.com/docs/api/v1/Deals#getDealsTimeline
    """

    def period(_field: str, day: date, _params: dict[str, str]) -> dict[str, Any] | None:
        if day.day == 1:
            return {"totals": {"count": "3", "values": {"USD": "1234.50"}}}
        if day.day == 2:
            return {"totals": {"count": 2, "values": {"USD": 10, "EUR": 20}}}
        return None

    fake.period = period
    async with connected() as (connector, _):
        result = await connector.fetch(
            [query("deals.count", "n"), query("deals.value", "v")], WINDOW
        )
    assert engine_client.by_query(result.values) == {
        "n": {date(2026, 7, 1): 3.0, date(2026, 7, 2): 2.0},
        "v": {date(2026, 7, 1): 1234.5},
    }
    assert "several currencies" in result.query_errors["v"]
    assert "n" not in result.query_errors


def test_filters_are_refused_with_a_pointer_to_filter_id() -> None:
    """The timeline takes `filter_id` / `pipeline_id` / `user_id`, never field conditions.

    https://developers.pipedrive.com/docs/api/v1/Deals#getDealsTimeline
    """
    with pytest.raises(MappingError) as refused:
        PipedriveConnector.validate_query(
            "deals.count", {}, [{"field": "stage_id", "op": "eq", "value": 2}], "sum"
        )
    assert refused.value.part == "filters[0].field"
    assert "filter_id" in refused.value.message
    assert PipedriveConnector.metric_spec("deals.count").filters == {}  # type: ignore[union-attr]
    for params, part in (
        ({"date_field": "update_time"}, "params.date_field"),
        ({"status": "lost"}, "params.status"),
        ({"filter_id": 0}, "params.filter_id"),
    ):
        with pytest.raises(MappingError) as bad:
            PipedriveConnector.validate_query("deals.value", params, [], "sum")
        assert bad.value.part == part


def test_a_filtered_mapping_is_a_422_through_the_api(client: TestClient) -> None:
    """POST /api/v1/mappings with a filter on a Pipedrive metric is refused, naming the filter.

    https://developers.pipedrive.com/docs/api/v1/Deals#getDealsTimeline
    """
    kr = key_result(client, objective(client, cycle(client)["id"])["id"])["id"]
    src = data_source(
        client,
        name="pipedrive",
        connector="pipedrive",
        config=CONFIG,
        credentials={"api_token": API_TOKEN},
    )["id"]
    body = {
        "key_result_id": kr,
        "data_source_id": src,
        "metric": "deals.count",
        "filters": [{"field": "stage_id", "op": "eq", "value": 2}],
    }
    response = client.post("/api/v1/mappings", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "filters[0].field"
    assert "filter_id" in response.json()["detail"]
    ok = client.post("/api/v1/mappings", json=body | {"filters": [], "params": {"filter_id": 7}})
    assert ok.status_code == 201, ok.text


# --- limits and failures -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_spent_burst_window_is_waited_out_before_the_next_call(
    fake: FakePipedrive, pacing_clock: engine_client.InstantClock
) -> None:
    """`x-ratelimit-remaining: 0` -> wait `x-ratelimit-reset` seconds before calling again.

    https://pipedrive.readme.io/docs/core-api-concepts-rate-limiting
    """
    pauses = pacing_clock.sleeps
    fake.burst = fake.remaining = 2
    async with connected() as (connector, _):
        result = await connector.fetch(
            [
                query("deals.count", "a", date_field="add_time"),
                query("deals.count", "b", date_field="won_time"),
                query("deals.count", "c", date_field="close_time"),
            ],
            WINDOW,
        )
    assert len(fake.calls("timeline")) == 3
    assert pauses == [2.0]  # after the second call left 0 of 2
    assert set(engine_client.by_query(result.values)) == {"a", "b", "c"}


@pytest.mark.anyio
async def test_429_and_5xx_are_ridden_out(fake: FakePipedrive) -> None:
    """A 429 burst refusal and a 502 are retried by the engine's client.

    https://pipedrive.readme.io/docs/core-api-concepts-rate-limiting
    """
    fake.fail(
        "timeline",
        pd_error(429, "Request over limit", **{"x-ratelimit-remaining": "0"}),
        pd_error(502, "Bad Gateway"),
    )
    async with connected() as (connector, http):
        result = await connector.fetch([query("deals.count")], WINDOW)
    assert {v.date for v in result.values} == set(WINDOW.days())
    assert http.stats.retries == 2
    assert http.stats.rate_limited == 1


@pytest.mark.anyio
async def test_a_429_that_persists_is_rate_limited_for_the_reset_time(fake: FakePipedrive) -> None:
    """Without `Retry-After`, `x-ratelimit-reset` says how long the burst window lasts.

    https://pipedrive.readme.io/docs/core-api-concepts-rate-limiting
    """
    over = pd_error(429, "Request over limit", **{"x-ratelimit-reset": "7"})
    fake.fail("timeline", *[over] * 4)
    async with connected() as (connector, _):
        with pytest.raises(RateLimited) as limited:
            await connector.fetch([query("deals.count")], WINDOW)
    assert limited.value.retry_after == 7.0


@pytest.mark.anyio
async def test_a_bad_token_says_which_credential_to_fix(fake: FakePipedrive) -> None:
    """401 `unauthorized access` for an unknown or regenerated API token.

    https://pipedrive.readme.io/docs/core-api-concepts-authentication
    """
    fake.api_tokens.clear()
    async with connected() as (connector, _):
        with pytest.raises(ConnectorAuthError) as refused:
            await connector.check()
    assert "`api_token`" in refused.value.message
    assert API_TOKEN not in refused.value.message


@pytest.mark.anyio
async def test_a_permission_error_names_the_permission(fake: FakePipedrive) -> None:
    """403 when the user (or the OAuth app's scopes) can't see deals.

    https://pipedrive.readme.io/docs/marketplace-scopes-and-permissions-explanations
    """
    fake.fail("timeline", pd_error(403, "You do not have permissions to access deals"))
    async with connected() as (connector, _):
        with pytest.raises(ConnectorAuthError) as refused:
            await connector.fetch([query("deals.count")], WINDOW)
    assert "deals:read" in refused.value.message
    assert "permission" in refused.value.message


@pytest.mark.anyio
async def test_an_unknown_filter_fails_only_its_queries(fake: FakePipedrive) -> None:
    """A 400 for one timeline request (a deleted filter) fails that group alone.

    https://developers.pipedrive.com/docs/api/v1/Deals#getDealsTimeline
    """
    fake.fail("timeline", pd_error(400, "Filter not found"))
    async with connected() as (connector, _):
        result = await connector.fetch(
            [query("deals.count", "gone", filter_id=99), query("deals.count", "ok")], WINDOW
        )
    assert "Filter not found" in result.query_errors["gone"]
    assert "`filter_id`" in result.query_errors["gone"]
    assert set(engine_client.by_query(result.values)) == {"ok"}
    assert result.complete == {"ok"}  # a refused call answered nothing: it clears nothing


# --- check and OAuth -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_check_reports_company_currency_and_time_zone(fake: FakePipedrive) -> None:
    """GET /v1/users/me: company, `default_currency`, `timezone_name`.

    https://pipedrive.readme.io/docs/marketplace-getting-user-data
    """
    async with connected() as (connector, _):
        result = await connector.check()
    assert result.timezone == "Europe/Tallinn"
    assert "Krsync Sandbox" in result.message
    assert "EUR" in result.message
    assert result.notices == []


def test_oauth_tokens_are_refreshed_and_stored_encrypted(
    fake: FakePipedrive, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An expired access token is refreshed (HTTP Basic client auth) and the pair stored.

    https://pipedrive.readme.io/docs/marketplace-oauth-authorization
    """
    freeze_today(monkeypatch, date(2026, 7, 11))
    fake.refresh_tokens = {"pd-refresh-0"}
    credentials = {
        "access_token": "pd-access-expired",
        "refresh_token": "pd-refresh-0",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "expires_at": 1_000_000_000,
    }
    src = make_source(
        name="pipedrive",
        connector="pipedrive",
        config=CONFIG,
        credentials_encrypted=encrypt_credentials(credentials),
    )
    kr = make_kr()
    make_mapping(kr, src, "deals.count")
    sync_factories.sync_source(src, trigger="cli")

    [run] = runs(src)
    assert run.status == "succeeded", run.error
    assert observations(kr)
    [refresh] = fake.calls("token")
    assert b"refresh_token=pd-refresh-0" in refresh.content
    assert refresh.headers["Authorization"].startswith("Basic ")
    assert all(c.headers["Authorization"] == "Bearer pd-access-1" for c in fake.calls("timeline"))
    with session_scope() as s:
        encrypted = s.get(DataSource, src).credentials_encrypted  # type: ignore[union-attr]
    assert encrypted is not None
    assert "pd-refresh-1" not in encrypted
    stored = decrypt_credentials(encrypted)
    assert stored["access_token"] == "pd-access-1"
    assert stored["refresh_token"] == "pd-refresh-1"  # Pipedrive rotates it on every refresh
    assert stored["expires_at"] > 1_000_000_000
    assert stored["client_secret"] == CLIENT_SECRET
    assert run.details["platform"]["ratelimit"]["limit"] == 20


@pytest.mark.anyio
@pytest.mark.parametrize(
    "answer",
    [
        None,  # the fake's RFC 6749 400 invalid_grant
        httpx.Response(401, json={"success": False, "message": "Invalid grant"}),
    ],
)
async def test_a_refused_refresh_is_an_auth_error(
    fake: FakePipedrive, answer: httpx.Response | None
) -> None:
    """The token endpoint refuses a revoked refresh token, in OAuth's shape or not.

    https://pipedrive.readme.io/docs/marketplace-oauth-authorization
    """
    fake.fail("token", answer)
    credentials = {
        "refresh_token": "pd-refresh-revoked",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    async with connected(credentials) as (connector, _):
        with pytest.raises(ConnectorAuthError, match="reconnect"):
            await connector.fetch([query("deals.count")], WINDOW)


def test_credentials_take_one_way_in() -> None:
    """An API token (https://pipedrive.readme.io/docs/core-api-concepts-authentication), or
    OAuth tokens, where a refresh needs the app's id and secret
    (https://pipedrive.readme.io/docs/marketplace-oauth-authorization); calls go to the
    company's own domain, ``https://{company_domain}.pipedrive.com`` (the ``company_domain`` of
    https://pipedrive.readme.io/docs/marketplace-getting-user-data)."""
    model = PipedriveConnector.credentials_model
    model.model_validate({"api_token": "t"})
    model.model_validate({"access_token": "a"})
    for bad in (
        {},
        {"api_token": "t", "access_token": "a"},
        {"refresh_token": "r"},
    ):
        with pytest.raises(ValueError, match=r"give|refreshing"):
            model.model_validate(bad)
    assert (
        PipedriveConnector.http_options(
            PipedriveConnector.config_model.model_validate({"company_domain": "acme"}),
            model.model_validate({"access_token": "a"}),
        ).base_url
        == "https://acme.pipedrive.com"
    )


def test_a_day_whose_only_won_deal_was_lost_is_no_longer_counted(
    fake: FakePipedrive, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timeline holds open and won deals and answers every day asked, zeros included
    (https://developers.pipedrive.com/docs/api/v1/Deals#getDealsTimeline): a deal marked lost
    or deleted leaves its day. The lookback re-reads the day, and it must not keep its old
    count."""
    freeze_today(monkeypatch, date(2026, 7, 11))
    won: dict[date, int] = {date(2026, 7, 2): 2, date(2026, 7, 9): 1}

    def period(_field: str, day: date, _params: dict[str, str]) -> dict[str, Any] | None:
        n = won.get(day, 0)
        if not n:
            return None  # the fake's empty day: counts 0, values []
        return {
            "totals": {"count": n, "values": {"EUR": n * 100}, "won_count": n},
            "totals_converted": {"value": n * 100, "won_value": n * 100, "currency": "EUR"},
        }

    fake.period = period
    src = make_source(
        name="pipedrive",
        connector="pipedrive",
        config=CONFIG,
        credentials_encrypted=encrypt_credentials({"api_token": API_TOKEN}),
    )
    kr = make_kr(title="Deals won")
    make_mapping(kr, src, "deals.count", params={"date_field": "won_time", "status": "won"})

    def sync() -> dict[date, float]:
        sync_factories.sync_source(src, trigger="cli")
        return {o[0]: o[3] for o in observations(kr)}

    assert sync() == {date(2026, 7, 2): 2.0, date(2026, 7, 9): 1.0}

    del won[date(2026, 7, 9)]  # its only won deal was marked lost
    won[date(2026, 7, 8)] = 1  # another in the window: the answer is a real one
    figures = sync()

    assert figures == {date(2026, 7, 2): 2.0, date(2026, 7, 8): 1.0}
    [_, second] = runs(src)
    assert second.status == "succeeded", second.error
    assert second.window_from is not None
    assert second.window_from <= date(2026, 7, 9) <= second.window_to  # type: ignore[operator]


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        # The client libraries generated from Pipedrive's OpenAPI type `data` as one period.
        (
            {
                "success": True,
                "data": {"period_start": "2026-07-01 00:00:00", "totals": {"count": 0}},
            },
            "`data` as an object",
        ),
        ({"success": True, "data": "no deals"}, "`data` as a str"),
        ({"success": True, "data": [None]}, "a list of something else"),
        ({"success": True, "data": []}, "an empty list"),
        ({"success": True}, "without `data`"),
        ({"success": False, "error": "Filter not found"}, "success: false (Filter not found)"),
    ],
)
def test_a_timeline_answer_without_its_list_of_periods_writes_no_zeros(
    fake: FakePipedrive,
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    answer: dict[str, Any],
    said: str,
) -> None:
    """The timeline answers ``{"success": true, "data": [<one period per interval asked>]}``,
    an empty day with zero totals (https://developers.pipedrive.com/docs/api/v1/Deals#getDealsTimeline).
    Any other ``data`` is no answer about deals: the run fails saying what came back, the next
    run asks again, and the figures already stored stay as they were instead of being cleared
    to zero. (``data: null`` with ``success: true`` is Pipedrive's documented empty answer,
    https://pipedrive.readme.io/docs/core-api-concepts-responses: the next test.)
    """
    freeze_today(monkeypatch, date(2026, 7, 11))
    kr = key_result(client, objective(client, cycle(client)["id"])["id"], title="Deals added")
    src = data_source(
        client,
        name="pipedrive",
        connector="pipedrive",
        config=CONFIG,
        credentials={"api_token": API_TOKEN},
        lookback_days=7,
    )["id"]
    body = {"key_result_id": kr["id"], "data_source_id": src, "metric": "deals.count"}
    assert client.post("/api/v1/mappings", json=body).status_code == 201  # backfills
    series = f"/api/v1/key-results/{kr['id']}/series"
    before = client.get(series).json()
    assert [p["value"] for p in before["points"]] == [float(d) for d in range(1, 11)]

    fake.fail("timeline", *[httpx.Response(200, json=answer)] * 10)
    started = client.post(f"/api/v1/data-sources/{src}/sync", json={})
    assert started.status_code == 202, started.text

    runs = client.get("/api/v1/sync-runs", params={"data_source_id": src}).json()["items"]
    latest = max(runs, key=lambda r: r["id"])
    assert latest["status"] == "failed", latest
    assert said in latest["error"]
    assert client.get(series).json() == before


@pytest.mark.anyio
async def test_a_null_data_answer_is_no_deals(fake: FakePipedrive) -> None:
    """``success: true`` with ``data: null`` is how Pipedrive answers nothing found
    ("data: null, //object in other cases",
    https://pipedrive.readme.io/docs/core-api-concepts-responses): no deal on any day asked, so
    the window holds none (and a day read before without deals keeps none)."""
    fake.fail("timeline", httpx.Response(200, json={"success": True, "data": None}))
    async with connected() as (connector, _):
        result = await connector.fetch([query("deals.count")], WINDOW)
    assert result.values == []
    assert not result.query_errors
    assert result.complete == {"1"}
