"""The ``meta`` connector against a fake Graph API (kit_meta.py).

Each test cites the documentation page whose request and response shapes it reproduces.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import respx
import sync_factories
from sync_factories import freeze_today, make_kr, make_mapping, make_source, observations, runs

from app.core.vault import encrypt_credentials
from connectors.base import (
    ConnectorAuthError,
    ConnectorConfigError,
    MappingError,
    MetricQuery,
    NoParams,
    RateLimited,
    Window,
)
from connectors.meta.connector import MetaConnector
from tests.connectors import (
    engine_client,
    kits,  # noqa: F401  (loads every kit first: they import kits)
)
from tests.connectors.kit_meta import (
    CONFIG,
    HOST,
    INSTAGRAM,
    INVALID_METRIC,
    PAGE,
    TOKEN,
    VERSION,
    FakeGraph,
    end_time,
    graph_error,
    pacific_midnight,
)

WINDOW = Window(date(2026, 7, 1), date(2026, 7, 10))


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with engine_client.engine_env(monkeypatch, attempts=2, cap=True):
        yield


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with engine_client.mocked(FakeGraph()) as graph:
        yield graph


@asynccontextmanager
async def connector(**config: Any) -> AsyncIterator[MetaConnector]:
    async with engine_client.connected(
        MetaConnector, {**CONFIG, **config}, {"access_token": TOKEN}
    ) as (c, _):
        assert isinstance(c, MetaConnector)
        yield c


def query(metric: str, qid: str | None = None) -> MetricQuery:
    return MetricQuery(qid or metric, metric, NoParams())


@pytest.mark.anyio
async def test_the_configured_graph_version_is_the_one_in_every_path(fake: FakeGraph) -> None:
    """Graph API calls name their version in the path, ``/v{N}.0/{id}/insights``
    (https://developers.facebook.com/docs/graph-api/guides/versioning): the source's
    ``api_version``. Moving to another is a config change; its sunset is the "Available until"
    day of https://developers.facebook.com/docs/graph-api/changelog/versions/ (v24.0: 18
    February 2028), none for a version Meta has not dated yet."""
    fake.version = "v24.0"
    async with connector(api_version="v24.0") as c:
        result = await c.fetch([query("page.page_follows")], WINDOW)
    assert result.values
    assert not result.query_errors
    assert {r.url.path.split("/")[1] for r in fake.insight_calls()} == {"v24.0"}

    model = MetaConnector.config_model
    assert MetaConnector.api_version_sunset(
        model.model_validate(CONFIG | {"api_version": "v24.0"})
    ) == date(2028, 2, 18)
    assert (
        MetaConnector.api_version_sunset(model.model_validate(CONFIG | {"api_version": "v26.0"}))
        is None
    )
    for bad in ("25.0", "v25", "v0.1", "latest"):
        with pytest.raises(ValueError, match="api_version"):
            model.model_validate(CONFIG | {"api_version": bad})


# --- requests, paging, days ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_all_insights_of_the_page_in_one_call_paged_to_the_end(fake: FakeGraph) -> None:
    """``/{page-id}/insights?metric=a,b&period=day&since&until``, ``paging.next`` followed.

    https://developers.facebook.com/docs/graph-api/reference/page/insights/
    https://developers.facebook.com/docs/graph-api/results (cursor and time-based paging)
    """
    fake.figures = lambda _o, name, day: day.day * (10 if name == "page_views_total" else 1)
    async with connector() as c:
        result = await c.fetch(
            [query("page.page_post_engagements"), query("page.page_views_total")], WINDOW
        )

    got = engine_client.by_query(result.values)
    assert got["page.page_post_engagements"] == {d: float(d.day) for d in WINDOW.days()}
    assert got["page.page_views_total"] == {d: 10.0 * d.day for d in WINDOW.days()}
    calls = fake.insight_calls()
    assert len(calls) == 3  # 4 + 4 + 2 days; the last "next" points past the window
    first = calls[0].url.params
    assert first["metric"] == "page_post_engagements,page_views_total"
    assert first["period"] == "day"
    assert int(first["since"]) == pacific_midnight(WINDOW.start)
    assert int(first["until"]) == pacific_midnight(WINDOW.end + timedelta(days=1))
    for call in calls:
        assert "access_token" not in call.url.params  # dropped from Meta's next links
        assert call.headers["Authorization"] == f"Bearer {TOKEN}"
        assert call.url.path == f"/{VERSION}/{PAGE}/insights"
        assert call.url.host == HOST


@pytest.mark.anyio
async def test_end_time_closes_the_pacific_day_it_reports() -> None:
    """ "If you set since to January 1, end_time will be January 2 at 08:00 GMT" (PST midnight).

    Instagram's account insights close their days at UTC-07:00 all year round.
    https://developers.facebook.com/docs/platforminsights/page
    https://developers.facebook.com/docs/instagram-api/reference/ig-user/insights
    """
    body = {
        "data": [
            {
                "name": "page_post_engagements",
                "period": "day",
                "values": [
                    {"value": 11, "end_time": "2026-01-02T08:00:00+0000"},  # winter: PST
                    {"value": 12, "end_time": "2026-07-02T07:00:00+0000"},  # summer: PDT
                    {"value": 13, "end_time": "2026-01-03T07:00:00+0000"},  # Instagram's -07:00
                ],
                "id": f"{PAGE}/insights/page_post_engagements/day",
            }
        ],
        "paging": {},
    }
    with respx.mock() as router:
        router.get(host=HOST).mock(return_value=httpx.Response(200, json=body))
        async with connector() as c:
            result = await c.fetch(
                [query("page.page_post_engagements")], Window(date(2026, 1, 1), date(2026, 7, 1))
            )

    assert {v.date: v.value for v in result.values} == {
        date(2026, 1, 1): 11.0,
        date(2026, 7, 1): 12.0,
        date(2026, 1, 2): 13.0,
    }


@pytest.mark.anyio
async def test_check_reads_both_objects_in_one_call_and_says_pacific_time(
    fake: FakeGraph,
) -> None:
    """Multiple-id read ``GET /?ids=a,b&fields=id,name``; Page insight days are Pacific days.

    https://developers.facebook.com/docs/graph-api/overview (multiple ID read requests)
    https://developers.facebook.com/docs/platforminsights/page
    """
    async with connector(instagram_user_id=INSTAGRAM) as c:
        result = await c.check()

    [call] = fake.requests
    assert call.url.params["ids"] == f"{PAGE},{INSTAGRAM}"
    assert "Krsync Kit Page" in result.message
    assert "krsync.kit" in result.message
    assert result.timezone == "America/Los_Angeles"


@pytest.mark.anyio
async def test_instagram_is_asked_in_parts_of_thirty_days(fake: FakeGraph) -> None:
    """``follower_count`` "returns a maximum of 30 days worth of data"; Page insights take 90.

    https://developers.facebook.com/docs/instagram-api/reference/ig-user/insights
    https://developers.facebook.com/docs/graph-api/reference/page/insights/
    """
    fake.page_days = 90
    window = Window(date(2026, 5, 1), date(2026, 7, 14))  # 75 days
    async with connector(instagram_user_id=INSTAGRAM) as c:
        result = await c.fetch(
            [query("instagram.follower_count"), query("page.page_post_engagements")], window
        )

    calls = fake.insight_calls()
    ig = [c for c in calls if f"/{INSTAGRAM}/" in c.url.path]
    page = [c for c in calls if f"/{PAGE}/" in c.url.path]
    assert len(page) == 1
    assert len(ig) == 3
    for call in ig:
        span = int(call.url.params["until"]) - int(call.url.params["since"])
        assert span <= 30 * 86_400 + 3600  # 30 days, one DST hour at most
    got = engine_client.by_query(result.values)
    assert set(got["instagram.follower_count"]) == set(window.days())
    assert set(got["page.page_post_engagements"]) == set(window.days())


@pytest.mark.anyio
async def test_negative_follower_deltas_keep_their_sign(fake: FakeGraph) -> None:
    """``follower_count`` is the "number of new followers each day": a net figure, may be < 0.

    https://developers.facebook.com/docs/instagram-api/reference/ig-user/insights
    """
    fake.figures = lambda _o, _n, day: -3 if day.day % 2 else 5
    async with connector(instagram_user_id=INSTAGRAM) as c:
        result = await c.fetch([query("instagram.follower_count")], WINDOW)

    got = engine_client.by_query(result.values)["instagram.follower_count"]
    assert got[date(2026, 7, 1)] == -3.0
    assert got[date(2026, 7, 2)] == 5.0
    assert sum(got.values()) == 5 * 5 - 3 * 5


@pytest.mark.anyio
async def test_instagram_metrics_need_the_instagram_account_id(fake: FakeGraph) -> None:
    """Instagram insights are read on the IG user id, not on the Page.

    https://developers.facebook.com/docs/instagram-platform/api-reference/instagram-user/insights
    """
    async with connector() as c:
        result = await c.fetch(
            [query("instagram.reach", "ig"), query("page.page_post_engagements", "fb")], WINDOW
        )
        with pytest.raises(MappingError) as refused:
            await c.validate_mapping_online(query("instagram.reach"))

    assert "instagram_user_id" in result.query_errors["ig"]
    assert engine_client.by_query(result.values)["fb"]
    assert "instagram_user_id" in refused.value.message
    assert all(f"/{PAGE}/" in c.url.path for c in fake.insight_calls())


# --- metric names --------------------------------------------------------------------------------


def test_any_insight_name_is_accepted_and_levels_are_not_summed() -> None:
    """Open-ended names; ``page_follows`` and ``reach`` (unique accounts) can't be summed.

    https://developers.facebook.com/docs/graph-api/reference/page/insights/
    https://developers.facebook.com/docs/instagram-platform/api-reference/instagram-user/insights
    """
    spec = MetaConnector.metric_spec
    for name in ("page.page_total_actions", "instagram.views", "page.page_post_engagements"):
        found = spec(name)
        assert found is not None
        assert (found.history, found.additive) == ("daily", True)
    for name in ("page.page_follows", "page.page_fans", "instagram.reach", "page.x_unique"):
        found = spec(name)
        assert found is not None
        assert found.additive is False, name
        with pytest.raises(MappingError, match="summed"):
            MetaConnector.validate_query(name, {}, [], "sum")
        MetaConnector.validate_query(name, {}, [], "last")
    follower_count = spec("instagram.follower_count")
    assert follower_count is not None
    assert follower_count.additive  # a daily net gain, not a total
    config = MetaConnector.config_model
    assert config.model_validate({"page_id": 104857600123}).page_id == "104857600123"
    with pytest.raises(ValueError, match="page_id"):
        config.model_validate({"page_id": "my-page"})
    for bad in ("page_follows", "twitter.followers", "page.Page-Follows", "instagram."):
        assert spec(bad) is None
        with pytest.raises(MappingError):
            MetaConnector.validate_query(bad, {}, [], "sum")


@pytest.mark.anyio
async def test_a_retired_metric_is_refused_when_the_mapping_is_made(fake: FakeGraph) -> None:
    """A retired insight answers error 100 "(#100) The value must be a valid insights metric".

    https://developers.facebook.com/docs/graph-api/reference/page/insights/
    """
    async with connector() as c:
        with pytest.raises(MappingError) as refused:
            await c.validate_mapping_online(query("page.page_impressions"))
        await c.validate_mapping_online(query("page.page_post_engagements"))

    assert refused.value.part == "metric"
    assert "retired" in refused.value.message
    assert INVALID_METRIC in refused.value.message


@pytest.mark.anyio
async def test_a_retired_metric_fails_only_its_own_query(fake: FakeGraph) -> None:
    """The batched call fails for all; halving it isolates the retired metric.

    https://developers.facebook.com/docs/graph-api/reference/page/insights/
    """
    fake.page_days = 30
    queries = [
        query("page.page_post_engagements", "a"),
        query("page.page_impressions", "gone"),
        query("page.page_views_total", "b"),
        query("page.page_media_view", "c"),
    ]
    async with connector() as c:
        result = await c.fetch(queries, WINDOW)

    assert set(result.query_errors) == {"gone"}
    assert "page.page_impressions" in result.query_errors["gone"]
    assert set(engine_client.by_query(result.values)) == {"a", "b", "c"}
    asked = [c.url.params["metric"] for c in fake.insight_calls()]
    assert asked[0] == "page_post_engagements,page_impressions,page_views_total,page_media_view"
    assert "page_views_total,page_media_view" in asked  # the good half went in one call
    assert len(asked) == 5  # all, then halves, then the bad half split


@pytest.mark.anyio
async def test_a_breakdown_metric_is_a_query_error(fake: FakeGraph) -> None:
    """Demographic insights return an object per day (e.g. ``{"US": 12}``), not a number.

    https://developers.facebook.com/docs/graph-api/reference/page/insights/
    """
    fake.figures = lambda _o, name, day: {"US": day.day} if name.endswith("_country") else 1
    async with connector() as c:
        result = await c.fetch(
            [query("page.page_fans_country", "geo"), query("page.page_views_total", "v")], WINDOW
        )
    assert "breakdown" in result.query_errors["geo"]
    assert engine_client.by_query(result.values)["v"]


# --- rate limits and errors ----------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("code", "message"),
    [
        (4, "(#4) Application request limit reached"),
        (17, "(#17) User request limit reached"),
        (32, "(#32) Page request limit reached"),
        (613, "(#613) Calls to this api have exceeded the rate limit."),
        (80001, "(#80001) There have been too many calls to this Page account."),
        (80002, "(#80002) There have been too many calls to this Instagram account."),
    ],
)
async def test_throttling_codes_are_rate_limits(fake: FakeGraph, code: int, message: str) -> None:
    """Platform codes 4, 17, 32, 613 and business-use-case codes 80001/80002 are throttling;
    ``estimated_time_to_regain_access`` (minutes) says how long.

    https://developers.facebook.com/docs/graph-api/overview/rate-limiting/
    """
    usage = {PAGE: [{"type": "pages", "call_count": 100, "total_cputime": 12, "total_time": 20,
                     "estimated_time_to_regain_access": 7}]}  # fmt: skip
    fake.queued.append(
        graph_error(
            code, message, status=403, headers={"X-Business-Use-Case-Usage": json.dumps(usage)}
        )
    )
    async with connector() as c:
        with pytest.raises(RateLimited) as limited:
            await c.fetch([query("page.page_post_engagements")], WINDOW)
    assert limited.value.retry_after == 7 * 60
    assert f"code {code}" in limited.value.message


@pytest.mark.anyio
async def test_high_usage_holds_the_next_call_back(
    fake: FakeGraph, pacing_clock: engine_client.InstantClock
) -> None:
    """Above 90 % of a quota in ``X-App-Usage`` the next page waits instead of being sent.

    https://developers.facebook.com/docs/graph-api/overview/rate-limiting/
    """
    fake.headers = {
        "X-App-Usage": json.dumps({"call_count": 93, "total_cputime": 10, "total_time": 8})
    }
    async with connector() as c:
        with pytest.raises(RateLimited) as held:
            await c.fetch([query("page.page_post_engagements")], WINDOW)
        fake.headers = {
            "X-App-Usage": json.dumps({"call_count": 40, "total_cputime": 9, "total_time": 8})
        }
        assert held.value.retry_after is not None
        pacing_clock.advance(held.value.retry_after)  # the engine waited: the fetch starts over
        result = await c.fetch([query("page.page_post_engagements")], WINDOW)

    assert len(fake.insight_calls()) == 1 + 3  # the held-back page was never sent
    assert held.value.retry_after is not None
    assert 50 < held.value.retry_after <= 60
    assert "93 %" in held.value.message
    assert result.details["usage_percent"] == 93.0  # the highest share seen, for the run


@pytest.mark.anyio
async def test_high_business_use_case_usage_on_a_success_holds_the_next_call_back(
    fake: FakeGraph,
) -> None:
    """A 200 whose ``X-Business-Use-Case-Usage`` says 95 % of the Page's ``call_count`` is used
    (at 100 the calls are throttled): the next page waits instead of being sent, before any
    error; no ``estimated_time_to_regain_access`` yet, so the pause is the connector's minute.

    https://developers.facebook.com/docs/graph-api/overview/rate-limiting/ (business use case
    rate limits: the header's ``{business-object-id: [{type, call_count, total_cputime,
    total_time, estimated_time_to_regain_access}]}``)
    """
    usage = {PAGE: [{"type": "pages", "call_count": 95, "total_cputime": 20, "total_time": 31,
                     "estimated_time_to_regain_access": 0}]}  # fmt: skip
    fake.headers = {"X-Business-Use-Case-Usage": json.dumps(usage)}
    async with connector() as c:
        with pytest.raises(RateLimited) as held:
            await c.fetch([query("page.page_post_engagements")], WINDOW)

    [sent] = fake.insight_calls()  # the first page came back 200; the second was never sent
    assert int(sent.url.params["since"]) == pacific_midnight(WINDOW.start)
    assert held.value.retry_after is not None
    assert 50 < held.value.retry_after <= 60
    assert "95 %" in held.value.message


@pytest.mark.anyio
async def test_an_expired_token_is_an_auth_error(fake: FakeGraph) -> None:
    """Code 190 (subcode 463: expired) means a new access token is needed.

    https://developers.facebook.com/docs/graph-api/guides/error-handling
    """
    fake.tokens = set()
    async with connector() as c:
        with pytest.raises(ConnectorAuthError) as refused:
            await c.fetch([query("page.page_post_engagements")], WINDOW)
    message = refused.value.message
    assert "code 190" in message
    assert "read_insights" in message
    assert "Session has expired" in message
    assert TOKEN not in message


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("metric", "code", "names"),
    [
        ("page.page_post_engagements", 10, ("read_insights", "pages_read_engagement", "ANALYZE")),
        ("instagram.reach", 200, ("instagram_manage_insights", "instagram_basic")),
    ],
)
async def test_a_missing_permission_names_it(
    fake: FakeGraph, metric: str, code: int, names: tuple[str, ...]
) -> None:
    """Codes 10 and 200-299 are permission errors; the message names what to grant.

    https://developers.facebook.com/docs/graph-api/guides/error-handling
    https://developers.facebook.com/docs/instagram-platform/api-reference/instagram-user/insights
    """
    fake.queued.append(
        graph_error(code, f"(#{code}) Requires read_insights permission", status=403)
    )
    async with connector(instagram_user_id=INSTAGRAM) as c:
        with pytest.raises(ConnectorAuthError) as denied:
            await c.fetch([query(metric)], WINDOW)
    for name in names:
        assert name in denied.value.message


@pytest.mark.anyio
async def test_an_unknown_page_is_a_config_error(fake: FakeGraph) -> None:
    """Error 100 with subcode 33: the object doesn't exist or the token can't see it.

    https://developers.facebook.com/docs/graph-api/guides/error-handling
    """
    async with connector(page_id="999") as c:
        with pytest.raises(ConnectorConfigError) as refused:
            await c.fetch([query("page.page_post_engagements")], WINDOW)
        with pytest.raises(ConnectorConfigError) as checked:
            await c.check()
    assert "`page_id`" in refused.value.message
    assert "`page_id`" in checked.value.message


# --- through the engine --------------------------------------------------------------------------


def test_a_retired_metric_fails_its_mapping_and_the_run_is_partial(
    fake: FakeGraph, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One retired insight doesn't block the others: they are written, the run is ``partial``.

    https://developers.facebook.com/docs/graph-api/reference/page/insights/
    """
    freeze_today(monkeypatch, date(2026, 7, 11))
    src = make_source(
        name="meta",
        connector="meta",
        config=CONFIG,
        credentials_encrypted=encrypt_credentials({"access_token": TOKEN}),
    )
    retired_kr, live_kr = make_kr(), make_kr()
    retired = make_mapping(retired_kr, src, "page.page_impressions")
    make_mapping(live_kr, src, "page.page_post_engagements")
    sync_factories.sync_source(src, trigger="cli")

    [run] = runs(src)
    assert run.status == "partial", run.error
    assert observations(retired_kr) == []
    live = observations(live_kr)
    assert {r[0] for r in live} == set(Window(date(2026, 7, 1), date(2026, 7, 10)).days())
    assert {r[3] for r in live} == {float(r[0].day) for r in live}
    assert any(
        w.startswith(f"mapping {retired}:") and "page.page_impressions" in w for w in run.warnings
    )
    assert run.details["platform"]["api_version"] == VERSION


def test_end_time_helper_matches_the_documented_example() -> None:
    """The fake's own ``end_time``: 1 January closes at 2 January, 08:00 GMT.

    https://developers.facebook.com/docs/platforminsights/page
    """
    assert end_time(date(2026, 1, 1)) == "2026-01-02T08:00:00+0000"
    assert end_time(date(2026, 7, 1)) == "2026-07-02T07:00:00+0000"
