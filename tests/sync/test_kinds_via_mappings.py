"""Grouped, `each` and `ratio` key results fed through mappings give SPEC section 2's figures.

Acme answers fixed daily values (respx), the real engine syncs them, and progress is read over
the API, so every figure below can be worked by hand. The cycle is 2026-Q3 (1 July to
30 September); today is 11 July, so the first sync backfills to 10 July and ``as_of`` is 10 July:
ten days of data in the window.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import respx
import stamina
from fastapi.testclient import TestClient
from sync_factories import freeze_today, make_kr, make_mapping, make_source, runs

from app.core.db import session_scope
from app.core.settings import get_settings
from app.core.vault import encrypt_credentials
from app.models import DataSource
from app.sync.engine import sync_now
from tests.connectors.acme import ACME_URL, configure_engine
from tests.connectors.acme_fake import API_KEY, FakeAcme

TODAY = date(2026, 7, 11)
AS_OF = "2026-07-10"
DAYS = [date(2026, 7, 1) + timedelta(days=i) for i in range(10)]
PLATFORMS = {"linkedin": 30.0, "instagram": 12.0, "youtube": 45.0}  # followers gained a day
CUSTOMERS = [3, 5, 2, 4, 6, 1, 3, 5, 4, 2]  # sum 35
SESSIONS = [100, 120, 90, 110, 130, 80, 95, 105, 115, 55]  # sum 1000


@pytest.fixture(autouse=True)
def engine_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    configure_engine(monkeypatch)
    freeze_today(monkeypatch, TODAY)
    with stamina.set_testing(True, attempts=100, cap=True):
        yield
    get_settings.cache_clear()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


def acme(router: respx.MockRouter, base_url: str, name: str) -> tuple[FakeAcme, int]:
    fake = FakeAcme(base_url)
    fake.install(router)
    src = make_source(
        name=name,
        connector="acme",
        config={"base_url": base_url},
        credentials_encrypted=encrypt_credentials({"api_key": API_KEY}),
    )
    return fake, src


def sync(source_id: int) -> None:
    with session_scope() as s:
        src = s.get(DataSource, source_id)
        assert src is not None
        sync_now(s, src, trigger="cli")
    run = runs(source_id)[-1]
    assert run.status == "succeeded", run.error


def progress(client: TestClient, kr: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/key-results/{kr}?as_of={AS_OF}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()["progress"]
    return body


def followers_kr(src: int, group_rule: str) -> int:
    kr = make_kr(title="3,000 new followers on each platform", group_rule=group_rule)
    for platform in PLATFORMS:
        flt = [{"field": "platform", "op": "eq", "value": platform}]
        make_mapping(kr, src, "followers_gained", filters=flt, group=platform)
    return kr


def test_each_scores_every_platform_and_reports_the_weakest(
    client: TestClient, router: respx.MockRouter
) -> None:
    fake, src = acme(router, ACME_URL, "social")
    for platform, per_day in PLATFORMS.items():
        fake.set_series("followers_gained", dict.fromkeys(DAYS, per_day), platform=platform)
    each = followers_kr(src, "each")
    combine = followers_kr(src, "combine")
    sync(src)

    # each platform against 3,000 from 0, over ten days:
    #   linkedin 30 x 10 = 300 -> 0.10; instagram 12 x 10 = 120 -> 0.04;
    #   youtube 45 x 10 = 450 -> 0.15.  The key result is its weakest platform: instagram.
    got = progress(client, each)
    assert got["current_value"] == pytest.approx(120.0)
    assert got["progress"] == pytest.approx(0.04)
    groups = {g["group"]: (g["current_value"], g["progress"]) for g in got["groups"]}
    assert groups == {
        "instagram": (pytest.approx(120.0), pytest.approx(0.04)),
        "linkedin": (pytest.approx(300.0), pytest.approx(0.10)),
        "youtube": (pytest.approx(450.0), pytest.approx(0.15)),
    }

    # combine adds the platforms: 300 + 120 + 450 = 870 of 3,000 -> 0.29
    got = progress(client, combine)
    assert got["current_value"] == pytest.approx(870.0)
    assert got["progress"] == pytest.approx(0.29)
    assert got["last_observation_date"] == AS_OF


def test_a_ratio_takes_numerator_and_denominator_from_two_sources(
    client: TestClient, router: respx.MockRouter
) -> None:
    crm, crm_src = acme(router, "https://crm.acme.test", "crm")
    web, web_src = acme(router, "https://web.acme.test", "web")
    crm.set_series("customers", dict(zip(DAYS, map(float, CUSTOMERS), strict=True)))
    web.set_series("sessions", dict(zip(DAYS, map(float, SESSIONS), strict=True)))
    kr = make_kr(
        title="Site conversion rate from 2% to 5%",
        unit="%",
        aggregation="ratio",
        start_value=2.0,
        target_value=5.0,
    )
    make_mapping(kr, crm_src, "customers", role="numerator", scale=100.0)
    make_mapping(kr, web_src, "sessions", role="denominator")
    sync(crm_src)
    sync(web_src)

    # sum(customers) x 100 / sum(sessions) = 35 x 100 / 1000 = 3.5 %, the ratio of the sums
    # (the mean of the daily rates would be 3.39 %); progress (3.5 - 2) / (5 - 2) = 0.5
    got = progress(client, kr)
    assert got["current_value"] == pytest.approx(3.5)
    assert got["progress"] == pytest.approx(0.5)
    assert got["start_value"] == 2.0
    assert got["target_value"] == 5.0
    # the forecast of a ratio is its current value
    assert got["forecast_value"] == pytest.approx(3.5)
