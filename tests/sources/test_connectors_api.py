"""GET /api/v1/connectors: the installed connectors and their metric catalogues (SPEC section 4)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors import registry
from connectors.demo import DemoConnector
from factories import api_key_headers


class BrokenConnector(DemoConnector):
    key = "broken"
    name = "A plugin with a bug"

    @classmethod
    def describe(cls) -> dict[str, Any]:
        raise RuntimeError("oops")


def _demo(items: list[dict[str, Any]]) -> dict[str, Any]:
    return next(i for i in items if i["key"] == "demo")


def test_viewer_reads_the_catalogue(client: TestClient, anon: TestClient) -> None:
    viewer = api_key_headers(client, "viewer")
    response = anon.get("/api/v1/connectors", headers=viewer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["items"]) >= 1
    demo = _demo(body["items"])
    assert demo["name"] == "Demo data"
    assert demo["category"] == "demo"
    assert demo["config"]["properties"]["seed"]["type"] == "integer"
    assert demo["credentials"]["type"] == "object"

    metrics = {m["name"]: m for m in demo["metrics"]}
    sessions = metrics["sessions"]
    assert sessions["additive"] is True
    assert sessions["history"] == "daily"
    assert "sum" in sessions["aggregations"]
    assert set(sessions["filters"]) == {"channel", "country"}
    assert sessions["filters"]["channel"] == ["eq", "neq", "in", "not_in"]
    assert "split_by" in sessions["params"]["properties"]

    bounce = metrics["bounce_rate"]
    assert bounce["additive"] is False
    assert "sum" not in bounce["aggregations"]
    assert metrics["audience_size"]["history"] == "snapshot"


def test_catalogue_pages(client: TestClient) -> None:
    total = client.get("/api/v1/connectors").json()["total"]
    page = client.get("/api/v1/connectors", params={"limit": 1, "offset": total - 1}).json()
    assert page["total"] == total
    assert len(page["items"]) == 1
    assert client.get("/api/v1/connectors", params={"offset": total}).json()["items"] == []


def test_catalogue_needs_a_key(anon: TestClient) -> None:
    assert anon.get("/api/v1/connectors").status_code == 401


def test_a_broken_plugin_is_left_out(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        registry, "_cache", {**registry.load_connectors(), "broken": BrokenConnector}
    )
    response = client.get("/api/v1/connectors")
    assert response.status_code == 200
    keys = [i["key"] for i in response.json()["items"]]
    assert "demo" in keys
    assert "broken" not in keys
