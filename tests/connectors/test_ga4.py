"""``ga4``: the official GA4 client, its REST transport, against a fake Google on 127.0.0.1.

Every test runs the real ``google-analytics-data`` client and google-auth: the service account's
JWT is signed with a key made at test time, exchanged at the key's ``token_uri`` (the fake's
token endpoint verifies the signature with the public key), and the reports travel over real
sockets through the engine's HTTP client. :mod:`google_fake` builds its answers from the
documented shapes; each test cites the page it reproduces.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

import google.auth._regional_access_boundary_utils as rab
import pytest
import stamina

from app.core.http import KrsyncClient, PrivateNetworkError
from app.core.redact import secrets_in
from connectors.base import (
    ConnectorAuthError,
    DailyValue,
    Filter,
    MappingError,
    MetricQuery,
    RateLimited,
    RetriableError,
    Window,
)
from connectors.ga4.connector import DailyQuotaExhausted, GA4Connector, GA4Params
from connectors.google_auth import GoogleCredentials
from tests.connectors import engine_client
from tests.connectors.google_fake import (
    GA4_DAILY,
    GA4_HOURLY,
    GA4_SCOPE,
    INTERNAL,
    JWT_BEARER,
    PROPERTY_ID,
    UNAUTHENTICATED,
    FakeGoogle,
    Record,
    google_error,
    service_account,
    year_of_traffic,
)

WINDOW = Window(date(2026, 7, 1), date(2026, 7, 10))
EMAIL = Filter(field="sessionDefaultChannelGroup", op="eq", value="Email")


@pytest.fixture(autouse=True)
def fast_retries() -> Iterator[None]:
    with stamina.set_testing(True, attempts=4, cap=True):
        yield


@pytest.fixture
def google() -> Iterator[tuple[FakeGoogle, str]]:
    fake = FakeGoogle(records=year_of_traffic())
    with fake.serving() as served:
        yield served


def sa_credentials(base: str, key_name: str = "good") -> dict[str, Any]:
    return {"service_account_info": service_account(f"{base}/token", key_name=key_name)}


@asynccontextmanager
async def ga4(
    base: str,
    credentials: dict[str, Any] | None = None,
    *,
    property_id: str = PROPERTY_ID,
    timezone: str = "Europe/Paris",
    allow_private: bool = True,
) -> AsyncIterator[tuple[GA4Connector, KrsyncClient]]:
    """The connector on a client built as the engine builds it, allowed to reach 127.0.0.1."""
    async with engine_client.connected(
        GA4Connector,
        {"property_id": property_id, "base_url": base},
        credentials or sa_credentials(base),
        timezone=timezone,
        source_name="ga4 test",
        allow_private=allow_private,
    ) as (connector, http):
        assert isinstance(connector, GA4Connector)
        yield connector, http


def query(
    metric: str,
    *filters: Filter,
    qid: str | None = None,
    split_by: str | None = None,
    aggregation: str = "sum",
) -> MetricQuery:
    params = GA4Connector.validate_query(
        metric,
        {"split_by": split_by} if split_by else {},
        list(filters),
        aggregation,  # type: ignore[arg-type]
    )
    return MetricQuery(qid or metric, metric, params, tuple(filters))


def by_day(values: list[DailyValue], qid: str) -> dict[date, float]:
    return {v.date: v.value for v in values if v.query_id == qid}


def reports_of(fake: FakeGoogle) -> list[list[dict[str, Any]]]:
    return [call.body["requests"] for call in fake.of("batchRunReports")]


# --- requests as the REST client sends them ------------------------------------------------------


@pytest.mark.anyio
async def test_a_report_goes_out_as_the_rest_client_sends_it(
    google: tuple[FakeGoogle, str],
) -> None:
    """The JWT grant at the key's token_uri, then one ``batchRunReports`` with numeric enums.

    EXACT is 1 in ``enum-encoding=int``; ``limit`` is an int64, sent as a JSON string; metric
    values come back as strings. Docs:
    https://developers.google.com/identity/protocols/oauth2/service-account#httprest
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/properties/batchRunReports
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/FilterExpression
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/RunReportResponse
    """
    fake, base = google
    async with ga4(base) as (connector, http):
        result = await connector.fetch([query("sessions", EMAIL, qid="q1")], WINDOW)

    token, batch = fake.calls
    assert token.endpoint == "token"
    assert token.body["grant_type"] == JWT_BEARER  # verified with the key's public half
    assert batch.path == f"/v1beta/properties/{PROPERTY_ID}:batchRunReports"
    assert batch.query["$alt"] == "json;enum-encoding=int"
    issued = next(iter(fake.issued))
    assert batch.headers["authorization"] == f"Bearer {issued}"
    assert fake.issued[issued] == (GA4_SCOPE,)
    [report] = batch.body["requests"]
    assert report["dateRanges"] == [{"startDate": "2026-07-01", "endDate": "2026-07-10"}]
    assert report["dimensions"] == [{"name": "date"}]
    assert report["metrics"] == [{"name": "sessions"}]
    assert report["dimensionFilter"] == {
        "filter": {
            "fieldName": "sessionDefaultChannelGroup",
            "stringFilter": {"matchType": 1, "value": "Email", "caseSensitive": True},
        }
    }
    assert report["limit"] == "250000"
    assert "offset" not in report  # proto3 JSON leaves the zero out
    assert report["orderBys"] == [{"dimension": {"dimensionName": "date"}}]
    assert report["keepEmptyRows"] is True
    assert report["returnPropertyQuota"] is True

    # Email only: the day of the month, not the Organic Search sessions beside it.
    assert by_day(result.values, "q1") == {d: float(d.day) for d in WINDOW.days()}
    assert all(type(v.value) is float for v in result.values)
    assert not result.warnings
    assert http.stats.requests == 2  # the token and the batch: counted for SyncRun.api_calls


@pytest.mark.anyio
async def test_twelve_mappings_over_four_filter_sets_take_one_call(
    google: tuple[FakeGoogle, str],
) -> None:
    """Mappings sharing filters share a report; four reports fit one ``batchRunReports``.

    1 to 5 requests a batch, up to 10 metrics a report; the same conditions written in another
    order are the same filter set. Docs:
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/properties/batchRunReports
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/properties/runReport
    """
    fake, base = google
    fake.records = [
        Record(day, {"sessionDefaultChannelGroup": ch, "country": co}, metrics)
        for day in WINDOW.days()
        for ch, co, metrics in (
            ("Email", "France", {"sessions": 10, "newUsers": 4, "keyEvents": 1, "eventCount": 50}),
            ("Email", "Spain", {"sessions": 5, "newUsers": 2, "keyEvents": 0, "eventCount": 20}),
            (
                "Paid Search",
                "France",
                {"sessions": 7, "newUsers": 3, "keyEvents": 2, "eventCount": 30},
            ),
        )
    ]
    france = Filter(field="country", op="eq", value="France")
    paid = Filter(field="sessionDefaultChannelGroup", op="eq", value="Paid Search")
    not_email = Filter(field="sessionDefaultChannelGroup", op="neq", value="Email")
    queries = [
        query("sessions", EMAIL, qid="m1"),
        query("newUsers", EMAIL, qid="m2"),
        query("keyEvents", EMAIL, qid="m3"),
        query("sessions", EMAIL, france, qid="m4"),
        query("newUsers", france, EMAIL, qid="m5"),  # the same set, written the other way round
        query("eventCount", EMAIL, france, qid="m6"),
        query("sessions", paid, qid="m7"),
        query("keyEvents", paid, qid="m8"),
        query("sessions", paid, qid="m9"),  # a second mapping of the same figure
        query("sessions", not_email, qid="m10"),
        query("eventCount", not_email, qid="m11"),
        query("newUsers", not_email, qid="m12"),
    ]
    async with ga4(base) as (connector, http):
        result = await connector.fetch(queries, WINDOW)

    [batch] = reports_of(fake)
    assert len(batch) == 4
    assert [[m["name"] for m in r["metrics"]] for r in batch] == [
        ["sessions", "newUsers", "keyEvents"],
        ["sessions", "newUsers", "eventCount"],
        ["sessions", "keyEvents"],
        ["sessions", "eventCount", "newUsers"],
    ]
    assert http.stats.requests == 2  # one token, one batch: nothing fewer is possible
    assert result.details["batch_calls"] == 1
    day = date(2026, 7, 4)
    expected = {
        "m1": 15, "m2": 6, "m3": 1, "m4": 10, "m5": 4, "m6": 50,
        "m7": 7, "m8": 2, "m9": 7, "m10": 7, "m11": 30, "m12": 3,
    }  # fmt: skip
    assert {q: by_day(result.values, q)[day] for q in expected} == expected
    assert not result.query_errors


@pytest.mark.anyio
async def test_more_reports_than_a_batch_takes_go_five_at_a_time(
    google: tuple[FakeGoogle, str],
) -> None:
    """23 metrics of one filter set make three reports of <= 10; six reports take two calls.

    Docs (at most 5 requests a batch, at most 10 metrics a report):
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/properties/batchRunReports
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/properties/runReport
    """
    fake, base = google
    fake.records = [
        Record(day, {"sessionDefaultChannelGroup": ch}, {f"metric{i:02d}": i for i in range(23)})
        for day in WINDOW.days()
        for ch in ("Email", "Direct", "Referral", "Organic Social")
    ]
    many = [query(f"metric{i:02d}", EMAIL, qid=f"e{i}") for i in range(23)]
    others = [
        query("metric01", Filter(field="sessionDefaultChannelGroup", op="eq", value=ch), qid=ch)
        for ch in ("Direct", "Referral", "Organic Social")
    ]
    async with ga4(base) as (connector, http):
        result = await connector.fetch([*many, *others], WINDOW)

    batches = reports_of(fake)
    assert [len(b) for b in batches] == [5, 1]
    assert sorted(len(r["metrics"]) for b in batches for r in b) == [1, 1, 1, 3, 10, 10]
    assert http.stats.requests == 3
    assert by_day(result.values, "e22")[WINDOW.end] == 22.0
    assert by_day(result.values, "Referral")[WINDOW.start] == 1.0


@pytest.mark.anyio
async def test_reports_page_with_offset_until_row_count(
    google: tuple[FakeGoogle, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages follow ``offset`` until ``rowCount``; two reports' next pages share a call.

    "rowCount is independent of the number of rows returned in the response, the limit request
    parameter, and the offset request parameter." Docs:
    https://developers.google.com/analytics/devguides/reporting/data/v1/basics#pagination
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/RunReportResponse
    """
    monkeypatch.setattr(GA4Connector, "row_limit", 4)
    fake, base = google
    direct = Filter(field="sessionDefaultChannelGroup", op="eq", value="Organic Search")
    async with ga4(base) as (connector, _):
        result = await connector.fetch(
            [query("sessions", EMAIL, qid="email"), query("sessions", direct, qid="organic")],
            WINDOW,
        )

    batches = reports_of(fake)
    assert [[r.get("offset", "0") for r in b] for b in batches] == [
        ["0", "0"],
        ["4", "4"],
        ["8", "8"],
    ]
    assert all(r["limit"] == "4" for b in batches for r in b)
    assert by_day(result.values, "email") == {d: float(d.day) for d in WINDOW.days()}
    assert by_day(result.values, "organic") == {d: 10.0 * d.day for d in WINDOW.days()}


@pytest.mark.parametrize(
    ("days", "offsets"),
    [
        pytest.param(8, ["0", "4"], id="an exact multiple of the limit: no third call"),
        pytest.param(4, ["0"], id="a full first page that rowCount says is all"),
        pytest.param(6, ["0", "4"], id="a short last page"),
    ],
)
@pytest.mark.anyio
async def test_paging_stops_at_row_count_not_at_a_short_page(
    google: tuple[FakeGoogle, str], monkeypatch: pytest.MonkeyPatch, days: int, offsets: list[str]
) -> None:
    """A full page is not a sign of more rows: once ``offset`` + rows reaches ``rowCount``, stop.

    Paging until a page comes back short would ask once more after a full last page; the
    documented way is to compare with ``rowCount`` ("the total number of rows in the query
    result", independent of ``limit`` and ``offset``). Docs:
    https://developers.google.com/analytics/devguides/reporting/data/v1/basics#pagination
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/RunReportResponse
    """
    monkeypatch.setattr(GA4Connector, "row_limit", 4)
    fake, base = google
    window = Window(WINDOW.start, WINDOW.start + timedelta(days=days - 1))
    async with ga4(base) as (connector, http):
        result = await connector.fetch([query("sessions", EMAIL, qid="email")], window)

    assert [[r.get("offset", "0") for r in b] for b in reports_of(fake)] == [[o] for o in offsets]
    assert http.stats.requests == 1 + len(offsets)  # the token, then one call a page
    assert by_day(result.values, "email") == {d: float(d.day) for d in window.days()}


@pytest.mark.anyio
async def test_split_by_gives_one_group_per_dimension_value(google: tuple[FakeGoogle, str]) -> None:
    """``split_by`` adds a second dimension; each of its values is a group.

    Docs (``dimensions``, ``orderBys``; ``dimensionValues`` in header order):
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/properties/runReport
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/RunReportResponse
    """
    fake, base = google
    async with ga4(base) as (connector, _):
        result = await connector.fetch(
            [query("sessions", split_by="sessionDefaultChannelGroup", qid="s")], WINDOW
        )

    [[report]] = reports_of(fake)
    assert report["dimensions"] == [{"name": "date"}, {"name": "sessionDefaultChannelGroup"}]
    assert report["orderBys"][1] == {"dimension": {"dimensionName": "sessionDefaultChannelGroup"}}
    got = {(v.date, v.group): v.value for v in result.values if v.date == WINDOW.start}
    assert got == {(WINDOW.start, "Email"): 1.0, (WINDOW.start, "Organic Search"): 10.0}


# --- filters -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_filters_become_a_dimension_filter(google: tuple[FakeGoogle, str]) -> None:
    """``neq``/``not_in`` are ``notExpression``s, ``in`` an ``inListFilter``, in an ``andGroup``.

    ``stringFilter.matchType`` CONTAINS is 4. Docs:
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/FilterExpression
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/Filter
    """
    fake, base = google
    fake.records = [
        Record(
            WINDOW.start,
            {"sessionDefaultChannelGroup": ch, "country": co, "sessionSource": src},
            {"sessions": n},
        )
        for ch, co, src, n in (
            ("Email", "France", "newsletter-july", 1),
            ("Email", "Spain", "newsletter-july", 2),
            ("Email", "Italy", "newsletter-july", 4),
            ("Direct", "France", "(direct)", 8),
            ("Email", "France", "promo", 16),
        )
    ]
    filters = [
        Filter(field="sessionDefaultChannelGroup", op="neq", value="Direct"),
        Filter(field="country", op="in", value=["France", "Spain"]),
        Filter(field="country", op="not_in", value=["Germany"]),
        Filter(field="sessionSource", op="contains", value="NEWSLETTER"),
    ]
    async with ga4(base) as (connector, _):
        result = await connector.fetch([query("sessions", *filters, qid="f")], WINDOW)

    [[report]] = reports_of(fake)

    def listed(name: str, *values: str) -> dict[str, Any]:
        return {"fieldName": name, "inListFilter": {"values": list(values), "caseSensitive": True}}

    exact = {"matchType": 1, "value": "Direct", "caseSensitive": True}
    contains = {"matchType": 4, "value": "NEWSLETTER"}  # caseSensitive false: left out
    assert report["dimensionFilter"] == {
        "andGroup": {
            "expressions": [
                {"filter": listed("country", "France", "Spain")},
                {"notExpression": {"filter": listed("country", "Germany")}},
                {
                    "notExpression": {
                        "filter": {"fieldName": "sessionDefaultChannelGroup", "stringFilter": exact}
                    }
                },
                {"filter": {"fieldName": "sessionSource", "stringFilter": contains}},
            ]
        }
    }
    assert by_day(result.values, "f") == {WINDOW.start: 3.0}  # France + Spain newsletters


def test_an_operator_ga4_cant_express_is_refused_when_the_mapping_is_made() -> None:
    """GA4's dimension filters match strings and lists only: ``gt`` and friends are refused.

    ``numericFilter`` and ``betweenFilter`` apply to metrics, not to the dimensions a mapping
    filters on. Docs:
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/Filter
    """
    with pytest.raises(MappingError) as refused:
        GA4Connector.validate_query(
            "sessions",
            {},
            [{"field": "sessionDefaultChannelGroup", "op": "gt", "value": "a"}],
            "sum",
        )
    assert refused.value.part == "filters[0].op"
    assert "`contains`" in refused.value.message
    with pytest.raises(MappingError) as field:
        GA4Connector.validate_query(
            "sessions", {}, [{"field": "channel group", "op": "eq", "value": "x"}], "sum"
        )
    assert field.value.part == "filters[0].field"


def test_any_metric_api_name_is_accepted_and_non_additive_ones_are_not_summed() -> None:
    """Any GA4 API name (key-event and custom ones too); distinct counts and rates refuse ``sum``.

    SPEC section 4: "Distinct counts (GA4 activeUsers, totalUsers) and rates ... are not"
    additive. Docs (metric API names, ``keyEvents:<event>``, ``customEvent:<param>``):
    https://developers.google.com/analytics/devguides/reporting/data/v1/api-schema
    """
    for metric in ("sessions", "keyEvents:purchase", "customEvent:credits", "publisherAdClicks"):
        GA4Connector.validate_query(metric, {}, [], "sum")
    for metric in ("activeUsers", "totalUsers", "bounceRate", "engagementRate", "sessionsPerUser",
                   "averageSessionDuration", "sessionKeyEventRate:purchase"):  # fmt: skip
        with pytest.raises(MappingError) as refused:
            GA4Connector.validate_query(metric, {}, [], "sum")
        assert refused.value.part == "aggregation"
        assert "`ratio` key result" in refused.value.message
        assert "`avg`" in refused.value.message
        GA4Connector.validate_query(metric, {}, [], "avg")
    spec = GA4Connector.metric_spec("bounceRate")
    assert spec is not None
    assert not spec.additive
    assert spec.unit == "ratio"
    with pytest.raises(MappingError) as name:
        GA4Connector.validate_query("sessions per day", {}, [], "sum")
    assert name.value.part == "metric"
    with pytest.raises(MappingError) as split:
        GA4Connector.validate_query("sessions", {"split_by": "date"}, [], "sum")
    assert split.value.part.startswith("params")


@pytest.mark.anyio
async def test_names_are_checked_against_the_propertys_metadata(
    google: tuple[FakeGoogle, str],
) -> None:
    """``getMetadata`` lists the property's metrics and dimensions, custom and deprecated too.

    Docs (``apiName``, ``deprecatedApiNames``):
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/properties/getMetadata
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/Metadata
    """
    fake, base = google
    async with ga4(base) as (connector, _):
        await connector.validate_mapping_online(query("sessions", EMAIL))
        await connector.validate_mapping_online(query("conversions"))  # deprecated, still valid
        await connector.validate_mapping_online(
            query("keyEvents", Filter(field="customEvent:plan", op="eq", value="pro"))
        )
        with pytest.raises(MappingError) as metric:
            await connector.validate_mapping_online(query("sesions"))
        with pytest.raises(MappingError) as dimension:
            await connector.validate_mapping_online(
                query("sessions", Filter(field="channelGroup", op="eq", value="Email"))
            )
        with pytest.raises(MappingError) as split:
            await connector.validate_mapping_online(query("sessions", split_by="browserName"))

    assert metric.value.part == "metric"
    assert "`sessions`" in metric.value.message  # a suggestion
    assert dimension.value.part == "filters[0].field"
    assert split.value.part == "params.split_by"
    [meta] = fake.of("metadata")
    assert meta.method == "GET"
    assert meta.path == f"/v1beta/properties/{PROPERTY_ID}/metadata"  # asked once, then cached


# --- honesty: timezone, sampling, thresholding ---------------------------------------------------


@pytest.mark.anyio
async def test_check_tells_the_propertys_timezone(google: tuple[FakeGoogle, str]) -> None:
    """A one-row ``runReport`` proves access; its ``metadata.timeZone`` is the property's.

    Docs ("timeZone: The property's current timezone"):
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/properties/runReport
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/ResponseMetaData
    """
    fake, base = google
    async with ga4(base, timezone="UTC") as (connector, _):
        checked = await connector.check()

    assert checked.timezone == "Europe/Paris"
    assert checked.details["currency_code"] == "EUR"
    assert checked.details["quota"]["tokens_per_day"]["remaining"] == fake.tokens_left_day
    [run] = fake.of("runReport")
    assert run.body["limit"] == "1"
    assert run.body["dateRanges"] == [{"startDate": "yesterday", "endDate": "today"}]


@pytest.mark.anyio
async def test_a_source_set_to_another_timezone_is_warned(google: tuple[FakeGoogle, str]) -> None:
    """GA4 dates are the property's days: a source counting days elsewhere is told so.

    Docs (``timeZone``):
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/ResponseMetaData
    """
    _, base = google
    async with ga4(base, timezone="UTC") as (connector, _):
        result = await connector.fetch([query("sessions", EMAIL)], WINDOW)
    [warning] = [w for w in result.warnings if "Europe/Paris" in w and "UTC" in w]
    # And on the source, where it stays until someone sets the timezone.
    assert result.notices == [warning]


@pytest.mark.anyio
async def test_sampling_and_thresholding_become_warnings(google: tuple[FakeGoogle, str]) -> None:
    """``samplingMetadatas`` and ``subjectToThresholding`` mean the figures are not exact.

    Docs (``samplingMetadatas[{samplesReadCount, samplingSpaceSize}]``,
    ``subjectToThresholding``):
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/ResponseMetaData
    """
    fake, base = google
    fake.sampled = (250_000, 1_000_000)
    fake.thresholded = True
    async with ga4(base) as (connector, _):
        result = await connector.fetch([query("sessions", EMAIL)], WINDOW)

    assert result.values  # still delivered
    assert any("sampled (25.0% of 1000000 events)" in w for w in result.warnings)
    assert any("thresholding" in w for w in result.warnings)


# --- quotas --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_tokens_consumed_and_left_are_recorded(google: tuple[FakeGoogle, str]) -> None:
    """``returnPropertyQuota`` gives each call's cost and what is left, kept for the SyncRun.

    Docs (``tokensPerDay``, ``tokensPerHour``: ``consumed`` by this request, ``remaining``):
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/PropertyQuota
    """
    _, base = google
    async with ga4(base) as (connector, _):
        result = await connector.fetch([query("sessions", EMAIL)], WINDOW)

    quota = result.details["quota"]
    assert quota["tokens_per_hour"] == {"consumed": 3, "remaining": 40_000 - 3}
    assert quota["tokens_per_day"] == {"consumed": 3, "remaining": 200_000 - 3}
    assert quota["slowed_down"] is False
    assert result.details["property_id"] == PROPERTY_ID


@pytest.mark.anyio
async def test_low_tokens_slow_the_fetch_down(
    google: tuple[FakeGoogle, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under 2,000 hourly tokens left (5 % of a standard property's 40,000), calls are spaced.

    Docs ("Core Tokens Per Property Per Hour"):
    https://developers.google.com/analytics/devguides/reporting/data/v1/quotas
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/PropertyQuota
    """
    monkeypatch.setattr(GA4Connector, "row_limit", 4)  # three pages: three calls
    monkeypatch.setattr(GA4Connector, "quota_pause_seconds", 0.2)
    fake, base = google
    fake.tokens_left_hour = 1_500
    async with ga4(base) as (connector, _):
        started = time.monotonic()
        result = await connector.fetch([query("sessions", EMAIL, qid="q")], WINDOW)
        elapsed = time.monotonic() - started

    assert len(fake.of("batchRunReports")) == 3
    assert elapsed >= 0.4  # two pauses, before the second and the third call
    assert result.details["quota"]["slowed_down"] is True
    assert sum("low on tokens" in w for w in result.warnings) == 1
    assert by_day(result.values, "q") == {d: float(d.day) for d in WINDOW.days()}


@pytest.mark.anyio
async def test_too_few_tokens_for_the_next_call_stop_before_a_refusal(
    google: tuple[FakeGoogle, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fewer hourly tokens left than a call costs: defer (``RateLimited``) rather than a 429.

    "If any quota for a property is exhausted, all requests to that property will return
    Resource Exhausted errors." Docs:
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/PropertyQuota
    """
    monkeypatch.setattr(GA4Connector, "row_limit", 4)
    fake, base = google
    fake.tokens_left_hour = 5  # the first call costs 3: 2 left, the next needs ~3
    async with ga4(base) as (connector, _):
        with pytest.raises(RateLimited) as stopped:
            await connector.fetch([query("sessions", EMAIL)], WINDOW)

    assert len(fake.of("batchRunReports")) == 1
    assert stopped.value.retry_after == 3600.0
    assert "2 tokens left this hour" in stopped.value.message


@pytest.mark.anyio
async def test_an_hourly_429_is_a_rate_limit_to_wait_out_or_defer(
    google: tuple[FakeGoogle, str],
) -> None:
    """``RESOURCE_EXHAUSTED`` for hourly tokens: they "return in under an hour".

    The engine's client doesn't retry it (the tokens won't be back within a retry); the
    connector asks to wait the hour, which defers the run. Docs:
    https://developers.google.com/analytics/devguides/reporting/data/v1/quotas
    https://cloud.google.com/apis/design/errors#handling_errors
    """
    fake, base = google
    fake.fail("batchRunReports", 429, GA4_HOURLY, times=10)
    async with ga4(base) as (connector, http):
        with pytest.raises(RateLimited) as limited:
            await connector.fetch([query("sessions", EMAIL)], WINDOW)

    assert limited.value.retry_after == 3600.0
    assert "tokens for this hour" in limited.value.message
    assert http.stats.rate_limited == 1  # one refused call, no retry spent on it


@pytest.mark.anyio
async def test_a_daily_429_fails_the_run_without_retry(google: tuple[FakeGoogle, str]) -> None:
    """``RESOURCE_EXHAUSTED`` for daily tokens: nothing today can succeed, so no retry is asked.

    Docs ("Core Tokens Per Property Per Day"):
    https://developers.google.com/analytics/devguides/reporting/data/v1/quotas
    """
    fake, base = google
    fake.fail("batchRunReports", 429, GA4_DAILY, times=10)
    async with ga4(base) as (connector, _):
        with pytest.raises(DailyQuotaExhausted) as exhausted:
            await connector.fetch([query("sessions", EMAIL)], WINDOW)

    assert not isinstance(exhausted.value, RetriableError)
    assert "all its tokens for today" in exhausted.value.message
    assert "tomorrow" in exhausted.value.message


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_500_then_success_is_retried(google: tuple[FakeGoogle, str]) -> None:
    """A transient ``INTERNAL`` is retried by the engine's client, then the report arrives.

    Docs (500 INTERNAL: retry):
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/properties/batchRunReports
    https://cloud.google.com/apis/design/errors#handling_errors
    """
    fake, base = google
    fake.fail("batchRunReports", 500, INTERNAL)
    async with ga4(base) as (connector, http):
        result = await connector.fetch([query("sessions", EMAIL, qid="q")], WINDOW)

    assert by_day(result.values, "q") == {d: float(d.day) for d in WINDOW.days()}
    assert http.stats.retries == 1
    assert len(fake.of("batchRunReports")) == 2


@pytest.mark.anyio
async def test_a_revoked_token_is_replaced_once(google: tuple[FakeGoogle, str]) -> None:
    """A 401 makes google-auth fetch a new token and repeat; a second fetch then succeeds.

    Docs:
    https://developers.google.com/identity/protocols/oauth2/service-account#httprest
    https://cloud.google.com/apis/design/errors#handling_errors
    """
    fake, base = google
    async with ga4(base) as (connector, _):
        await connector.fetch([query("sessions", EMAIL)], WINDOW)
        fake.revoke_tokens()
        result = await connector.fetch([query("sessions", EMAIL, qid="again")], WINDOW)

    assert by_day(result.values, "again")
    assert len(fake.of("token")) == 2


@pytest.mark.anyio
async def test_a_401_that_persists_is_an_auth_error(google: tuple[FakeGoogle, str]) -> None:
    """The API keeps refusing fresh tokens: the credentials need fixing.

    Docs: https://cloud.google.com/apis/design/errors#handling_errors
    """
    fake, base = google
    fake.fail("batchRunReports", 401, UNAUTHENTICATED, times=10)
    async with ga4(base) as (connector, _):
        with pytest.raises(ConnectorAuthError) as refused:
            await connector.fetch([query("sessions", EMAIL)], WINDOW)
    assert "credentials" in refused.value.message
    assert len(fake.of("token")) >= 2  # google-auth tried a fresh token


@pytest.mark.anyio
async def test_no_access_to_the_property_names_it_and_the_role(
    google: tuple[FakeGoogle, str],
) -> None:
    """403 PERMISSION_DENIED: the account is not a user of that property.

    The fix is to add the service account's email to the property, Viewer role at least. Docs:
    https://developers.google.com/analytics/devguides/reporting/data/v1/property-id
    https://developers.google.com/analytics/devguides/reporting/data/v1/quickstart-client-libraries
    """
    _, base = google
    raw = sa_credentials(base)
    async with ga4(base, raw, property_id="987654321") as (connector, _):
        with pytest.raises(ConnectorAuthError) as checked:
            await connector.check()
        with pytest.raises(ConnectorAuthError) as fetched:
            await connector.fetch([query("sessions", EMAIL)], WINDOW)

    for error in (checked.value, fetched.value):
        assert "987654321" in error.message
        assert "Viewer" in error.message
        for secret in secrets_in(raw):
            assert secret not in error.message


@pytest.mark.anyio
async def test_a_key_google_doesnt_know_is_an_auth_error(google: tuple[FakeGoogle, str]) -> None:
    """The token endpoint refuses an assertion signed by another key: ``invalid_grant``.

    Docs ("Invalid JWT Signature."):
    https://developers.google.com/identity/protocols/oauth2/service-account#error-codes
    """
    fake, base = google
    raw = sa_credentials(base, key_name="deleted")
    async with ga4(base, raw) as (connector, _):
        with pytest.raises(ConnectorAuthError) as refused:
            await connector.fetch([query("sessions", EMAIL)], WINDOW)

    assert "Invalid JWT Signature" in refused.value.message
    assert "create a new JSON key" in refused.value.message
    assert not fake.of("batchRunReports")
    for secret in secrets_in(raw):
        assert secret not in refused.value.message


@pytest.mark.anyio
async def test_an_oauth_client_refreshes_at_its_token_uri(google: tuple[FakeGoogle, str]) -> None:
    """``client_id`` + ``client_secret`` + ``refresh_token`` at ``token_uri``, by google-auth.

    Docs (``grant_type=refresh_token``; a revoked token is ``invalid_grant``):
    https://developers.google.com/identity/protocols/oauth2/web-server#offline
    https://developers.google.com/identity/protocols/oauth2/web-server#exchange-errors-invalid-grant
    """
    fake, base = google
    fake.oauth_clients = {
        ("client-1.apps.googleusercontent.com", "s3cret-client", "1//refresh-ok"): (GA4_SCOPE,)
    }
    good = {
        "client_id": "client-1.apps.googleusercontent.com",
        "client_secret": "s3cret-client",
        "refresh_token": "1//refresh-ok",
        "token_uri": f"{base}/token",
    }
    async with ga4(base, good) as (connector, _):
        result = await connector.fetch([query("sessions", EMAIL, qid="q")], WINDOW)
    assert by_day(result.values, "q")[WINDOW.end] == 10.0
    token = fake.of("token")[0]
    assert token.body["grant_type"] == "refresh_token"
    assert token.body["refresh_token"] == "1//refresh-ok"

    revoked = {**good, "refresh_token": "1//revoked"}
    async with ga4(base, revoked) as (connector, _):
        with pytest.raises(ConnectorAuthError) as refused:
            await connector.check()
    assert "authorize again" in refused.value.message
    assert "1//revoked" not in refused.value.message
    assert "s3cret-client" not in refused.value.message


@pytest.mark.anyio
async def test_a_metric_the_property_lacks_fails_its_mapping_only(
    google: tuple[FakeGoogle, str],
) -> None:
    """A 400 naming one metric fails that mapping; the report is asked again without it.

    Docs (400 INVALID_ARGUMENT, "Field sessionz is not a valid metric"):
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/properties/batchRunReports
    https://cloud.google.com/apis/design/errors#handling_errors
    """
    fake, base = google
    async with ga4(base) as (connector, _):
        result = await connector.fetch(
            [query("sessions", EMAIL, qid="ok"), query("sessionz", EMAIL, qid="bad")], WINDOW
        )

    assert set(result.query_errors) == {"bad"}
    assert "sessionz is not a valid metric" in result.query_errors["bad"]
    assert by_day(result.values, "ok") == {d: float(d.day) for d in WINDOW.days()}
    first, second = reports_of(fake)
    assert [m["name"] for m in first[0]["metrics"]] == ["sessions", "sessionz"]
    assert [m["name"] for m in second[0]["metrics"]] == ["sessions"]


@pytest.mark.anyio
async def test_a_private_base_url_is_refused_without_the_setting(
    google: tuple[FakeGoogle, str],
) -> None:
    """The official client's calls pass the engine's private-network guard (SPEC section 5).

    The guard refuses 127.0.0.1 unless ``KRSYNC_ALLOW_PRIVATE_NETWORKS``: the token endpoint of
    the key and ``base_url`` alike, before anything is sent. Both addresses come from the
    source: the key's ``token_uri``, where the signed JWT is exchanged, and the service
    endpoint the REST client calls. Docs:
    https://developers.google.com/identity/protocols/oauth2/service-account#httprest
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest (service endpoint)
    """
    fake, base = google
    async with ga4(base, allow_private=False) as (connector, http):
        with pytest.raises(PrivateNetworkError):
            await connector.fetch([query("sessions", EMAIL)], WINDOW)
    assert fake.calls == []
    assert http.stats.requests == 0


def test_credentials_are_one_complete_way_in() -> None:
    """A service account's whole JSON key, or an OAuth client with its refresh token.

    developers.google.com/identity/protocols/oauth2/service-account#creatinganaccount (the JSON
    key's fields). A refused key is described, never quoted back.
    """
    key = service_account("https://oauth2.googleapis.com/token")
    GoogleCredentials.model_validate({"service_account_info": key})
    with pytest.raises(ValueError, match="lacks `private_key`"):
        GoogleCredentials.model_validate(
            {"service_account_info": {k: v for k, v in key.items() if k != "private_key"}}
        )
    broken = {
        **key,
        "private_key": "-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----\n",
    }
    with pytest.raises(ValueError, match="not a PEM private key") as bad_key:
        GoogleCredentials.model_validate({"service_account_info": broken})
    assert "not-a-key" not in str(bad_key.value.errors(include_input=False))
    with pytest.raises(ValueError, match="not both"):
        GoogleCredentials.model_validate(
            {
                "service_account_info": key,
                "client_id": "x",
                "client_secret": "y",
                "refresh_token": "z",
            }
        )
    with pytest.raises(ValueError, match="all of"):
        GoogleCredentials.model_validate({"client_id": "x", "client_secret": "y"})
    params = GA4Params(split_by="country")
    assert params.split_by == "country"


@pytest.mark.anyio
async def test_days_outside_the_window_and_empty_days(google: tuple[FakeGoogle, str]) -> None:
    """A window with no traffic answers no rows (and no ``rowCount``): nothing, no error.

    Docs (``rows`` absent; proto3 JSON omits a zero ``rowCount``):
    https://developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/RunReportResponse
    """
    fake, base = google
    fake.records = [r for r in fake.records if r.day < WINDOW.start - timedelta(days=1)]
    async with ga4(base) as (connector, _):
        result = await connector.fetch([query("sessions", EMAIL)], WINDOW)
    assert result.values == []
    assert not result.query_errors
    assert len(fake.of("batchRunReports")) == 1


def test_the_catalogue_says_what_cant_be_summed() -> None:
    """``GET /api/v1/connectors`` lists the common metrics, which can't be summed, the filter ops,
    and which improve as they fall.

    Docs (``bounceRate``: "the percentage of sessions that were not engaged"):
    https://developers.google.com/analytics/devguides/reporting/data/v1/api-schema
    """
    described = GA4Connector.describe()
    names = {m["name"]: m for m in described["metrics"]}
    assert {
        "sessions",
        "engagedSessions",
        "newUsers",
        "keyEvents",
        "totalRevenue",
        "activeUsers",
    } <= set(names)
    assert names["activeUsers"]["additive"] is False
    assert "sum" not in names["activeUsers"]["aggregations"]
    assert names["sessions"]["filters"] == {"*": ["eq", "neq", "in", "not_in", "contains"]}
    # The share of sessions that were not engaged: a key result on it aims down.
    assert names["bounceRate"]["lower_is_better"] is True
    assert names["engagementRate"]["lower_is_better"] is False
    assert names["sessions"]["lower_is_better"] is False
    assert described["recommended_lookback_days"] == 3


@pytest.mark.anyio
async def test_an_error_echoing_the_access_token_is_redacted(
    google: tuple[FakeGoogle, str],
) -> None:
    """Access tokens google-auth obtains join the client's secrets: an echo of one is masked.

    Docs: https://cloud.google.com/apis/design/errors#http_mapping (the error ``message`` is
    free text a platform may fill with what it was sent).
    """
    fake, base = google
    echo = google_error(400, "INVALID_ARGUMENT", "Field $BEARER is not a valid metric.")
    fake.fail("batchRunReports", 400, echo)
    async with ga4(base) as (connector, _):
        result = await connector.fetch([query("sessions", EMAIL, qid="q")], WINDOW)

    [token] = fake.issued
    assert "Field *** is not a valid metric." in result.query_errors["q"]
    assert token not in result.query_errors["q"]


@pytest.mark.anyio
async def test_google_auth_starts_no_lookup_outside_the_run(
    google: tuple[FakeGoogle, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """google-auth's background "regional access boundary" lookup is never started.

    It would call iamcredentials.googleapis.com from a thread that outlives the run's client;
    the bridged request refuses to be copied, which google-auth takes as "skip the lookup".
    Docs: https://cloud.google.com/iam/docs/regional-access-boundaries (what the lookup is).
    """
    started: list[object] = []
    monkeypatch.setattr(
        rab._RegionalAccessBoundaryRefreshThread, "start", lambda self: started.append(self)
    )
    _, base = google
    async with ga4(base) as (connector, _):
        result = await connector.fetch([query("sessions", EMAIL)], WINDOW)
    assert result.values
    assert started == []
