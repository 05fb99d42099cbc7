"""The ``youtube`` connector against a fake YouTube Analytics API v2 and Google token endpoint.

The fake (``kit_youtube.py``) follows reports.query
(https://developers.google.com/youtube/analytics/reference/reports/query) and Google's OAuth2
refresh (https://developers.google.com/identity/protocols/oauth2/web-server#offline).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError
from sync_factories import freeze_today, make_kr, make_mapping, make_source, observations, runs

from app.core.db import session_scope
from app.core.vault import decrypt_credentials, encrypt_credentials
from app.models import DataSource
from app.sync.engine import sync_now
from connectors.base import (
    ConnectorAuthError,
    Filter,
    MappingError,
    MetricQuery,
    RateLimited,
    RetriableError,
    Window,
)
from connectors.youtube import YouTubeConfig, YouTubeConnector
from tests.connectors import (
    engine_client,
    kits,  # noqa: F401  (loads every kit first: they import kits)
)
from tests.connectors.kit_youtube import (
    BASE_URL,
    CREDENTIALS,
    REFRESH_TOKEN,
    FakeYouTube,
    figure,
    google_error,
)

WINDOW = Window(date(2026, 7, 1), date(2026, 7, 10))
TODAY = date(2026, 7, 11)
QUERY_DOC = "https://developers.google.com/youtube/analytics/reference/reports/query"
CHANNEL = "UC_x5XG1OV2P6uZZ5FSM9Ttw"
FAR_FUTURE = 4_102_444_800  # 2100-01-01: only a 401 makes the client refresh


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with engine_client.engine_env(monkeypatch, attempts=1):
        yield


@pytest.fixture
def fake() -> Iterator[FakeYouTube]:
    with engine_client.mocked(FakeYouTube()) as youtube:
        yield youtube


@asynccontextmanager
async def connected(**config: Any) -> AsyncIterator[YouTubeConnector]:
    async with engine_client.connected(
        YouTubeConnector, {"base_url": BASE_URL, **config}, CREDENTIALS
    ) as (c, _):
        assert isinstance(c, YouTubeConnector)
        yield c


def query(metric: str, qid: str = "1", *filters: dict[str, Any]) -> MetricQuery:
    flts = [Filter.model_validate(f) for f in filters]
    params = YouTubeConnector.validate_query(metric, {}, flts, "sum")
    return MetricQuery(qid, metric, params, tuple(flts))


US = {"field": "country", "op": "eq", "value": "us"}
VIDEOS = {"field": "video", "op": "in", "value": ["dQw4w9WgXcQ", "9bZkp7q5f0s"]}


# --- requests and batching ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_metrics_sharing_filters_share_one_report(fake: FakeYouTube) -> None:
    """One reports.query per distinct filter set, metrics batched (QUERY_DOC parameters)."""
    queries = [
        query("views", "views-us", US),
        query("likes", "likes-us", US),
        query("views", "views-videos", VIDEOS, US),
        query("subscribersGained", "gained"),
        query("subscribersLost", "lost"),
    ]
    async with connected() as c:
        result = await c.fetch(queries, WINDOW)

    sent = sorted((dict(r.url.params) for r in fake.reports), key=lambda p: p.get("filters", ""))
    assert len(sent) == 3
    base = {
        "ids": "channel==MINE",
        "startDate": "2026-07-01",
        "endDate": "2026-07-10",
        "dimensions": "day",
        "sort": "day",
    }
    assert sent[0] == {**base, "metrics": "subscribersGained,subscribersLost"}
    assert sent[1] == {**base, "metrics": "views,likes", "filters": "country==US"}
    assert sent[2] == {
        **base,
        "metrics": "views",
        "filters": "country==US;video==dQw4w9WgXcQ,9bZkp7q5f0s",
    }
    got = engine_client.by_query(result)
    day = date(2026, 7, 6)
    assert got["likes-us"][day] == figure("likes", day)
    assert got["lost"][day] == figure("subscribersLost", day)
    assert len(got["views-videos"]) == WINDOW.num_days
    assert not result.query_errors


@pytest.mark.anyio
async def test_columns_are_read_by_name_whatever_their_order() -> None:
    """columnHeaders name the columns; YouTube may order them as it likes (QUERY_DOC response)."""
    body = {
        "kind": "youtubeAnalytics#resultTable",
        "columnHeaders": [
            {"name": "likes", "columnType": "METRIC", "dataType": "INTEGER"},
            {"name": "day", "columnType": "DIMENSION", "dataType": "STRING"},
            {"name": "estimatedMinutesWatched", "columnType": "METRIC", "dataType": "INTEGER"},
        ],
        "rows": [[3, "2026-07-02", 125], [0, "2026-07-03", 7.5]],
    }
    with respx.mock() as router:
        router.post("https://oauth2.krsync.test/token").mock(
            return_value=httpx.Response(200, json={"access_token": "a", "expires_in": 3599})
        )
        router.get(f"{BASE_URL}/v2/reports").mock(return_value=httpx.Response(200, json=body))
        async with connected(channel_id=CHANNEL) as c:
            result = await c.fetch(
                [query("estimatedMinutesWatched", "m"), query("likes", "l")], WINDOW
            )
        [call] = [c for c in router.calls if c.request.url.path == "/v2/reports"]

    assert call.request.url.params["ids"] == f"channel=={CHANNEL}"
    assert engine_client.by_query(result) == {
        "m": {date(2026, 7, 2): 125.0, date(2026, 7, 3): 7.5},
        "l": {date(2026, 7, 2): 3.0, date(2026, 7, 3): 0.0},
    }


@pytest.mark.anyio
async def test_days_missing_from_the_report_stay_absent(fake: FakeYouTube) -> None:
    """Rows only for days with data (QUERY_DOC: data up to the last day it is available)."""
    fake.missing = {date(2026, 7, 4), date(2026, 7, 9), date(2026, 7, 10)}
    async with connected() as c:
        result = await c.fetch([query("views")], WINDOW)

    assert set(engine_client.by_query(result)["1"]) == set(WINDOW.days()) - fake.missing


@pytest.mark.anyio
async def test_an_empty_report_has_no_rows_and_gives_nothing(fake: FakeYouTube) -> None:
    """An empty result table comes without ``rows`` (QUERY_DOC response)."""
    fake.empty = True
    async with connected() as c:
        result = await c.fetch([query("views"), query("shares", "2")], WINDOW)

    assert result.values == []
    assert not result.warnings
    assert not result.query_errors


def test_filter_values_youtube_would_refuse_are_refused_at_mapping_time() -> None:
    """filters=video==ID[,ID]; country==ISO code (https://developers.google.com/youtube/analytics/dimensions)."""
    cases: list[tuple[dict[str, Any], str]] = [
        ({"field": "video", "op": "eq", "value": "abc;country==US"}, "filters[0].value"),
        ({"field": "country", "op": "eq", "value": "USA"}, "filters[0].value"),
        ({"field": "country", "op": "in", "value": ["US", "DE"]}, "filters[0].op"),
        ({"field": "playlist", "op": "eq", "value": "PL1"}, "filters[0].field"),
    ]
    for flt, part in cases:
        with pytest.raises(MappingError) as refused:
            YouTubeConnector.validate_query("views", {}, [flt], "sum")
        assert refused.value.part == part
    twice = [US, {"field": "country", "op": "eq", "value": "DE"}]
    with pytest.raises(MappingError, match="filtered twice"):
        YouTubeConnector.validate_query("views", {}, twice, "sum")
    with pytest.raises(ValidationError):
        YouTubeConfig(channel_id="my channel")


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_missing_scope_names_yt_analytics_readonly(fake: FakeYouTube) -> None:
    """403 PERMISSION_DENIED, reason insufficientPermissions (QUERY_DOC errors)."""
    fake.failures.append(
        httpx.Response(
            403,
            json=google_error(
                403,
                "PERMISSION_DENIED",
                "Request had insufficient authentication scopes.",
                "insufficientPermissions",
            ),
        )
    )
    async with connected() as c:
        with pytest.raises(ConnectorAuthError) as refused:
            await c.fetch([query("views")], WINDOW)

    assert "yt-analytics.readonly" in refused.value.message
    assert "insufficient authentication scopes" in refused.value.message


@pytest.mark.anyio
async def test_a_channel_the_account_cannot_see_is_an_actionable_permission_error(
    fake: FakeYouTube,
) -> None:
    """403 forbidden for another account's channel (QUERY_DOC errors)."""
    fake.failures.append(
        httpx.Response(403, json=google_error(403, "PERMISSION_DENIED", "Forbidden", "forbidden"))
    )
    async with connected(channel_id=CHANNEL) as c:
        with pytest.raises(ConnectorAuthError) as refused:
            await c.check()

    message = refused.value.message
    assert f"`{CHANNEL}`" in message
    assert "yt-analytics.readonly" in message
    assert "MINE" in message


@pytest.mark.anyio
async def test_quota_and_rate_limits_are_told_apart(fake: FakeYouTube) -> None:
    """quotaExceeded waits for tomorrow; rateLimitExceeded/429 asks to slow down (QUERY_DOC)."""
    fake.failures += [
        httpx.Response(
            403, json=google_error(403, "PERMISSION_DENIED", "Quota exceeded.", "quotaExceeded")
        ),
        httpx.Response(
            429,
            headers={"Retry-After": "90"},
            json=google_error(429, "RESOURCE_EXHAUSTED", "Too many requests.", "rateLimitExceeded"),
        ),
    ]
    async with connected() as c:
        with pytest.raises(RetriableError) as quota:
            await c.fetch([query("views")], WINDOW)
        with pytest.raises(RateLimited) as limited:
            await c.fetch([query("views")], WINDOW)

    assert not isinstance(quota.value, RateLimited)
    assert "quota" in quota.value.message
    assert limited.value.retry_after == 90.0


@pytest.mark.anyio
async def test_a_refused_report_fails_only_its_own_mappings(fake: FakeYouTube) -> None:
    """A 400 for one filter set (QUERY_DOC: "The query is not supported") spares the others."""
    fake.failures.append(
        httpx.Response(
            400,
            json=google_error(400, "INVALID_ARGUMENT", "The query is not supported.", "badRequest"),
        )
    )
    async with connected() as c:
        result = await c.fetch([query("views", "a", VIDEOS), query("views", "b")], WINDOW)

    # dicts keep insertion order: the video report is asked first and refused
    assert "The query is not supported" in result.query_errors["a"]
    assert "b" not in result.query_errors
    assert len(engine_client.by_query(result)["b"]) == WINDOW.num_days


@pytest.mark.anyio
async def test_a_revoked_refresh_token_says_to_reauthorize(fake: FakeYouTube) -> None:
    """Token endpoint 400 invalid_grant ("Token has been expired or revoked.").

    https://developers.google.com/identity/protocols/oauth2/web-server#offline (refreshing) and
    https://developers.google.com/identity/protocols/oauth2#expiration (a refresh token stops
    working when the user revokes access, among other causes).
    """
    fake.refresh_token = "the-user-revoked-access"
    async with connected() as c:
        with pytest.raises(ConnectorAuthError) as refused:
            await c.fetch([query("views")], WINDOW)

    message = refused.value.message
    assert "invalid_grant" in message
    assert "`refresh_token`" in message
    assert "yt-analytics.readonly" in message
    assert REFRESH_TOKEN not in message


# --- token refresh through the engine ----------------------------------------------------------


def youtube_source(**credentials: Any) -> int:
    return make_source(
        name="youtube",
        connector="youtube",
        config={"channel_id": "MINE", "base_url": BASE_URL},
        credentials_encrypted=encrypt_credentials({**CREDENTIALS, **credentials}),
    )


def sync(source_id: int) -> None:
    with session_scope() as s:
        src = s.get(DataSource, source_id)
        assert src is not None
        sync_now(s, src, trigger="cli")


def stored(source_id: int) -> tuple[dict[str, Any], str]:
    with session_scope() as s:
        src = s.get(DataSource, source_id)
        assert src is not None
        assert src.credentials_encrypted is not None
        return decrypt_credentials(src.credentials_encrypted), src.credentials_encrypted


def test_a_401_refreshes_the_token_and_the_new_one_is_stored_encrypted(
    fake: FakeYouTube, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An access token revoked before its expiry: 401 UNAUTHENTICATED (QUERY_DOC), one refresh
    at the token endpoint, the report asked again, the fresh token kept (encrypted)."""
    freeze_today(monkeypatch, TODAY)
    src = youtube_source(access_token="ya29.revoked-early", expires_at=FAR_FUTURE)
    kr = make_kr()
    make_mapping(kr, src, "views")

    sync(src)

    [run] = runs(src)
    assert run.status == "succeeded", run.error
    bearers = [r.headers.get("Authorization") for r in fake.reports]
    assert bearers == ["Bearer ya29.revoked-early", "Bearer ya29.kit-access-1"]
    [refresh] = fake.tokens
    assert f"refresh_token={REFRESH_TOKEN.replace('/', '%2F')}" in refresh.content.decode()
    credentials, encrypted = stored(src)
    assert credentials["access_token"] == "ya29.kit-access-1"
    assert credentials["refresh_token"] == REFRESH_TOKEN  # Google keeps the same one
    assert credentials["client_secret"] == CREDENTIALS["client_secret"]
    assert credentials["expires_at"] > time.time() + 3000  # expires_in 3599 from now
    assert "ya29.kit-access-1" not in encrypted
    assert len(observations(kr)) == (TODAY - date(2026, 7, 1)).days


def test_an_expired_token_is_refreshed_before_the_first_report(
    fake: FakeYouTube, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """expires_at in the past: the client refreshes first and the report is asked once.

    An access token lives ``expires_in`` seconds; a refresh_token grant gets a new one
    (https://developers.google.com/identity/protocols/oauth2/web-server#offline).
    """
    freeze_today(monkeypatch, TODAY)
    src = youtube_source(access_token="ya29.expired", expires_at=1_000_000)
    kr = make_kr()
    make_mapping(kr, src, "likes")

    sync(src)

    [run] = runs(src)
    assert run.status == "succeeded", run.error
    assert [r.headers["Authorization"] for r in fake.reports] == ["Bearer ya29.kit-access-1"]
    assert stored(src)[0]["access_token"] == "ya29.kit-access-1"


def test_a_revoked_grant_fails_the_run_as_an_authentication_error(
    fake: FakeYouTube, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """invalid_grant at the token endpoint: the run fails, says to re-authorize, keeps no value.

    https://developers.google.com/identity/protocols/oauth2/web-server#offline (the refresh
    request) and https://developers.google.com/identity/protocols/oauth2#expiration.
    """
    freeze_today(monkeypatch, TODAY)
    fake.refresh_token = "only-the-new-grant"
    src = youtube_source()
    kr = make_kr()
    make_mapping(kr, src, "views")

    sync(src)

    [run] = runs(src)
    assert run.status == "failed"
    assert run.error is not None
    assert run.error.startswith("authentication failed")
    assert "yt-analytics.readonly" in run.error
    assert observations(kr) == []
