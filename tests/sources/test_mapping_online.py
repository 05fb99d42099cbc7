"""A mapping is checked against the platform's own metadata when the source can be reached.

SPEC section 4: open-ended platforms are checked "against the platform's own metadata endpoint
when the source can be reached, and by shape otherwise". Meta retires insights often, so its
connector asks the Graph API for the metric (kit_meta.FakeGraph plays it, from
https://developers.facebook.com/docs/graph-api/reference/page/insights/ : a retired insight is
error 100 "(#100) The value must be a valid insights metric").
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import respx
import stamina
from fastapi.testclient import TestClient

from app.core.settings import get_settings
from factories import cycle, key_result, objective
from tests.connectors import kits  # noqa: F401  (loads every kit first: they import kits)
from tests.connectors.acme import configure_engine
from tests.connectors.kit_meta import CONFIG, TOKEN, FakeGraph


@pytest.fixture
def graph(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGraph]:
    configure_engine(monkeypatch)  # *.test resolves to a public address
    fake = FakeGraph()
    with (
        stamina.set_testing(True, attempts=2, cap=True),
        respx.mock(assert_all_called=False) as router,
    ):
        fake.install(router)
        yield fake
    get_settings.cache_clear()


def _setup(client: TestClient) -> tuple[int, int]:
    c = cycle(client)
    o = objective(client, c["id"])
    kr = key_result(client, o["id"], aggregation="sum")
    source = client.post(
        "/api/v1/data-sources",
        json={
            "name": "Facebook Page",
            "connector": "meta",
            "config": CONFIG,
            "credentials": {"access_token": TOKEN},
        },
    )
    assert source.status_code == 201, source.text
    return kr["id"], source.json()["id"]


def _map(client: TestClient, kr: int, source: int, metric: str) -> httpx.Response:
    body = {"key_result_id": kr, "data_source_id": source, "metric": metric}
    return client.post("/api/v1/mappings", json=body)


def test_a_retired_metric_is_refused_with_a_422_that_says_so(
    client: TestClient, graph: FakeGraph
) -> None:
    kr, source = _setup(client)
    refused = _map(client, kr, source, "page.page_impressions")
    assert refused.status_code == 422, refused.text
    error = refused.json()
    assert "page.page_impressions" in str(error)
    assert "valid insights metric" in str(error)
    assert TOKEN not in refused.text
    assert client.get(f"/api/v1/mappings?data_source_id={source}").json()["total"] == 0
    assert graph.insight_calls(), "the platform was asked"

    accepted = _map(client, kr, source, "page.page_post_engagements")
    assert accepted.status_code == 201, accepted.text


def test_a_change_to_a_retired_metric_is_refused_and_leaves_the_mapping_as_it_was(
    client: TestClient, graph: FakeGraph
) -> None:
    kr, source = _setup(client)
    created = _map(client, kr, source, "page.page_post_engagements")
    assert created.status_code == 201, created.text
    mapping_id = created.json()["id"]

    changed = client.patch(f"/api/v1/mappings/{mapping_id}", json={"metric": "page.page_fans"})
    assert changed.status_code == 422, changed.text
    assert client.get(f"/api/v1/mappings/{mapping_id}").json()["metric"] == (
        "page.page_post_engagements"
    )


def test_an_unreachable_platform_leaves_the_check_to_the_catalogue(
    client: TestClient, graph: FakeGraph
) -> None:
    kr, source = _setup(client)
    down = httpx.Response(503, json={"error": {"message": "down", "code": 2}})
    graph.queued.extend([down] * 10)
    accepted = _map(client, kr, source, "page.page_impressions")
    assert accepted.status_code == 201, accepted.text
