"""Lists filter on what people look for (SPEC 3), and refuse a filter they don't know.

Objectives on `cycle_id`, `team`, `owner`, `level`; key results on `objective_id`, `owner` and
`status` (computed on `as_of`, today by default), with `total` counting what matched.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from factories import check_in, cycle, key_result, objective


def _list(client: TestClient, path: str, **params: Any) -> tuple[list[str], int]:
    response = client.get(f"/api/v1/{path}", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    return [item["title"] for item in body["items"]], body["total"]


@pytest.fixture
def objectives(client: TestClient) -> dict[str, int]:
    q3 = cycle(client)["id"]
    q4 = cycle(client, name="2026-Q4", start_date="2026-10-01", end_date="2026-12-31")["id"]
    for title, cycle_id, level, team, owner in [
        ("Be the brand people name", q3, "company", "", "Ceo"),
        ("Visible in new markets", q3, "team", "Brand", "Lena"),
        ("Newsletter grows", q3, "team", "Lifecycle", "Tom"),
        ("Lena learns SQL", q3, "individual", "Brand", "Lena"),
        ("Brand refresh", q4, "team", "Brand", "Ana"),
    ]:
        objective(client, cycle_id, title=title, level=level, team=team, owner=owner)
    return {"q3": q3, "q4": q4}


def test_objectives_filter_on_team_owner_level_and_cycle(
    client: TestClient, objectives: dict[str, int]
) -> None:
    assert _list(client, "objectives", team="Brand") == (
        ["Visible in new markets", "Lena learns SQL", "Brand refresh"],
        3,
    )
    assert _list(client, "objectives", team="Brand", cycle_id=objectives["q3"]) == (
        ["Visible in new markets", "Lena learns SQL"],
        2,
    )
    assert _list(client, "objectives", owner="Lena", level="individual") == (
        ["Lena learns SQL"],
        1,
    )
    assert _list(client, "objectives", level="company") == (["Be the brand people name"], 1)
    assert _list(client, "objectives", team="brand") == ([], 0)  # names match exactly
    assert _list(client, "objectives", team="Brand", limit=1, offset=1) == (
        ["Lena learns SQL"],
        3,
    )
    assert _list(client, "objectives")[1] == 5


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("objectives", "level=department", "level"),
        ("objectives", "teams=Brand", "teams"),
        ("objectives", "cycle=1", "cycle"),
        ("key-results", "status=green", "status"),
        ("key-results", "owners=Lena", "owners"),
        ("cycles", "name=2026-Q3", "name"),
        ("mappings", "kr_id=1", "kr_id"),
        ("sync-runs", "source_id=1", "source_id"),
        ("api-keys", "role=admin", "role"),
        ("data-sources", "connector=ga4", "connector"),
        ("connectors", "category=crm", "category"),
        ("key-results/1/check-ins", "date=2026-07-01", "date"),
    ],
)
def test_a_filter_a_list_does_not_take_is_refused(
    client: TestClient, objectives: dict[str, int], path: str, query: str, field: str
) -> None:
    """Answering every row to `?teams=Brand` reads as "all of these are Brand's"."""
    key_result(client, objectives["q3"])
    response = client.get(f"/api/v1/{path}?{query}")
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]


def test_the_documented_parameters_are_known(
    client: TestClient, objectives: dict[str, int]
) -> None:
    for path in (
        "objectives?cycle_id=1&team=Brand&owner=Lena&level=team&as_of=2026-08-15&limit=5&offset=0",
        "key-results?objective_id=1&owner=Lena&status=on_track&as_of=2026-08-15&limit=5&offset=0",
        "cycles?limit=5&offset=0",
    ):
        assert client.get(f"/api/v1/{path}").status_code == 200, path


@pytest.fixture
def key_results(client: TestClient) -> dict[str, int]:
    """On 2026-08-15, day 46 of 92: expected progress 0.5; targets 3,000 from 0 (`sum`).

    3,000 -> 1.0 done; 1,380 -> 0.46 on_track (>= 0.40); 900 -> 0.30 at_risk (>= 0.25);
    300 -> 0.10 off_track; 1,500 -> 0.50 on_track; nothing -> no_data.
    """
    c = cycle(client)["id"]
    brand = objective(client, c, title="Brand", team="Brand")["id"]
    growth = objective(client, c, title="Growth", team="Growth")["id"]
    ids = {}
    for title, obj, owner, figure in [
        ("done", brand, "Lena", 3000),
        ("on track", brand, "Lena", 1380),
        ("at risk", brand, "Tom", 900),
        ("off track", growth, "Tom", 300),
        ("on track too", growth, "Lena", 1500),
        ("no data", growth, "Ana", None),
    ]:
        ids[title] = key_result(client, obj, title=title, owner=owner)["id"]
        if figure is not None:
            check_in(client, ids[title], "2026-08-01", figure)
    return ids | {"brand": brand, "growth": growth}


def test_key_results_filter_on_status_as_of_a_day(
    client: TestClient, key_results: dict[str, int]
) -> None:
    day = {"as_of": "2026-08-15"}
    assert _list(client, "key-results", status="on_track", **day) == (
        ["on track", "on track too"],
        2,
    )
    for status, titles in [
        ("done", ["done"]),
        ("at_risk", ["at risk"]),
        ("off_track", ["off track"]),
        ("no_data", ["no data"]),
        ("no_baseline", []),
    ]:
        assert _list(client, "key-results", status=status, **day) == (titles, len(titles))
    response = client.get("/api/v1/key-results", params={"status": "on_track", **day})
    assert {i["progress"]["status"] for i in response.json()["items"]} == {"on_track"}


def test_status_is_filtered_before_the_page_is_cut(
    client: TestClient, key_results: dict[str, int]
) -> None:
    """Two key results are on track on 2026-08-15: every page says 2, the one beyond too."""
    day = {"as_of": "2026-08-15"}
    first = _list(client, "key-results", status="on_track", limit=1, **day)
    second = _list(client, "key-results", status="on_track", limit=1, offset=1, **day)
    beyond = _list(client, "key-results", status="on_track", limit=1, offset=2, **day)
    assert (first, second, beyond) == ((["on track"], 2), (["on track too"], 2), ([], 2))


def test_status_defaults_to_today(client: TestClient, key_results: dict[str, int]) -> None:
    """Today is after 2026-Q3: expected 1.0, so the 3,000 is done and the other four off track."""
    assert _list(client, "key-results", status="done") == (["done"], 1)
    assert _list(client, "key-results", status="off_track")[1] == 4


def test_key_results_filter_on_owner_and_objective(
    client: TestClient, key_results: dict[str, int]
) -> None:
    assert _list(client, "key-results", owner="Lena") == (
        ["done", "on track", "on track too"],
        3,
    )
    assert _list(client, "key-results", owner="Tom", objective_id=key_results["growth"]) == (
        ["off track"],
        1,
    )
    assert _list(
        client,
        "key-results",
        owner="Lena",
        objective_id=key_results["brand"],
        status="on_track",
        as_of="2026-08-15",
    ) == (["on track"], 1)
