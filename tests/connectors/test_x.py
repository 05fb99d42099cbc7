"""The ``x`` connector against a fake X API v2 built from the documented shapes (``kit_x.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any

import httpx
import pytest
import stamina
from sync_factories import freeze_today, make_kr, make_mapping, make_source, observations, runs

from app.core.db import session_scope
from app.core.vault import encrypt_credentials
from app.models import DataSource
from app.sync.engine import sync_now
from connectors.base import (
    ConnectorAuthError,
    ConnectorConfigError,
    MappingError,
    MetricQuery,
    RateLimited,
    Window,
)
from connectors.x import XConnector
from tests.connectors import (
    engine_client,
    kits,  # noqa: F401  (loads every kit first: they import kits)
)
from tests.connectors.kit_x import BASE_URL, BEARER, USER_ID, FakeX, public_metrics, too_many

WINDOW = Window(date(2026, 7, 1), date(2026, 7, 10))
TODAY = date(2026, 7, 11)
USER_LOOKUP = "https://docs.x.com/x-api/users/lookup/quickstart/user-lookup"
RATE_LIMITS = "https://docs.x.com/fundamentals/rate-limits"
ERRORS = "https://developer.x.com/en/support/x-api/error-troubleshooting"
METRICS = ("followers_count", "following_count", "tweet_count", "listed_count")


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with engine_client.engine_env(monkeypatch, attempts=1):
        yield


@pytest.fixture
def fake() -> Iterator[FakeX]:
    with engine_client.mocked(FakeX()) as x:
        yield x


@asynccontextmanager
async def connected(user_id: str = USER_ID) -> AsyncIterator[XConnector]:
    async with engine_client.connected(
        XConnector, {"user_id": user_id, "base_url": BASE_URL}, {"bearer_token": BEARER}
    ) as (c, _):
        assert isinstance(c, XConnector)
        yield c


def query(metric: str, qid: str = "1") -> MetricQuery:
    return MetricQuery(qid, metric, XConnector.validate_query(metric, {}, [], "last"))


def x_source(**config: Any) -> int:
    return make_source(
        name="x",
        connector="x",
        config={"user_id": USER_ID, "base_url": BASE_URL, **config},
        credentials_encrypted=encrypt_credentials({"bearer_token": BEARER}),
    )


def sync(source_id: int, window: tuple[date, date] | None = None, trigger: str = "cli") -> int:
    with session_scope() as s:
        src = s.get(DataSource, source_id)
        assert src is not None
        return sync_now(s, src, trigger=trigger, window=window)


# --- the figures ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_every_public_metric_comes_from_one_users_lookup(fake: FakeX) -> None:
    """GET /2/users/:id?user.fields=public_metrics with the bearer token (USER_LOOKUP)."""
    async with connected() as c:
        result = await c.fetch([query(m, m) for m in METRICS], WINDOW)

    [request] = fake.requests
    assert request.url.path == f"/2/users/{USER_ID}"
    assert request.url.params["user.fields"] == "public_metrics"
    assert request.headers["Authorization"] == f"Bearer {BEARER}"
    counts = public_metrics()
    assert {(v.query_id, v.date, v.value) for v in result.values} == {
        (m, WINDOW.end, float(counts[m])) for m in METRICS
    }
    assert result.details["rate_limit"]["remaining"] == 299
    assert result.details["rate_limit"]["limit"] == 300


def test_the_counts_are_snapshots_that_cannot_be_summed() -> None:
    """public_metrics tell the count now, not per day (USER_LOOKUP): snapshots, not additive."""
    for metric in METRICS:
        spec = XConnector.metric_spec(metric)
        assert spec is not None
        assert (spec.history, spec.additive) == ("snapshot", False)
    with pytest.raises(MappingError) as summed:
        XConnector.validate_query("followers_count", {}, [], "sum")
    assert summed.value.part == "aggregation"


@pytest.mark.anyio
async def test_a_count_x_no_longer_sends_fails_only_its_mapping(fake: FakeX) -> None:
    """A public_metrics object without ``listed_count`` (USER_LOOKUP shape, one field short)."""
    del fake.users[USER_ID]["public_metrics"]["listed_count"]
    async with connected() as c:
        result = await c.fetch([query("followers_count", "a"), query("listed_count", "b")], WINDOW)

    assert [v.query_id for v in result.values] == ["a"]
    assert "listed_count" in result.query_errors["b"]


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_unknown_user_is_a_config_error_naming_user_id(fake: FakeX) -> None:
    """200 with errors[{title: "Not Found Error", type: .../resource-not-found}] (USER_LOOKUP)."""
    async with connected("1122334455667788") as c:
        with pytest.raises(ConnectorConfigError) as checked:
            await c.check()
        with pytest.raises(ConnectorConfigError) as fetched:
            await c.fetch([query("followers_count")], WINDOW)

    for error in (checked.value, fetched.value):
        assert not isinstance(error, ConnectorAuthError)
        assert "`user_id`" in error.message
        assert "1122334455667788" in error.message
        assert "Could not find user" in error.message


@pytest.mark.anyio
async def test_a_refused_bearer_token_is_an_auth_error(fake: FakeX) -> None:
    """401 {"title": "Unauthorized", "type": "about:blank"} (ERRORS)."""
    fake.bearer = "a-newer-token"
    async with connected() as c:
        with pytest.raises(ConnectorAuthError) as refused:
            await c.fetch([query("followers_count")], WINDOW)

    assert "`bearer_token`" in refused.value.message
    assert BEARER not in refused.value.message


@pytest.mark.anyio
async def test_an_app_without_the_access_level_is_told_what_it_needs(fake: FakeX) -> None:
    """403 "Client Forbidden", reason client-not-enrolled (ERRORS)."""
    body = {
        "client_id": "29014421",
        "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys "
        "and tokens from a Twitter developer App that is attached to a Project.",
        "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
        "title": "Client Forbidden",
        "required_enrollment": "Appropriate Level of API Access",
        "reason": "client-not-enrolled",
        "type": "https://api.twitter.com/2/problems/client-forbidden",
    }
    fake.failures.append(httpx.Response(403, json=body))
    async with connected() as c:
        with pytest.raises(ConnectorAuthError) as refused:
            await c.fetch([query("followers_count")], WINDOW)

    assert "Client Forbidden" in refused.value.message
    assert "Project" in refused.value.message


@pytest.mark.anyio
async def test_a_429_waits_until_x_rate_limit_reset(fake: FakeX) -> None:
    """429 with x-rate-limit-reset (Unix seconds) and no Retry-After (RATE_LIMITS)."""
    fake.failures.append(too_many(fake, reset_in=120))
    async with connected() as c:
        with pytest.raises(RateLimited) as limited:
            await c.fetch([query("followers_count")], WINDOW)

    assert limited.value.retry_after is not None
    assert 115 <= limited.value.retry_after <= 121
    assert "resets in" in limited.value.message


@pytest.mark.anyio
async def test_a_reset_far_off_is_not_retried_blind(fake: FakeX) -> None:
    """X's 15-minute windows come back only at x-rate-limit-reset (RATE_LIMITS): the client
    reads that header as its Retry-After, so a reset past its own cap goes straight to the
    connector instead of spending more calls of the window on backoff retries."""
    fake.failures.extend(too_many(fake, reset_in=900) for _ in range(4))
    with stamina.set_testing(True, attempts=4):
        async with engine_client.connected(
            XConnector, {"user_id": USER_ID, "base_url": BASE_URL}, {"bearer_token": BEARER}
        ) as (x, http):
            with pytest.raises(RateLimited) as limited:
                await x.fetch([query("followers_count")], WINDOW)
            assert http.stats.requests == 1
    assert limited.value.retry_after is not None
    assert 890 <= limited.value.retry_after <= 901


@pytest.mark.anyio
async def test_no_call_remaining_closes_the_endpoint_until_the_reset(fake: FakeX) -> None:
    """A 200 with ``x-rate-limit-remaining: 0``: the window's calls are spent until
    ``x-rate-limit-reset``, and the next call would be a 429. A reset 15 minutes away is the
    engine's to wait out: the next fetch and check send nothing and say how long.

    https://docs.x.com/fundamentals/rate-limits (RATE_LIMITS: the headers, 15-minute windows)
    """
    fake.remaining = 0
    async with engine_client.connected(
        XConnector, {"user_id": USER_ID, "base_url": BASE_URL}, {"bearer_token": BEARER}
    ) as (x, http):
        first = await x.fetch([query("followers_count")], WINDOW)
        with pytest.raises(RateLimited) as fetched:
            await x.fetch([query("followers_count")], WINDOW)
        with pytest.raises(RateLimited) as checked:
            await x.check()
        assert http.stats.requests == 1

    assert first.details["rate_limit"]["remaining"] == 0
    assert len(fake.requests) == 1
    for limited in (fetched.value, checked.value):
        assert limited.retry_after is not None
        assert 890 <= limited.retry_after <= 901
        assert "x-rate-limit-remaining: 0" in limited.message


@pytest.mark.anyio
async def test_a_reset_close_by_is_waited_for_before_the_next_call(fake: FakeX) -> None:
    """``remaining: 0`` with the reset a second away (RATE_LIMITS): the next call waits for the
    reset instead of being sent into a spent window, then goes out and is answered."""
    fake.remaining, fake.reset_in = 0, 1
    async with connected() as c:
        first = await c.fetch([query("followers_count")], WINDOW)
        fake.remaining, fake.reset_in = 299, 900  # X's next window
        result = await c.fetch([query("tweet_count")], WINDOW)

    reset = datetime.fromisoformat(first.details["rate_limit"]["reset"]).timestamp()
    assert len(fake.requests) == 2
    assert fake.sent_at[1] >= reset
    assert [v.value for v in result.values] == [float(public_metrics()["tweet_count"])]


@pytest.mark.anyio
async def test_after_a_429_the_next_fetch_waits_without_calling(fake: FakeX) -> None:
    """A 429 says ``remaining: 0`` too (RATE_LIMITS): a fetch tried again before the reset is
    held back without a request, so the spent window is not asked a second time."""
    fake.failures.append(too_many(fake, reset_in=600))
    async with connected() as c:
        with pytest.raises(RateLimited):
            await c.fetch([query("followers_count")], WINDOW)
        with pytest.raises(RateLimited) as again:
            await c.fetch([query("followers_count")], WINDOW)

    assert len(fake.requests) == 1
    assert again.value.retry_after is not None
    assert 590 <= again.value.retry_after <= 601


# --- through the engine -----------------------------------------------------------------------


def test_a_backfill_writes_nothing_for_past_days(
    fake: FakeX, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The count now lands on the sync's day; a backfill of July says so and writes July nothing.

    Shapes: USER_LOOKUP (public_metrics, the figure now).
    """
    freeze_today(monkeypatch, TODAY)
    src = x_source()
    kr = make_kr(aggregation="last")
    make_mapping(kr, src, "followers_count")

    sync(src)  # the mapping's backfill
    sync(src, window=(date(2026, 7, 1), date(2026, 7, 10)), trigger="backfill")

    first, backfill = runs(src)
    assert (first.status, backfill.status) == ("succeeded", "succeeded")
    assert any("snapshot metric" in w for w in first.warnings), first.warnings
    assert (backfill.window_from, backfill.window_to) == (TODAY, TODAY)
    rows = observations(kr)
    assert [(r[0], r[3]) for r in rows] == [(TODAY, 583_423.0)]
    assert len(fake.requests) == 2  # one lookup per run, whatever the window


def test_a_drop_in_followers_is_recorded_as_it_is(
    fake: FakeX, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Followers can fall: the next day's snapshot is lower, and the series shows the loss.

    ``public_metrics`` are the account's counts when asked, with no history (USER_LOOKUP).
    """
    src = x_source()
    kr = make_kr(aggregation="last")
    make_mapping(kr, src, "followers_count")
    freeze_today(monkeypatch, date(2026, 7, 11))
    fake.users[USER_ID]["public_metrics"] = public_metrics(followers=1000)
    sync(src)
    freeze_today(monkeypatch, date(2026, 7, 12))
    fake.users[USER_ID]["public_metrics"] = public_metrics(followers=988)
    sync(src)

    assert [(r[0], r[3]) for r in observations(kr)] == [
        (date(2026, 7, 11), 1000.0),
        (date(2026, 7, 12), 988.0),
    ]


def test_a_rate_limit_is_waited_out_by_the_engine_until_the_reset(
    fake: FakeX, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """429s past the client's own retries: the run waits for x-rate-limit-reset (RATE_LIMITS).

    stamina's testing mode zeroes the client's and the engine's waits, so the connector's own
    hold on the spent endpoint is what keeps the next request until the (one second) reset.
    """
    freeze_today(monkeypatch, TODAY)
    src = x_source()
    kr = make_kr(aggregation="last")
    make_mapping(kr, src, "tweet_count")
    fake.failures.extend(too_many(fake, reset_in=1) for _ in range(3))
    handed_over = int(fake.failures[1].headers["x-rate-limit-reset"])

    with stamina.set_testing(True, attempts=2):
        sync(src)

    [run] = runs(src)
    assert run.status == "succeeded", run.error
    assert run.details["rate_limited"] == 3
    assert [(r[0], r[3]) for r in observations(kr)] == [(TODAY, 14_052.0)]
    # 429, the client's retry 429 (handed to the connector), then after the reset: 429, 200.
    assert len(fake.sent_at) == 4
    assert fake.sent_at[2] >= handed_over
