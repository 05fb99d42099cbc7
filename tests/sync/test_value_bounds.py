"""Connector values beyond the bound every stored figure obeys are left out, with a run warning.

A platform (or a misconfigured `scale`) can hand the engine figures no marketing metric has:
1e308, NaN, infinities, or a sane raw figure that the mapping's scale multiplies past the
bound. None of them may be stored, since one such figure breaks every progress read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict
from sync_factories import freeze_today, make_kr, make_mapping, make_source, observations, runs
from sync_factories import sync_source as sync

from app.core.db import session_scope
from app.core.settings import get_settings
from app.models import Observation
from connectors import registry
from connectors.base import (
    CheckResult,
    Connector,
    DailyValue,
    FetchResult,
    MetricQuery,
    MetricSpec,
    Window,
)
from tests.factories import every_read

TODAY = date(2026, 7, 11)
START = date(2026, 7, 1)
#: By day of July: what the platform answers for `wild`.
WILD = {
    1: 1e308,
    2: float("nan"),
    3: float("-inf"),
    4: 2e15,
    5: 7.0,
    6: -1e308,
    7: -1e15,
    8: float("inf"),
}
GOOD = {5: 7.0, 7: -1e15}


class NoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WildConnector(Connector[NoConfig, NoConfig]):
    """Answers `wild` with WILD and `steady` with 1e13 every day (fine until scaled)."""

    key = "wild"
    name = "Wild"
    category = "generic"
    config_model = NoConfig
    credentials_model = NoConfig
    metrics = (
        MetricSpec(name="wild", description="Anything", unit=""),
        MetricSpec(name="steady", description="1e13 a day", unit=""),
    )

    async def check(self) -> CheckResult:
        return CheckResult("ok")

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult()
        day = window.start
        while day <= window.end:
            for query in queries:
                if query.metric == "steady":
                    result.values.append(DailyValue(query.id, day, 1e13))
                elif day.month == 7 and day.day in WILD:
                    result.values.append(DailyValue(query.id, day, WILD[day.day]))
            day += timedelta(days=1)
        return result


@pytest.fixture(autouse=True)
def wild_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    discover = registry._discover
    monkeypatch.setattr(
        registry, "_discover", lambda: {**discover(), WildConnector.key: WildConnector}
    )
    monkeypatch.setattr(registry, "_cache", None)
    freeze_today(monkeypatch, TODAY)
    yield
    get_settings.cache_clear()


def test_values_beyond_the_bound_are_left_out_with_a_warning(client: TestClient) -> None:
    src = make_source("wild", "wild", config={})
    kr = make_kr(start_value=0.0, target_value=100.0)
    make_mapping(kr, src, "wild")

    sync(src)

    [run] = runs(src)
    assert run.status == "succeeded", run.error
    assert run.observations_written == len(GOOD)
    [warning] = run.warnings
    assert warning.startswith(f"{len(WILD) - len(GOOD)} value(s) were left out")
    assert "±1e15" in warning
    assert {(d.day, v) for d, _, _, v, _ in observations(kr)} == set(GOOD.items())
    progress = every_read(client, kr, TODAY.isoformat())
    assert progress["current_value"] == pytest.approx(sum(GOOD.values()))


def test_a_value_beyond_the_bound_once_scaled_is_left_out(client: TestClient) -> None:
    """1e13 is a fine figure; times a scale of 1000 it is not, so it is not stored."""
    src = make_source("wild", "wild", config={})
    scaled = make_kr(start_value=0.0, target_value=100.0)
    plain = make_kr(start_value=0.0, target_value=100.0)
    make_mapping(scaled, src, "steady", scale=1000.0)
    make_mapping(plain, src, "steady", scale=100.0)

    sync(src)

    [run] = runs(src)
    assert run.status == "succeeded", run.error
    days = (TODAY - timedelta(days=1) - START).days + 1
    assert observations(scaled) == []
    assert len(observations(plain)) == days
    assert run.warnings[0].startswith(f"{days} value(s) were left out")
    assert every_read(client, scaled, TODAY.isoformat())["status"] == "no_data"
    assert every_read(client, plain, TODAY.isoformat())["current_value"] == pytest.approx(
        days * 1e15
    )


@pytest.mark.parametrize("aggregation", ["sum", "last", "ratio"])
def test_the_largest_figures_reads_can_meet_still_add_up(
    client: TestClient, aggregation: str
) -> None:
    """A value at the bound times a scale at the bound (a scale changed after its figures were
    stored), on every day of the cycle and of its baseline, in two groups: every read answers,
    on either database, and grows the baseline by the largest percentage allowed."""
    src = make_source("wild", "wild", config={})
    kr = make_kr(aggregation=aggregation, target_value=None, target_change_pct=1e6)
    roles = ("numerator", "denominator") if aggregation == "ratio" else ("value",)
    mappings = [
        make_mapping(kr, src, "wild", role=role, group=group, scale=1e15)
        for role in roles
        for group in ("a", "b")
    ]
    with session_scope() as s:
        days = [START + timedelta(days=n) for n in range(-92, 92)]
        s.add_all(
            Observation(
                key_result_id=kr,
                mapping_id=mapping,
                group=group,
                role=role,
                date=day,
                value=-1e15 if role == "value" and n % 3 == 0 else 1e15,
            )
            for mapping, (role, group) in zip(
                mappings, [(r, g) for r in roles for g in ("a", "b")], strict=True
            )
            for n, day in enumerate(days)
        )

    progress = every_read(client, kr, "2026-10-01")

    assert progress["status"] != "no_data"


def test_figures_stored_before_the_bound_existed_are_kept_but_not_read(
    client: TestClient,
) -> None:
    """A database written before the bound may hold 1e308 or NaN: they stay stored (nothing is
    deleted behind the user's back), every read answers 200 and adds up the sane figures only."""
    src = make_source("wild", "wild", config={})
    kr = make_kr(start_value=0.0, target_value=100.0)
    mapping = make_mapping(kr, src, "wild")
    stored = [
        (date(2026, 7, 1), 1e308),
        (date(2026, 7, 2), -1e308),
        (date(2026, 7, 4), float("inf")),
        (date(2026, 7, 5), 7.0),
        (date(2026, 7, 6), 1e308),
    ]
    with session_scope() as s:
        if s.get_bind().dialect.name == "postgresql":  # SQLite can't hold a NaN
            stored.append((date(2026, 7, 3), float("nan")))
        s.add_all(
            Observation(
                key_result_id=kr, mapping_id=mapping, group="", role="value", date=day, value=v
            )
            for day, v in stored
        )

    progress = every_read(client, kr, TODAY.isoformat())

    assert progress["current_value"] == pytest.approx(7.0)
    series = client.get(f"/api/v1/key-results/{kr}/series").json()
    assert [(p["date"], p["value"]) for p in series["points"]] == [("2026-07-05", 7.0)]
    assert len(observations(kr)) == len(stored)
