"""What a connector says beside its figures reaches the SyncRun and the source, secrets masked.

Platform quotas (GA4 tokens left, Salesforce's ``Sforce-Limit-Info``) belong on the run that spent
them; a token about to expire belongs on the source, where an admin looks before it breaks.
Warnings and the run's error may quote a platform, which may echo a secret: masked too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import pytest
import sync_factories
from fastapi.testclient import TestClient
from sync_factories import freeze_today, make_kr, make_mapping, make_source, observations, runs

from app.core.db import session_scope
from app.core.redact import register_secrets
from app.models import DataSource
from app.sync.errors import classify
from connectors.base import CheckResult, FetchResult, MetricQuery, RetriableError, Window
from connectors.demo import DemoConnector
from connectors.testing import leaked, split_masks

SECRET = "platform-notes-canary-0123456789"


@pytest.fixture
def chatty(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo connector, reporting a quota and a notice, one of them quoting a secret."""
    register_secrets([SECRET])
    fetch = DemoConnector.fetch

    async def noted_fetch(
        self: DemoConnector, queries: Sequence[MetricQuery], window: Window
    ) -> FetchResult:
        result = await fetch(self, queries, window)
        result.details = {"quota": {"tokensPerDay": {"consumed": 7, "remaining": 24993}}}
        result.notices = [f"re-authorize before 2026-09-01 (token {SECRET})"]
        result.warnings = [f"the platform said: key {SECRET} is read-only"]
        return result

    async def noted_check(self: DemoConnector) -> CheckResult:
        return CheckResult(message="ok", notices=["re-authorize before 2026-09-01"])

    monkeypatch.setattr(DemoConnector, "fetch", noted_fetch)
    monkeypatch.setattr(DemoConnector, "check", noted_check)


def test_details_land_on_the_run_and_notices_on_the_source(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, chatty: Any
) -> None:
    freeze_today(monkeypatch, date(2026, 8, 16))
    src = make_source()
    make_mapping(make_kr(), src, "sessions")
    sync_factories.sync_source(src, trigger="cli")

    [run] = runs(src)
    assert run.status == "succeeded", run.error
    assert run.details["platform"] == {
        "quota": {"tokensPerDay": {"consumed": 7, "remaining": 24993}}
    }
    assert run.warnings == ["the platform said: key *** is read-only"]
    api_run = client.get(f"/api/v1/sync-runs/{run.id}").json()
    assert api_run["details"]["platform"]["quota"]["tokensPerDay"]["remaining"] == 24993
    assert SECRET not in str(api_run)

    body = client.get(f"/api/v1/data-sources/{src}").json()
    assert body["notices"] == ["re-authorize before 2026-09-01 (token ***)"]
    assert SECRET not in str(body)


def test_a_check_replaces_the_notices(client: TestClient, chatty: Any) -> None:
    src = make_source()
    with session_scope() as s:
        source = s.get(DataSource, src)
        assert source is not None
        source.state = {"notices": ["an old notice"]}
    answer = client.post(f"/api/v1/data-sources/{src}/test").json()
    assert answer == {"ok": True, "message": "ok", "notices": ["re-authorize before 2026-09-01"]}
    assert client.get(f"/api/v1/data-sources/{src}").json()["notices"] == [
        "re-authorize before 2026-09-01"
    ]


def test_a_complete_answer_replaces_the_window_and_a_failed_run_clears_nothing(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connector that answers a window completely (CRM counts) may drop a day: it goes."""
    freeze_today(monkeypatch, date(2026, 8, 16))
    src = make_source()
    kr = make_kr()
    make_mapping(kr, src, "sessions")
    sync_factories.sync_source(src, trigger="cli")  # the backfill: 1 July .. 15 August
    before = {row[0]: row[3] for row in observations(kr)}
    assert len(before) == 46

    fetch = DemoConnector.fetch

    async def odd_days_only(
        self: DemoConnector, queries: Sequence[MetricQuery], window: Window
    ) -> FetchResult:
        result = await fetch(self, queries, window)
        result.values = [v for v in result.values if v.date.day % 2]
        result.complete = {q.id for q in queries}
        return result

    monkeypatch.setattr(DemoConnector, "fetch", odd_days_only)
    window = (date(2026, 8, 1), date(2026, 8, 10))
    sync_factories.sync_source(src, trigger="cli", window=window)
    after = {row[0]: row[3] for row in observations(kr)}
    gone = {date(2026, 8, d) for d in (2, 4, 6, 8, 10)}
    assert set(after) == set(before) - gone
    assert all(after[d] == before[d] for d in after)

    async def broken(self: DemoConnector, queries: Sequence[MetricQuery], window: Window) -> Any:
        raise RuntimeError("the platform fell over mid-run")

    monkeypatch.setattr(DemoConnector, "fetch", broken)
    sync_factories.sync_source(src, trigger="cli", window=(date(2026, 7, 1), date(2026, 8, 15)))
    assert runs(src)[-1].status == "failed"
    assert {row[0]: row[3] for row in observations(kr)} == after


def test_a_run_error_is_masked_before_it_is_cut() -> None:
    """A run's error is kept to 2,000 characters: the cut never leaves a piece of a secret."""
    register_secrets([SECRET])
    for offset in range(1940, 2001):
        error = RetriableError("e" * offset + " ".join([SECRET] * 5))

        stored = classify(error)

        assert leaked(stored, SECRET) == [], offset
        assert split_masks(stored) == [], offset
