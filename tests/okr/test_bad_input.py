"""Bad input gets a 4xx that says what is wrong, and leaves nothing half-written."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from factories import workspace

CYCLE = {"name": "Q3", "start_date": "2026-07-01", "end_date": "2026-09-30"}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({**CYCLE, "end_date": "2026-06-01"}, "end_date must be on or after start_date"),
        ({**CYCLE, "start_date": "not a date"}, "start_date"),
        ({**CYCLE, "start_date": "2026-02-30"}, "start_date"),
        ({**CYCLE, "name": ""}, "name"),
        ({**CYCLE, "name": "x" * 201}, "name"),
        ({**CYCLE, "name": "a\x00b"}, "NUL"),
        ({**CYCLE, "colour": "red"}, "colour"),
        ({"name": "Q3"}, "start_date"),
    ],
)
def test_bad_cycles(client: TestClient, body: dict[str, Any], needle: str) -> None:
    response = client.post("/api/v1/cycles", json=body)
    assert response.status_code == 422, response.text
    assert needle in response.json()["detail"]
    assert client.get("/api/v1/cycles").json()["total"] == 0


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/api/v1/cycles", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"kind": "okr"}, "kind"),
        ({"direction": "sideways"}, "direction"),
        ({"aggregation": "median"}, "aggregation"),
        ({"target_value": "lots"}, "target_value"),
        ({"target_value": float("inf")}, "target_value"),
        ({"target_value": 1e300}, "target_value"),
        ({"start_value": 10, "target_value": 10}, "target"),
        ({"target_value": None}, "target"),
        ({"weight": -1}, "weight"),
        ({"objective_id": 999}, "objective 999 does not exist"),
    ],
)
def test_bad_key_results(client: TestClient, over: dict[str, Any], needle: str) -> None:
    _, objective_id, _ = workspace(client)
    body = {"title": "kr", "objective_id": objective_id, "target_value": 100} | over
    if over.get("target_value") == float("inf"):
        response = client.post(
            "/api/v1/key-results",
            content=b'{"title": "kr", "objective_id": 1, "target_value": Infinity}',
            headers={"Content-Type": "application/json"},
        )
    else:
        response = client.post("/api/v1/key-results", json=body)
    assert response.status_code == 422, response.text
    assert needle in response.json()["detail"]
    assert client.get("/api/v1/key-results").json()["total"] == 1


def test_patch_that_breaks_a_key_result_changes_nothing(client: TestClient) -> None:
    _, _, kr = workspace(client)
    response = client.patch(f"/api/v1/key-results/{kr}", json={"start_value": 3000})
    assert response.status_code == 422
    assert client.get(f"/api/v1/key-results/{kr}").json()["start_value"] is None


def test_patch_with_inverted_cycle_dates(client: TestClient) -> None:
    cycle_id, _, _ = workspace(client)
    response = client.patch(f"/api/v1/cycles/{cycle_id}", json={"end_date": "2026-01-01"})
    assert response.status_code == 422
    assert client.get(f"/api/v1/cycles/{cycle_id}").json()["end_date"] == "2026-09-30"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/cycles/999",
        "/api/v1/objectives/999",
        "/api/v1/key-results/999",
        "/api/v1/key-results/999/check-ins",
        "/api/v1/key-results/999/series",
        "/api/v1/cycles/99999999999999999999",
        "/api/v1/dashboard?cycle_id=999",
    ],
)
def test_unknown_ids(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (404, 422), response.text
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/dashboard?as_of=yesterday",
        "/api/v1/dashboard?as_of=2026-13-01",
        "/api/v1/dashboard?cycle_id=abc",
        "/api/v1/cycles?limit=-1",
        "/api/v1/objectives?offset=-5",
        "/api/v1/key-results/1/series?format=xml",
    ],
)
def test_bad_query_parameters(client: TestClient, url: str) -> None:
    workspace(client)
    response = client.get(url)
    assert response.status_code == 422, response.text
    name = url.split("?")[1].split("=")[0]
    assert name in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"date": "2026-07-01", "value": "ten"}, "value"),
        ({"date": "2026-07-01", "value": 1, "confidence": 11}, "confidence"),
        ({"value": 1}, "date"),
    ],
)
def test_bad_check_ins(client: TestClient, body: dict[str, Any], needle: str) -> None:
    _, _, kr = workspace(client)
    response = client.post(f"/api/v1/key-results/{kr}/check-ins", json=body)
    assert response.status_code == 422
    assert needle in response.json()["detail"]
    assert client.get(f"/api/v1/key-results/{kr}/series").json()["points"] == []


def test_objective_in_unknown_cycle(client: TestClient) -> None:
    response = client.post("/api/v1/objectives", json={"title": "x", "cycle_id": 42})
    assert response.status_code == 422
    assert response.json()["field"] == "cycle_id"


def test_api_key_with_unknown_role(client: TestClient) -> None:
    response = client.post("/api/v1/api-keys", json={"name": "x", "role": "owner"})
    assert response.status_code == 422
    assert "role" in response.json()["detail"]
