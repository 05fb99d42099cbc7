"""The dashboard reads progress with a fixed number of SQL statements, however many KRs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from app.core.db import get_engine
from app.okr import cache
from factories import check_in, cycle, key_result, objective


@contextmanager
def count_statements() -> Iterator[list[str]]:
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


def _seed(client: TestClient, n_krs: int, cycle_name: str) -> int:
    c = cycle(client, name=cycle_name)["id"]
    kinds = [
        {"aggregation": "sum"},
        {"aggregation": "last", "direction": "at_least"},
        {"aggregation": "avg", "direction": "decrease", "start_value": 60, "target_value": 45},
        {"aggregation": "max", "target_value": None, "target_change_pct": 10},
        {"kind": "milestone", "target_value": None},
    ]
    for i in range(n_krs):
        if i % 3 == 0:
            o = objective(client, c, title=f"objective {i}")["id"]
        kr = key_result(client, o, title=f"kr {i}", **kinds[i % len(kinds)])["id"]
        check_in(client, kr, "2026-06-20", 40)
        check_in(client, kr, "2026-07-03", 50 + i)
        check_in(client, kr, "2026-08-01", 55 + i)
    return c


def _dashboard_statements(client: TestClient, cycle_id: int) -> int:
    client.get(f"/api/v1/dashboard?cycle_id={cycle_id}&as_of=2026-08-15")  # warm caches
    cache.clear()  # count the computation, not a cached answer
    with count_statements() as statements:
        response = client.get(f"/api/v1/dashboard?cycle_id={cycle_id}&as_of=2026-08-15")
    assert response.status_code == 200
    return len(statements)


def test_same_statement_count_for_5_and_50_key_results(client: TestClient) -> None:
    small = _seed(client, 5, "small")
    large = _seed(client, 50, "large")
    body = client.get(f"/api/v1/dashboard?cycle_id={large}&as_of=2026-08-15").json()
    assert sum(len(o["key_results"]) for o in body["objectives"]) == 50
    assert all(
        kr["progress"]["status"] != "no_data" for o in body["objectives"] for kr in o["key_results"]
    )
    assert _dashboard_statements(client, small) == _dashboard_statements(client, large)
    assert _dashboard_statements(client, large) <= 10


def test_a_cached_dashboard_is_one_revision_read_and_a_write_invalidates_it(
    client: TestClient,
) -> None:
    cycle_id = _seed(client, 3, "cached")
    url = f"/api/v1/dashboard?cycle_id={cycle_id}&as_of=2026-08-15"
    first = client.get(url).json()
    with count_statements() as statements:
        assert client.get(url).json() == first
    assert not any("observations" in s for s in statements)

    kr = first["objectives"][0]["key_results"][0]
    check_in(client, kr["id"], "2026-08-10", 1000)
    after = client.get(url).json()
    assert after["objectives"][0]["key_results"][0]["progress"]["current_value"] == (
        kr["progress"]["current_value"] + 1000
    )


def test_a_closed_cycle_reads_its_frozen_figures_in_fewer_fixed_statements(
    client: TestClient,
) -> None:
    """A frozen read computes nothing: no observation, reduction or source is read."""
    small = _seed(client, 5, "small")
    large = _seed(client, 50, "large")
    live = _dashboard_statements(client, large)
    for c in (small, large):
        assert client.post(f"/api/v1/cycles/{c}/close").status_code == 200
    frozen = _dashboard_statements(client, large)
    assert frozen == _dashboard_statements(client, small)
    assert frozen < live
    cache.clear()
    with count_statements() as statements:
        body = client.get(f"/api/v1/dashboard?cycle_id={large}&as_of=2026-08-15").json()
    assert body["frozen"] is True
    assert not any(
        table in s for s in statements for table in ("observations", "series_months", "mappings")
    ), statements
