"""Provisional days (SPEC section 4, `settle_days`): re-read by every sync, marked in every read.

The demo connector settles in 2 days, like GA4 (whose sessions it imitates): on 2026-08-16 its
14th and 15th may still move and its 13th is final. Syncs here run on the engine's frozen clock
(noon UTC), and reads ask for an explicit `as_of`, so the figures are worked out by hand.
"""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sync_factories import freeze_today, make_kr, make_mapping, make_source, runs, sync_source

from app.models import Cycle, DataSource, KeyResult, Mapping
from app.sync.plan import incremental_window, plan_run
from connectors.demo import DemoConnector
from connectors.meta.connector import MetaConnector

TODAY = date(2026, 8, 16)


def _synced_kr(monkeypatch: pytest.MonkeyPatch, *, timezone: str = "UTC") -> tuple[int, int]:
    """A `sessions` key result backfilled from a demo source on TODAY: (kr id, source id)."""
    freeze_today(monkeypatch, TODAY)
    kr = make_kr()
    src = make_source(name=f"demo {timezone}", timezone=timezone)
    make_mapping(kr, src, "sessions")
    sync_source(src)
    assert runs(src)[-1].status == "succeeded", runs(src)[-1].error
    return kr, src


def test_the_demo_settles_in_two_days() -> None:
    spec = DemoConnector.metric_spec("sessions")
    assert spec is not None
    assert DemoConnector.settle_days_of(spec) == 2


def test_series_marks_the_days_inside_settle_days_json_and_csv(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    kr, _ = _synced_kr(monkeypatch)
    url = f"/api/v1/key-results/{kr}/series"
    window = {"from": "2026-08-12", "to": "2026-08-15"}
    points = client.get(url, params=window).json()["points"]
    # today 08-16 - 2 settle days = 08-14: the 14th and 15th are provisional.
    assert [(p["date"], p["provisional"]) for p in points] == [
        ("2026-08-12", False),
        ("2026-08-13", False),
        ("2026-08-14", True),
        ("2026-08-15", True),
    ]
    rows = list(
        csv.DictReader(io.StringIO(client.get(url, params=window | {"format": "csv"}).text))
    )
    assert [(r["date"], r["provisional"]) for r in rows] == [
        ("2026-08-12", "false"),
        ("2026-08-13", "false"),
        ("2026-08-14", "true"),
        ("2026-08-15", "true"),
    ]


def test_provisional_days_are_counted_in_the_sources_timezone(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Noon UTC on 08-16 is 02:00 on 08-17 at UTC+14: that source's today is the 17th, so its
    # yesterday (the 16th) is synced, and the 15th and 16th are the provisional days.
    kr, _ = _synced_kr(monkeypatch, timezone="Pacific/Kiritimati")
    points = client.get(
        f"/api/v1/key-results/{kr}/series", params={"from": "2026-08-14", "to": "2026-08-16"}
    ).json()["points"]
    assert [(p["date"], p["provisional"]) for p in points] == [
        ("2026-08-14", False),
        ("2026-08-15", True),
        ("2026-08-16", True),
    ]


def test_progress_blocks_carry_provisional_from(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    kr, _ = _synced_kr(monkeypatch)
    read = client.get(f"/api/v1/key-results/{kr}", params={"as_of": "2026-08-15"}).json()
    assert read["progress"]["provisional_from"] == "2026-08-14"
    # On the 14th, W ends there: the 14th is still the earliest provisional day in it.
    on_14th = client.get(f"/api/v1/key-results/{kr}", params={"as_of": "2026-08-14"}).json()
    assert on_14th["progress"]["provisional_from"] == "2026-08-14"
    # On the 13th every figure in W is final.
    on_13th = client.get(f"/api/v1/key-results/{kr}", params={"as_of": "2026-08-13"}).json()
    assert on_13th["progress"]["provisional_from"] is None
    objective = client.get(
        f"/api/v1/objectives/{read['objective_id']}", params={"as_of": "2026-08-15"}
    ).json()
    assert objective["progress"]["provisional_from"] == "2026-08-14"
    assert objective["key_results"][0]["progress"]["provisional_from"] == "2026-08-14"
    dashboard = client.get(
        "/api/v1/dashboard", params={"cycle_id": objective["cycle_id"], "as_of": "2026-08-15"}
    ).json()
    [obj] = dashboard["objectives"]
    assert obj["key_results"][0]["progress"]["provisional_from"] == "2026-08-14"
    # The dashboard page says so beside the figure.
    page = client.get("/", params={"cycle_id": objective["cycle_id"], "as_of": "2026-08-15"})
    block = page.text.split(f'id="kr-{kr}"', 1)[1].split("</li>", 1)[0]
    assert "provisional since 2026-08-14" in block


def test_a_later_day_settles_what_was_provisional(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    kr, _ = _synced_kr(monkeypatch)
    freeze_today(monkeypatch, date(2026, 8, 20))  # 08-20 - 2 = 08-18: the 14th and 15th settled
    read = client.get(f"/api/v1/key-results/{kr}", params={"as_of": "2026-08-15"}).json()
    assert read["progress"]["provisional_from"] is None
    points = client.get(
        f"/api/v1/key-results/{kr}/series", params={"from": "2026-08-14", "to": "2026-08-15"}
    ).json()["points"]
    assert [p["provisional"] for p in points] == [False, False]


def test_the_incremental_run_rereads_the_settle_days_whatever_the_lookback(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # lookback 0 reads from the last synced day (08-15) alone; the demo's 2 settle days make it
    # start on 08-14 (today 08-16 - 2), so both provisional days are read again.
    freeze_today(monkeypatch, TODAY)
    kr = make_kr()
    src = make_source(lookback_days=0)
    make_mapping(kr, src, "sessions")
    sync_source(src)
    sync_source(src)
    second = runs(src)[-1]
    assert second.status == "succeeded", second.error
    assert (second.window_from, second.window_to) == (date(2026, 8, 14), date(2026, 8, 15))


def _source(lookback: int, last_synced: date | None) -> DataSource:
    return DataSource(
        name="s", connector="meta", config={}, lookback_days=lookback, last_synced_day=last_synced
    )


@pytest.mark.parametrize(
    ("lookback", "last_synced", "settle", "start"),
    [
        # 08-15 - 3 = 08-12; 2 settle days need only 08-14: the lookback wins.
        (3, date(2026, 8, 15), 2, date(2026, 8, 12)),
        # 28 settle days need 08-15 - 27 = 07-19, earlier than 08-12.
        (3, date(2026, 8, 15), 28, date(2026, 7, 19)),
        # Nothing settles: the lookback alone, as before.
        (0, date(2026, 8, 15), 0, date(2026, 8, 15)),
        # A first sync looks back 30 days (07-17), and 28 fit in them.
        (3, None, 28, date(2026, 7, 17)),
    ],
)
def test_incremental_window_starts_at_the_earlier_of_lookback_and_settle_days(
    lookback: int, last_synced: date | None, settle: int, start: date
) -> None:
    yesterday = date(2026, 8, 15)
    assert incremental_window(_source(lookback, last_synced), yesterday, settle) == (
        start,
        yesterday,
    )


def test_settle_days_are_not_read_before_anything_needs_them() -> None:
    # A cycle that started on 08-10 needs nothing before it: 28 settle days would reach 07-19,
    # the re-read starts on 08-10 instead (the 3-day lookback asks for 08-12 only).
    yesterday = date(2026, 8, 15)
    source = _source(3, yesterday)
    assert incremental_window(source, yesterday, 28, date(2026, 8, 10)) == (
        date(2026, 8, 10),
        yesterday,
    )
    # The lookback the source was given is not clipped: it is the admin's choice.
    assert incremental_window(_source(10, yesterday), yesterday, 28, date(2026, 8, 10)) == (
        date(2026, 8, 5),
        yesterday,
    )


@pytest.mark.parametrize(
    ("cycle_start", "window_start"),
    [
        # 08-15 - 27 = 07-19: the 28 days up to yesterday.
        (date(2026, 7, 1), date(2026, 7, 19)),
        # A cycle begun on 08-10 is read from its start (earlier than the lookback's 08-12).
        (date(2026, 8, 10), date(2026, 8, 10)),
    ],
)
def test_a_meta_source_rereads_28_days_for_any_insight(
    cycle_start: date, window_start: date
) -> None:
    """Meta insights are restated for up to 28 days; an insight named on the fly (not in the
    catalogue's examples) settles like the rest of Meta's."""
    cycle = Cycle(name="Q3", start_date=cycle_start, end_date=date(2026, 9, 30))
    kr = KeyResult(id=1, aggregation="avg", start_value=0, target_value=10)
    mapping = Mapping(
        id=1,
        key_result_id=1,
        metric="page.page_impressions_unique",
        params={},
        filters=[],
        role="value",
        group="",
        scale=1.0,
        backfill_pending=False,
    )
    plan = plan_run(
        MetaConnector,
        _source(3, date(2026, 8, 15)),
        [(mapping, kr, cycle)],
        today=TODAY,
        requested=None,
    )
    assert plan.daily_window is not None
    assert (plan.daily_window.start, plan.daily_window.end) == (window_start, date(2026, 8, 15))
