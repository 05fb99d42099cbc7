"""The ``linkedin`` connector against a fake of the Community Management API (kit_linkedin.py).

Each test cites the documentation page whose request and response shapes it reproduces.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
import sync_factories
from sync_factories import freeze_today, make_kr, make_mapping, make_source, observations, runs

from app.core import http as http_module
from app.core.db import session_scope
from app.core.vault import decrypt_credentials, encrypt_credentials
from app.models import DataSource
from connectors.base import (
    ConnectorAuthError,
    ConnectorConfigError,
    MappingError,
    MetricQuery,
    NoParams,
    RateLimited,
    Window,
)
from connectors.linkedin.connector import LinkedInConnector
from tests.connectors import (
    engine_client,
    kits,  # noqa: F401  (loads every kit first: they import kits)
)
from tests.connectors.acme import PUBLIC_IP
from tests.connectors.kit_linkedin import (
    CONFIG,
    FOLLOWERS,
    ORG,
    TOKEN,
    FakeLinkedIn,
    error,
)

WINDOW = Window(date(2026, 7, 1), date(2026, 7, 10))
TOKEN_URL = "https://www.linkedin.com/oauth/v2/accessToken"
DAY_MS = 86_400_000


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with engine_client.engine_env(monkeypatch, attempts=2, cap=True):
        yield


@pytest.fixture
def fake() -> Iterator[FakeLinkedIn]:
    with engine_client.mocked(FakeLinkedIn()) as linkedin:
        yield linkedin


@asynccontextmanager
async def connector(
    credentials: dict[str, Any] | None = None, *, today: date | None = None, **config: Any
) -> AsyncIterator[LinkedInConnector]:
    """The connector on a client built as the engine builds it (OAuth included)."""
    async with engine_client.connected(
        LinkedInConnector,
        {**CONFIG, **config},
        credentials or {"access_token": TOKEN},
        today=today,
    ) as (c, _):
        assert isinstance(c, LinkedInConnector)
        yield c


def query(metric: str, qid: str | None = None) -> MetricQuery:
    return MetricQuery(qid or metric, metric, NoParams())


def midnight_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


# --- requests and figures ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_follower_gains_are_daily_utc_and_keep_a_negative_sign(fake: FakeLinkedIn) -> None:
    """Time-bound follower statistics with ``timeGranularityType:DAY``: one element a day.

    https://learn.microsoft.com/en-us/linkedin/marketing/community-management/organizations/follower-statistics
    """
    fake.followers = lambda day: {
        "organicFollowerGain": -2 if day.day == 3 else day.day,
        "paidFollowerGain": 0,
    }
    async with connector() as c:
        result = await c.fetch(
            [query("followers.organic_gain"), query("followers.paid_gain")], WINDOW
        )

    got = engine_client.by_query(result.values)
    assert got["followers.organic_gain"][date(2026, 7, 3)] == -2.0  # more unfollows than follows
    assert got["followers.organic_gain"][date(2026, 7, 4)] == 4.0
    assert set(got["followers.paid_gain"].values()) == {0.0}  # a day without gains is a zero
    assert set(got["followers.paid_gain"]) == set(WINDOW.days())
    [call] = fake.calls("FollowerStatistics")  # both metrics from one request
    raw = call.url.query.decode()
    start, end = midnight_ms(WINDOW.start), midnight_ms(WINDOW.end) + DAY_MS
    assert f"timeIntervals=(timeRange:(start:{start},end:{end}),timeGranularityType:DAY)" in raw
    assert f"organizationalEntity=urn%3Ali%3Aorganization%3A{ORG}" in raw
    assert call.headers["LinkedIn-Version"] == "202606"
    assert call.headers["X-Restli-Protocol-Version"] == "2.0.0"
    assert not fake.calls("ShareStatistics")


@pytest.mark.anyio
async def test_the_configured_version_is_the_one_sent(fake: FakeLinkedIn) -> None:
    """Every call carries ``LinkedIn-Version: YYYYMM``, the month of the API it speaks
    (https://learn.microsoft.com/en-us/linkedin/marketing/versioning): the source's
    ``api_version``, whose sunset the source shows, and which a config change moves on."""
    async with connector(api_version="202611") as c:
        await c.fetch([query("followers.organic_gain")], WINDOW)
        await c.fetch([query("followers.total")], WINDOW)
    sent = {r.headers["LinkedIn-Version"] for r in fake.calls("FollowerStatistics")}
    sent |= {r.headers["LinkedIn-Version"] for r in fake.calls("networkSizes")}
    assert sent == {"202611"}
    config = LinkedInConnector.config_model.model_validate({**CONFIG, "api_version": "202611"})
    assert LinkedInConnector.api_version_for(config) == "202611"
    assert LinkedInConnector.api_version_sunset(config) == date(2027, 11, 1)


@pytest.mark.anyio
async def test_share_statistics_come_from_one_call(fake: FakeLinkedIn) -> None:
    """``totalShareStatistics`` per day; ``engagement`` is a rate, the rest are counts.

    https://learn.microsoft.com/en-us/linkedin/marketing/community-management/organizations/share-statistics
    """
    metrics = ["impressions", "clicks", "likes", "comments", "shares", "engagement"]
    async with connector() as c:
        result = await c.fetch([query(f"shares.{m}") for m in metrics], WINDOW)

    got = engine_client.by_query(result.values)
    day = date(2026, 7, 5)
    assert got["shares.impressions"][day] == 500.0
    assert got["shares.clicks"][day] == 10.0
    assert got["shares.likes"][day] == 5.0
    assert got["shares.comments"][day] == 1.0
    assert got["shares.shares"][day] == 0.0
    assert got["shares.engagement"][day] == 0.05
    assert len(fake.calls("ShareStatistics")) == 1
    assert not fake.calls("FollowerStatistics")


def test_engagement_is_a_rate_that_cannot_be_summed() -> None:
    """The share-statistics page defines ``engagement`` as a ratio over impressions.

    https://learn.microsoft.com/en-us/linkedin/marketing/community-management/organizations/share-statistics
    """
    with pytest.raises(MappingError) as refused:
        LinkedInConnector.validate_query("shares.engagement", {}, [], "sum")
    assert refused.value.part == "aggregation"
    assert "rate" in refused.value.message
    LinkedInConnector.validate_query("shares.engagement", {}, [], "avg")
    LinkedInConnector.validate_query("shares.impressions", {}, [], "sum")


@pytest.mark.anyio
async def test_followers_total_is_a_snapshot_from_network_sizes(fake: FakeLinkedIn) -> None:
    """``networkSizes`` with ``edgeType=COMPANY_FOLLOWED_BY_MEMBER`` answers ``firstDegreeSize``.

    https://learn.microsoft.com/en-us/linkedin/marketing/community-management/organizations/organization-lookup-api
    """
    spec = LinkedInConnector.metric_spec("followers.total")
    assert spec is not None
    assert (spec.history, spec.additive) == ("snapshot", False)
    today = Window(date(2026, 7, 11), date(2026, 7, 11))
    async with connector() as c:
        result = await c.fetch([query("followers.total", "t")], today)

    assert [(v.query_id, v.date, v.value) for v in result.values] == [
        ("t", date(2026, 7, 11), float(FOLLOWERS))
    ]
    [call] = fake.calls("networkSizes")
    assert call.url.raw_path.decode() == (
        f"/rest/networkSizes/urn%3Ali%3Aorganization%3A{ORG}?edgeType=COMPANY_FOLLOWED_BY_MEMBER"
    )


@pytest.mark.anyio
async def test_days_older_than_twelve_months_are_not_asked(fake: FakeLinkedIn) -> None:
    """Follower data runs "from 12 months ago"; share data is "a rolling 12-month window".

    https://learn.microsoft.com/en-us/linkedin/marketing/community-management/organizations/share-statistics
    """
    today = date(2026, 7, 25)  # the engine's today, not the machine's: runs agree on the date
    old = Window(today - timedelta(days=800), today - timedelta(days=700))
    straddling = Window(today - timedelta(days=400), today - timedelta(days=5))
    async with connector(today=today) as c:
        skipped = await c.fetch([query("followers.organic_gain")], old)
        clipped = await c.fetch([query("followers.organic_gain")], straddling)

    assert skipped.values == []
    assert any("12 months" in w for w in skipped.warnings)
    [call] = fake.calls("FollowerStatistics")  # only the straddling window was asked
    earliest = today - timedelta(days=364)
    assert f"start:{midnight_ms(earliest)}," in call.url.query.decode()
    assert min(v.date for v in clipped.values) == earliest
    assert any(str(earliest) in w for w in clipped.warnings)


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_daily_limit_429_is_rate_limited_until_midnight_utc(fake: FakeLinkedIn) -> None:
    """LinkedIn's limits are per day, reset at midnight UTC, and its 429 says no Retry-After.

    https://learn.microsoft.com/en-us/linkedin/shared/api-guide/concepts/rate-limits
    """
    limited = error(429, "TOO_MANY_REQUESTS", "Resource level throttle APPLICATION DAY limit")
    fake.queued += [limited, limited]  # the client's two attempts
    async with connector() as c:
        with pytest.raises(RateLimited) as raised:
            await c.fetch([query("followers.organic_gain")], WINDOW)

    now = datetime.now(UTC)
    to_midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC) - now
    assert raised.value.retry_after is not None
    assert abs(raised.value.retry_after - to_midnight.total_seconds()) < 60
    assert "midnight UTC" in raised.value.message


@pytest.mark.anyio
async def test_access_denied_names_the_permission_and_the_role(fake: FakeLinkedIn) -> None:
    """A 403 ``ACCESS_DENIED``: statistics need ``rw_organization_admin`` and an ADMINISTRATOR.

    https://learn.microsoft.com/en-us/linkedin/marketing/community-management/organizations/follower-statistics
    https://learn.microsoft.com/en-us/linkedin/shared/api-guide/concepts/error-handling
    """
    fake.queued.append(
        error(
            403,
            "ACCESS_DENIED",
            "Not enough permissions to access: organizationalEntityFollowerStatistics.GET.20260601",
            100,
        )
    )
    async with connector() as c:
        with pytest.raises(ConnectorAuthError) as denied:
            await c.fetch([query("followers.organic_gain")], WINDOW)

    assert "rw_organization_admin" in denied.value.message
    assert f"ADMINISTRATOR role on organization {ORG}" in denied.value.message
    assert "ACCESS_DENIED" in denied.value.message


@pytest.mark.anyio
async def test_a_sunset_version_asks_for_a_recent_api_version(fake: FakeLinkedIn) -> None:
    """An inactive ``LinkedIn-Version`` answers 426 ``NONEXISTENT_VERSION``.

    https://learn.microsoft.com/en-us/linkedin/marketing/versioning
    """
    fake.queued.append(error(426, "NONEXISTENT_VERSION", "Requested version 202301 is not active"))
    async with connector(api_version="202301") as c:
        with pytest.raises(ConnectorConfigError) as refused:
            await c.fetch([query("shares.clicks")], WINDOW)
    assert "`api_version`" in refused.value.message


@pytest.mark.anyio
async def test_after_expiry_a_401_says_to_reauthorize(fake: FakeLinkedIn) -> None:
    """Access tokens live 60 days; an expired one answers 401 ``EXPIRED_ACCESS_TOKEN``.

    https://learn.microsoft.com/en-us/linkedin/shared/authentication/programmatic-refresh-tokens
    https://learn.microsoft.com/en-us/linkedin/shared/api-guide/concepts/error-handling
    """
    fake.tokens = set()
    expired = datetime.now(UTC) - timedelta(days=2)
    creds = {"access_token": TOKEN, "expires_at": expired.timestamp()}
    async with connector(creds) as c:
        with pytest.raises(ConnectorAuthError) as refused:
            await c.fetch([query("followers.organic_gain")], WINDOW)
        with pytest.raises(ConnectorAuthError):
            await c.check()

    message = refused.value.message
    assert "re-authorize" in message
    assert f"expired on {expired:%Y-%m-%d}" in message
    assert "EXPIRED_ACCESS_TOKEN" in message
    assert TOKEN not in message


@pytest.mark.anyio
async def test_a_week_before_expiry_check_and_fetch_say_reauthorize(fake: FakeLinkedIn) -> None:
    """Without a refresh token the member must sign in again before the 60 days are over.

    https://learn.microsoft.com/en-us/linkedin/shared/authentication/programmatic-refresh-tokens
    """
    soon = (datetime.now(UTC) + timedelta(days=3)).date()
    later = datetime.now(UTC) + timedelta(days=30)
    async with connector({"access_token": TOKEN, "expires_at": soon.isoformat()}) as c:
        checked = await c.check()
        fetched = await c.fetch([query("shares.likes")], WINDOW)
    async with connector({"access_token": TOKEN, "expires_at": later.timestamp()}) as c:
        calm = await c.check()

    for notices in (checked.notices, fetched.notices):
        [notice] = notices
        assert f"expires on {soon}" in notice
        assert "re-authorize" in notice
    assert calm.notices == []
    assert checked.timezone == "UTC"
    assert fetched.values  # a notice warns; it doesn't stop the sync


def test_config_and_credentials_are_validated() -> None:
    """Organization ids are the digits of ``urn:li:organization:{id}``; versions are YYYYMM.

    https://learn.microsoft.com/en-us/linkedin/marketing/versioning
    """
    config = LinkedInConnector.config_model
    assert config.model_validate({"organization_id": f"urn:li:organization:{ORG}"}).organization_id
    assert config.model_validate({"organization_id": 2414183}).organization_id == ORG
    with pytest.raises(ValueError, match="numeric id"):
        config.model_validate({"organization_id": "acme-corp"})
    for bad in ("2026-06", "202613", "202600", "1999"):
        with pytest.raises(ValueError, match="api_version"):
            config.model_validate({"organization_id": ORG, "api_version": bad})
    creds = LinkedInConnector.credentials_model
    with pytest.raises(ValueError, match="client_id"):
        creds.model_validate({"access_token": "a", "refresh_token": "r"})


# --- through the engine --------------------------------------------------------------------------


def test_an_expired_token_is_refreshed_through_the_engine_and_stored_encrypted(
    fake: FakeLinkedIn, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refresh at ``www.linkedin.com/oauth/v2/accessToken`` (``grant_type=refresh_token``).

    The answer carries ``access_token``, ``expires_in``, ``refresh_token`` and
    ``refresh_token_expires_in``: the engine stores the new token encrypted, and the refresh
    token's own expiry is kept so the source can ask for a re-authorization in time.
    https://learn.microsoft.com/en-us/linkedin/shared/authentication/programmatic-refresh-tokens
    """
    resolve = http_module.resolve_host

    async def public(host: str, port: int) -> list[str]:
        return [PUBLIC_IP] if host == "www.linkedin.com" else await resolve(host, port)

    monkeypatch.setattr(http_module, "resolve_host", public)
    freeze_today(monkeypatch, date(2026, 7, 11))
    fresh = "kit-linkedin-access-token-2"
    fake.tokens = {fresh}
    stale = {
        "access_token": "kit-linkedin-access-token-1",
        "refresh_token": "kit-linkedin-refresh-token",
        "client_id": "kit-client",
        "client_secret": "kit-client-secret",
        "expires_at": (datetime.now(UTC) - timedelta(days=1)).timestamp(),
        "refresh_token_expires_at": (datetime.now(UTC) + timedelta(days=6)).timestamp(),
    }
    grant = {
        "access_token": fresh,
        "expires_in": 5_184_000,
        "refresh_token": "kit-linkedin-refresh-token",
        "refresh_token_expires_in": 345_600,
    }
    src = make_source(
        name="linkedin",
        connector="linkedin",
        config=CONFIG,
        credentials_encrypted=encrypt_credentials(stale),
    )
    kr = make_kr()
    make_mapping(kr, src, "followers.organic_gain")
    with respx.mock(assert_all_called=False) as router:
        fake.install(router)
        token = router.post(TOKEN_URL).mock(return_value=httpx.Response(200, json=grant))
        sync_factories.sync_source(src, trigger="cli")

    [run] = runs(src)
    assert run.status == "succeeded", run.error
    assert observations(kr)
    form = parse_qs(token.calls.last.request.content.decode())
    assert form["grant_type"] == ["refresh_token"]
    assert form["refresh_token"] == ["kit-linkedin-refresh-token"]
    assert form["client_id"] == ["kit-client"]
    with session_scope() as s:
        source = s.get(DataSource, src)
        assert source is not None
        encrypted = source.credentials_encrypted
        notices = (source.state or {}).get("notices", [])
    assert encrypted is not None
    assert fresh not in encrypted
    stored = decrypt_credentials(encrypted)
    assert stored["access_token"] == fresh
    assert stored["expires_at"] > datetime.now(UTC).timestamp() + 50 * 86_400
    assert stored["client_secret"] == "kit-client-secret"
    in_four_days = datetime.now(UTC).timestamp() + 345_600  # what the refresh said, not 6 days
    assert abs(stored["refresh_token_expires_at"] - in_four_days) < 120
    # The refresh token dies within the week: the source says to re-authorize.
    [notice] = notices
    assert "refresh token expires on" in notice
    assert "re-authorize" in notice


def test_a_followers_total_backfill_writes_only_the_sync_day(
    fake: FakeLinkedIn, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``networkSizes`` answers the follower count now (``firstDegreeSize``) and keeps no
    history: a backfill of June records it on the sync's day and writes June nothing.

    https://learn.microsoft.com/en-us/linkedin/marketing/community-management/organizations/organization-lookup-api
    """
    today = date(2026, 7, 11)
    freeze_today(monkeypatch, today)
    src = make_source(
        name="linkedin",
        connector="linkedin",
        config=CONFIG,
        credentials_encrypted=encrypt_credentials({"access_token": TOKEN}),
    )
    kr = make_kr(aggregation="last")
    make_mapping(kr, src, "followers.total")
    june = (date(2026, 6, 1), date(2026, 6, 30))
    sync_factories.sync_source(src, trigger="backfill", window=june)

    [run] = runs(src)
    assert run.status == "succeeded", run.error
    assert (run.window_from, run.window_to) == (today, today)
    assert any("snapshot metric" in w for w in run.warnings), run.warnings
    assert [(r[0], r[3]) for r in observations(kr)] == [(today, float(FOLLOWERS))]
    assert len(fake.calls("networkSizes")) == 1
    assert fake.calls("Statistics") == []  # no daily endpoint asked for the past days
