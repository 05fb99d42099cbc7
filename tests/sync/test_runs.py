"""The sync engine with the demo connector: windows, backfill, idempotence, SyncRun records."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient
from sync_factories import (
    freeze_today,
    make_kr,
    make_mapping,
    make_source,
    observations,
    runs,
    source,
)

from app.core.db import session_scope
from app.models import DataSource
from app.sync.engine import sync_now


def _sync(source_id: int, trigger: str = "cli", window: tuple[date, date] | None = None) -> int:
    with session_scope() as s:
        src = s.get(DataSource, source_id)
        assert src is not None
        return sync_now(s, src, trigger=trigger, window=window)


def test_first_sync_backfills_the_cycle_and_second_is_incremental(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_today(monkeypatch, date(2026, 8, 16))
    kr = make_kr()
    src = make_source()
    make_mapping(kr, src, "sessions")

    run_id = _sync(src)
    [run] = runs(src)
    assert run.id == run_id
    assert run.status == "succeeded", run.error
    assert (run.window_from, run.window_to) == (date(2026, 7, 1), date(2026, 8, 15))
    assert run.observations_written == 46
    assert run.api_calls == 0
    first = observations(kr)
    assert [r[0] for r in first] == [date(2026, 7, d) for d in range(1, 32)] + [
        date(2026, 8, d) for d in range(1, 16)
    ]
    assert {r[4] for r in first} == {run_id}
    assert source(src).last_synced_day == date(2026, 8, 15)

    second_id = _sync(src)
    second = runs(src)[-1]
    assert second.status == "succeeded"
    # last synced day minus the 3-day lookback, to yesterday
    assert (second.window_from, second.window_to) == (date(2026, 8, 12), date(2026, 8, 15))
    assert second.observations_written == 4
    again = observations(kr)
    assert [r[:4] for r in again] == [r[:4] for r in first]
    assert {r[4] for r in again if r[0] >= date(2026, 8, 12)} == {second_id}

    total = sum(r[3] for r in first)
    progress = client.get(f"/api/v1/key-results/{kr}?as_of=2026-08-15").json()["progress"]
    assert progress["current_value"] == pytest.approx(total)
    series = client.get(f"/api/v1/key-results/{kr}/series?from=2026-08-15&to=2026-08-15").json()
    assert series["points"][0]["sync_run_id"] == second_id


def test_snapshot_metric_is_recorded_on_the_day_of_the_sync(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_today(monkeypatch, date(2026, 8, 16))
    kr = make_kr(aggregation="last")
    src = make_source()
    make_mapping(kr, src, "audience_size")
    _sync(src)
    [run] = runs(src)
    assert run.status == "succeeded", run.error
    assert [r[0] for r in observations(kr)] == [date(2026, 8, 16)]
    assert any("snapshot" in w for w in run.warnings)


def test_requested_window_leaves_the_incremental_state_alone(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_today(monkeypatch, date(2026, 8, 16))
    kr = make_kr()
    src = make_source()
    make_mapping(kr, src, "sessions", backfill_pending=False)
    _sync(src, window=(date(2026, 7, 10), date(2026, 7, 12)))
    [run] = runs(src)
    assert (run.window_from, run.window_to) == (date(2026, 7, 10), date(2026, 7, 12))
    assert len(observations(kr)) == 3
    assert source(src).last_synced_day is None
