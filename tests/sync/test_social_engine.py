"""Email and social connectors run by the real sync engine (``app/sync/engine.py``).

What only shows once the engine is in the path: how it cuts a long window for a connector's
``max_window_days`` (Meta), and which of a connector's warnings end up on the SyncRun an admin
reads over the API (Mailchimp). The platforms are the connector kits' fakes behind respx, each
built from its vendor's documented shapes; each test cites the page it reproduces.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
import sync_factories
from fastapi.testclient import TestClient
from sync_factories import freeze_today, make_kr, make_mapping, make_source, observations, runs

from app.core.vault import encrypt_credentials
from connectors.base import Window
from connectors.meta.models import PAGE_WINDOW_DAYS

# kits.py imports every kit_*.py: loaded first, it finds each kit's KIT defined.
from tests.connectors import (
    engine_client,
    kits,  # noqa: F401
)
from tests.connectors.kit_mailchimp import API_KEY, LAST_DAY, LIST_ID, FakeMailchimp, days_until
from tests.connectors.kit_mailchimp import BASE_URL as MAILCHIMP_URL
from tests.connectors.kit_meta import CONFIG as META_CONFIG
from tests.connectors.kit_meta import PAGE, VERSION, FakeGraph, pacific_day
from tests.connectors.kit_meta import TOKEN as META_TOKEN

PACIFIC = "America/Los_Angeles"


@pytest.fixture(autouse=True)
def engine_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with engine_client.engine_env(monkeypatch, attempts=1):
        yield


# --- Meta: windows of at most 90 days ----------------------------------------------------------


def test_a_meta_backfill_past_ninety_days_is_asked_in_parts_of_ninety(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Page insights take a since/until range of at most 90 days a call: a 191-day backfill
    reaches the connector as three windows (90 + 90 + 11 days), every insights request spans
    90 Pacific days at most, and every day of the backfill is stored.

    https://developers.facebook.com/docs/graph-api/reference/page/insights/ (since/until,
    ``period=day``); ``end_time`` closes each Pacific day
    (https://developers.facebook.com/docs/platforminsights/page).
    """
    freeze_today(monkeypatch, date(2026, 7, 11))
    window = Window(date(2026, 1, 1), date(2026, 7, 10))  # 191 days, across March's DST change
    assert window.num_days == 191
    src = make_source(
        name="meta",
        connector="meta",
        config=META_CONFIG,
        credentials_encrypted=encrypt_credentials({"access_token": META_TOKEN}),
        timezone=PACIFIC,
    )
    kr = make_kr()
    make_mapping(kr, src, "page.page_post_engagements")
    # The fake answers any range in one page: only the windows asked bound what a call spans.
    with engine_client.mocked(FakeGraph(page_days=400)) as graph:
        sync_factories.sync_source(src, trigger="backfill", window=(window.start, window.end))

    [run] = runs(src)
    assert run.status == "succeeded", run.error
    assert run.details["fetch_calls"] == 3  # the engine's split: 90 + 90 + 11 days
    spans = []
    for call in graph.insight_calls():
        assert call.url.path == f"/{VERSION}/{PAGE}/insights"
        first = pacific_day(int(call.url.params["since"]))
        stop = pacific_day(int(call.url.params["until"]))  # the Pacific midnight after the last
        assert 0 < (stop - first).days <= PAGE_WINDOW_DAYS == 90
        spans.append((first, stop - timedelta(days=1)))
    assert spans == [
        (date(2026, 1, 1), date(2026, 3, 31)),
        (date(2026, 4, 1), date(2026, 6, 29)),
        (date(2026, 6, 30), date(2026, 7, 10)),
    ]
    stored = observations(kr)
    assert [r[0] for r in stored] == list(window.days())
    assert all(r[3] == float(r[0].day) for r in stored)  # the fake's figure: the day of month


# --- Mailchimp: activity reaches back about 180 days ---------------------------------------------


def test_a_mailchimp_backfill_past_its_activity_says_so_on_the_sync_run(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """List activity covers "up to the previous 180 days": a sync asked over the API for
    December and January gets the January days Mailchimp still has, and the run, read back
    over the API, says which days don't exist instead of storing zeros for them.

    https://mailchimp.com/developer/marketing/api/list-activity/ (``GET /lists/{list_id}/
    activity``); ``date_created``: https://mailchimp.com/developer/marketing/api/lists/
    """
    freeze_today(monkeypatch, LAST_DAY + timedelta(days=1))
    oldest = LAST_DAY - timedelta(days=179)  # 13 January 2026
    src = make_source(
        name="mailchimp",
        connector="mailchimp",
        config={"list_id": LIST_ID, "base_url": MAILCHIMP_URL},
        credentials_encrypted=encrypt_credentials({"api_key": API_KEY}),
    )
    kr = make_kr()
    make_mapping(kr, src, "audience.subscribed")
    with engine_client.mocked(FakeMailchimp(activity_days=days_until(LAST_DAY, 180))):
        started = client.post(
            f"/api/v1/data-sources/{src}/sync", json={"from": "2025-12-01", "to": "2026-01-31"}
        )
        assert started.status_code == 202, started.text
        read = client.get(f"/api/v1/sync-runs/{started.json()['id']}")

    assert read.status_code == 200, read.text
    run = read.json()
    assert run["status"] == "succeeded", run["error"]
    assert (run["window_from"], run["window_to"]) == ("2025-12-01", "2026-01-31")
    [warning] = run["warnings"]
    assert "about the last 180 days" in warning
    assert f"its oldest day is {oldest}" in warning
    assert f"from 2025-12-01 to {oldest - timedelta(days=1)} don't exist" in warning
    stored = observations(kr)
    assert [r[0] for r in stored] == list(Window(oldest, date(2026, 1, 31)).days())
    assert run["observations_written"] == len(stored) == 19
