"""The ``hubspot`` connector run by the real sync engine: tokens, quotas and permissions.

Runs go through ``sync_now`` with :class:`FakeHubSpot` behind respx, so the engine's client
(retries, Authlib refresh, encrypted storage of refreshed tokens, error classification) is the
one in the path. Each test cites the HubSpot page whose behaviour it plays.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sync_factories import freeze_today, make_kr, make_mapping, make_source, observations, runs

from app.core.db import session_scope
from app.core.vault import decrypt_credentials, encrypt_credentials
from app.models import DataSource
from app.sources.check import check_source
from app.sync.engine import sync_now

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
    rate_limited,
)

TODAY = date(2026, 7, 11)
FAR_FUTURE = 4_102_444_800  # 2100-01-01: only a 401 makes the client refresh
LONG_AGO = 1_700_000_000  # 2023-11-14: expired, so the client refreshes before its first call
WON = [{"field": "dealstage", "op": "eq", "value": "closedwon"}]


@pytest.fixture(autouse=True)
def engine_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    freeze_today(monkeypatch, TODAY)
    with engine_client.engine_env(monkeypatch, attempts=100, cap=True):
        yield


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    account = FakeHubSpot()
    for day in (date(2026, 7, 2), date(2026, 7, 2), date(2026, 7, 9)):
        account.add("deals", closedate=f"{day.isoformat()}T15:00:00.000Z", dealstage="closedwon")
    with engine_client.mocked(account):
        yield account


def source(credentials: dict[str, Any]) -> tuple[int, int]:
    """A HubSpot source counting won deals by close date; returns (source id, key result id)."""
    src = make_source(
        name="hubspot",
        connector="hubspot",
        config={"base_url": BASE_URL},
        credentials_encrypted=encrypt_credentials(credentials),
    )
    kr = make_kr(title="Deals won")
    make_mapping(kr, src, "deals.count", params={"date_property": "closedate"}, filters=WON)
    return src, kr


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


def oauth(access_token: str, expires_at: int) -> dict[str, Any]:
    return {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
        "access_token": access_token,
        "expires_at": expires_at,
    }


def figures(kr: int) -> dict[date, float]:
    return {row[0]: row[3] for row in observations(kr)}


def test_an_expired_oauth_token_is_refreshed_first_and_stored_encrypted(
    fake: FakeHubSpot,
) -> None:
    """An access token lives 30 minutes (``expires_in: 1800``,
    https://developers.hubspot.com/docs/api/oauth/tokens): one past its ``expires_at`` is
    refreshed before any search, and the new one is stored encrypted."""
    src, kr = source(oauth("hubspot-access-expired-0", LONG_AGO))

    sync(src)

    [run] = runs(src)
    assert run.status == "succeeded", run.error
    assert figures(kr) == {date(2026, 7, 2): 2.0, date(2026, 7, 9): 1.0}
    [refresh] = fake.requests("token")
    assert f"refresh_token={REFRESH_TOKEN}" in refresh.content.decode()
    sent = {r.headers["Authorization"] for r in fake.requests("search")}
    assert sent == {"Bearer hubspot-access-1-c3d4e5"}
    credentials, encrypted = stored(src)
    assert credentials["access_token"] == "hubspot-access-1-c3d4e5"
    assert credentials["expires_at"] > LONG_AGO
    assert credentials["refresh_token"] == REFRESH_TOKEN  # HubSpot keeps the refresh token
    assert credentials["client_secret"] == CLIENT_SECRET
    assert "hubspot-access-1-c3d4e5" not in encrypted


def test_a_token_revoked_before_its_expiry_is_refreshed_after_the_401(fake: FakeHubSpot) -> None:
    """A 401 ``INVALID_AUTHENTICATION``
    (https://developers.hubspot.com/docs/api-reference/error-handling) to a token that should
    still live: refreshed once through ``/oauth/v1/token``, and the search asked again."""
    src, kr = source(oauth("hubspot-access-revoked", FAR_FUTURE))

    sync(src)

    [run] = runs(src)
    assert run.status == "succeeded", run.error
    assert figures(kr) == {date(2026, 7, 2): 2.0, date(2026, 7, 9): 1.0}
    auth = [r.headers["Authorization"] for r in fake.requests("search")]
    assert auth == ["Bearer hubspot-access-revoked", "Bearer hubspot-access-1-c3d4e5"]
    assert stored(src)[0]["access_token"] == "hubspot-access-1-c3d4e5"


def test_a_refused_refresh_token_fails_the_run_asking_to_reconnect(fake: FakeHubSpot) -> None:
    """``BAD_REFRESH_TOKEN`` from https://developers.hubspot.com/docs/api/oauth/tokens: nothing
    to retry, the app has to be connected again."""
    fake.refresh_tokens.clear()
    src, kr = source(oauth("hubspot-access-expired-0", LONG_AGO))

    sync(src)

    [run] = runs(src)
    assert run.status == "failed"
    assert run.error is not None
    assert run.error.startswith("authentication failed")
    assert "reconnect" in run.error
    assert CLIENT_SECRET not in run.error
    assert REFRESH_TOKEN not in run.error
    assert observations(kr) == []


def test_the_daily_limit_fails_the_run_without_waiting(fake: FakeHubSpot) -> None:
    """429 with ``policyName: DAILY`` (https://developers.hubspot.com/docs/api/usage-details):
    the engine must not spend its rate-limit budget on a quota that resets at midnight."""
    src, kr = source({"access_token": TOKEN})
    fake.fail("search", *[rate_limited("DAILY")] * 4)

    sync(src)

    [run] = runs(src)
    assert run.status == "failed"
    assert run.error is not None
    assert "daily API limit" in run.error
    assert run.error.startswith("temporary failure")
    # One call: no client retry and no second fetch spent on a quota used up for today.
    assert len(fake.requests("search")) == 1
    assert observations(kr) == []


def test_a_lasting_ten_secondly_limit_is_waited_out_by_the_engine(fake: FakeHubSpot) -> None:
    """429 ``TEN_SECONDLY_ROLLING`` (https://developers.hubspot.com/docs/api/usage-details) past
    the client's attempts: the connector says how long to wait, the engine waits and fetches
    again."""
    src, kr = source({"access_token": TOKEN})
    limited = rate_limited(**{"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
    fake.fail("search", *[limited] * 4)

    sync(src)

    [run] = runs(src)
    assert run.status == "succeeded", run.error
    assert run.details["rate_limited"] == 4
    assert run.details["fetch_calls"] == 1
    assert figures(kr) == {date(2026, 7, 2): 2.0, date(2026, 7, 9): 1.0}


def test_a_missing_scope_fails_the_run_naming_the_scope_to_add() -> None:
    """403 ``MISSING_SCOPES`` (https://developers.hubspot.com/docs/api-reference/error-handling):
    a permission problem, classified as one, with the scope to grant."""
    fake = FakeHubSpot(scopes=[READ_SCOPES["contacts"]])
    with engine_client.mocked(fake):
        src, _ = source({"access_token": TOKEN})
        sync(src)

    [run] = runs(src)
    assert run.status == "failed"
    assert run.error is not None
    assert run.error.startswith("authentication failed")
    assert "`crm.objects.deals.read`" in run.error
    assert "(fix the source's credentials)" in run.error


def test_a_check_adopts_the_accounts_timezone(fake: FakeHubSpot) -> None:
    """``timeZone`` of https://developers.hubspot.com/docs/api/settings/account-information-api
    is the one HubSpot reports days in."""
    src, _ = source({"access_token": TOKEN})
    with session_scope() as s:
        row = s.get(DataSource, src)
        assert row is not None
        ok, message = check_source(s, row)
        zone = row.timezone

    assert ok, message
    assert zone == "US/Eastern"


def test_a_day_whose_only_deal_left_closed_won_is_no_longer_counted(fake: FakeHubSpot) -> None:
    """Deals change stage after the fact (https://developers.hubspot.com/docs/api/crm/search:
    the search answers with what matches now). The lookback re-reads the days, and a day the
    search no longer returns must not keep its old count."""
    src, kr = source({"access_token": TOKEN})
    sync(src)
    assert figures(kr) == {date(2026, 7, 2): 2.0, date(2026, 7, 9): 1.0}

    [moved] = [
        d for d in fake.records["deals"] if d["properties"]["closedate"].startswith("2026-07-09")
    ]
    moved["properties"]["dealstage"] = "closedlost"
    # Another deal in the window shows the answer is real (an empty one clears nothing).
    fake.add("deals", closedate="2026-07-08T15:00:00.000Z", dealstage="closedwon")
    # The nightly window: the last synced day (10 July) less the 3-day lookback, widened to
    # HubSpot's 7 settle days (11 July - 7 = 4 July).
    sync(src)

    assert figures(kr) == {date(2026, 7, 2): 2.0, date(2026, 7, 8): 1.0}
    [_, second] = runs(src)
    assert second.status == "succeeded", second.error
    assert (second.window_from, second.window_to) == (date(2026, 7, 4), date(2026, 7, 10))


def test_a_sum_of_deal_amounts_in_two_currencies_warns_on_the_run(fake: FakeHubSpot) -> None:
    """``amount`` is in each deal's ``deal_currency_code``; ``amount_in_home_currency`` is the
    same in the company currency
    (https://knowledge.hubspot.com/properties/hubspots-default-deal-properties, searched through
    https://developers.hubspot.com/docs/api/crm/search). The run keeps the figure it was asked
    for and says, on the SyncRun, which property gives one currency."""
    for amount, code, home in (("1000", "USD", "1000"), ("800", "EUR", "864")):
        fake.add(
            "deals",
            closedate="2026-07-03T15:00:00.000Z",
            dealstage="closedwon",
            amount=amount,
            deal_currency_code=code,
            amount_in_home_currency=home,
        )
    src, _ = source({"access_token": TOKEN})
    amount_kr = make_kr(title="Won revenue")
    home_kr = make_kr(title="Won revenue, company currency")
    for key_result, prop in ((amount_kr, "amount"), (home_kr, "amount_in_home_currency")):
        make_mapping(
            key_result,
            src,
            "deals.sum",
            params={"date_property": "closedate", "property": prop},
            filters=WON,
        )

    sync(src)

    [run] = runs(src)
    assert run.status == "succeeded", run.error
    # The fixture's other won deals have no amount: their days sum to nothing.
    others = {date(2026, 7, 2): 0.0, date(2026, 7, 9): 0.0}
    assert figures(amount_kr) == {date(2026, 7, 3): 1800.0} | others  # as asked, warned about
    assert figures(home_kr) == {date(2026, 7, 3): 1864.0} | others
    [warning] = [w for w in run.warnings if "currencies" in w]
    assert "`amount` values summed here are in 2 currencies (EUR, USD)" in warning
    assert "sum `amount_in_home_currency`" in warning
