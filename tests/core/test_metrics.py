"""``GET /metrics``: sync runs, connector calls and request latency in Prometheus' text format.

The metrics are process-wide (one registry per process, as a Prometheus scrape sees it), so
every test reads the values before and after what it does and checks the difference.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
import respx
import stamina
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route
from starlette.staticfiles import StaticFiles
from sync_factories import freeze_today, make_kr, make_mapping, make_source, runs

from app.core import metrics
from app.core.db import session_scope
from app.core.settings import get_settings
from app.core.vault import encrypt_credentials
from app.models import DataSource, SyncRun
from app.sync.engine import sync_now
from tests.connectors.acme import ACME_URL, configure_engine
from tests.connectors.acme_fake import API_KEY, FakeAcme, day_of_month

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
REQUESTS = "krsync_http_request_duration_seconds_count"
KR_ROUTE = "/api/v1/key-results/{kr_id}"


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def sync(source_id: int) -> int:
    with session_scope() as s:
        src = s.get(DataSource, source_id)
        assert src is not None
        return sync_now(s, src, trigger="cli")


# --- the endpoint ----------------------------------------------------------------------------


def test_metrics_needs_no_key_and_stays_out_of_the_api_schema(anon: TestClient) -> None:
    samples = scrape(anon)

    assert any(name.startswith("process_") for name, _ in samples)  # the standard collectors
    assert "/metrics" not in anon.get("/openapi.json").json()["paths"]


# --- sync runs -------------------------------------------------------------------------------


def test_a_demo_sync_counts_its_run_observations_and_duration(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_today(monkeypatch, date(2026, 8, 16))
    src = make_source()
    make_mapping(make_kr(), src, "sessions")
    before = scrape(client)

    sync(src)

    [run] = runs(src)
    assert run.status == "succeeded", run.error
    assert run.observations_written == 46
    after = scrape(client)
    assert delta(before, after, "krsync_sync_runs_total", connector="demo", status="succeeded") == 1
    assert delta(before, after, "krsync_sync_runs_total", connector="demo", status="failed") == 0
    assert delta(before, after, "krsync_observations_written_total", connector="demo") == 46
    assert delta(before, after, "krsync_sync_duration_seconds_count", connector="demo") == 1
    assert delta(before, after, "krsync_sync_duration_seconds_sum", connector="demo") > 0
    assert delta(before, after, "krsync_connector_api_calls_total", connector="demo") == 0


def test_a_failed_run_is_counted_as_failed_under_its_connector(client: TestClient) -> None:
    # A connector that is no longer installed fails the run before anything is fetched.
    src = make_source(name="orphan", connector="uninstalled")
    make_mapping(make_kr(), src, "sessions")
    before = scrape(client)

    sync(src)

    [run] = runs(src)
    assert run.status == "failed"
    after = scrape(client)
    labels = {"connector": "uninstalled"}
    assert delta(before, after, "krsync_sync_runs_total", status="failed", **labels) == 1
    assert delta(before, after, "krsync_sync_runs_total", status="succeeded", **labels) == 0
    assert delta(before, after, "krsync_sync_duration_seconds_count", **labels) == 1
    assert delta(before, after, "krsync_observations_written_total", **labels) == 0


# --- API calls, retries and rate limits per connector ------------------------------------------


@pytest.fixture
def fake(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAcme]:
    configure_engine(monkeypatch)
    freeze_today(monkeypatch, date(2026, 7, 11))
    acme = FakeAcme(ACME_URL, default=day_of_month)
    # respx leaves the TestClient's requests alone: they never reach an httpx network transport.
    with stamina.set_testing(True, attempts=100, cap=True), respx.mock() as router:
        acme.install(router)
        yield acme
    get_settings.cache_clear()


def acme_source() -> int:
    src = make_source(
        name="acme",
        connector="acme",
        config={"base_url": ACME_URL},
        credentials_encrypted=encrypt_credentials({"api_key": API_KEY}),
    )
    make_mapping(make_kr(), src, "signups")
    return src


def test_a_500_then_200_counts_one_retry_for_the_connector(
    client: TestClient, fake: FakeAcme
) -> None:
    src = acme_source()
    fake.fail("metrics", httpx.Response(500, json={"error": "oops"}))
    before = scrape(client)

    sync(src)

    [run] = runs(src)
    assert run.status == "succeeded", run.error
    after = scrape(client)
    assert delta(before, after, "krsync_sync_runs_total", connector="acme", status="succeeded") == 1
    assert delta(before, after, "krsync_connector_retries_total", connector="acme") == 1
    assert delta(before, after, "krsync_connector_rate_limited_total", connector="acme") == 0
    calls = delta(before, after, "krsync_connector_api_calls_total", connector="acme")
    assert calls == run.api_calls == len(fake.calls("metrics"))
    assert delta(before, after, "krsync_observations_written_total", connector="acme") == (
        run.observations_written
    )


def test_a_429_counts_as_rate_limited(client: TestClient, fake: FakeAcme) -> None:
    src = acme_source()
    fake.fail("metrics", httpx.Response(429, headers={"Retry-After": "1"}))
    before = scrape(client)

    sync(src)

    assert runs(src)[-1].status == "succeeded"
    after = scrape(client)
    assert delta(before, after, "krsync_connector_rate_limited_total", connector="acme") == 1
    assert delta(before, after, "krsync_connector_retries_total", connector="acme") >= 1


def test_a_run_that_fails_after_retrying_still_reports_its_calls_and_retries(
    client: TestClient, fake: FakeAcme
) -> None:
    src = acme_source()
    fake.fail("metrics", *[httpx.Response(503)] * 10)
    before = scrape(client)

    sync(src)

    assert runs(src)[-1].status == "failed"
    after = scrape(client)
    attempts = len(fake.calls("metrics"))
    assert attempts > 1
    assert delta(before, after, "krsync_sync_runs_total", connector="acme", status="failed") == 1
    assert delta(before, after, "krsync_connector_api_calls_total", connector="acme") == attempts
    assert delta(before, after, "krsync_connector_retries_total", connector="acme") == attempts - 1


# --- request latency -------------------------------------------------------------------------


def test_request_latency_is_labelled_by_route_template_never_by_raw_path(
    client: TestClient,
) -> None:
    kr = make_kr()
    before = scrape(client)

    assert client.get(f"/api/v1/key-results/{kr}").status_code == 200
    assert client.get("/api/v1/key-results/987654").status_code == 404
    assert client.put(f"/api/v1/key-results/{kr}", json={}).status_code == 405
    assert client.get("/api/v1/no-such-thing/24680").status_code == 404

    after = scrape(client)
    assert delta(before, after, REQUESTS, method="GET", route=KR_ROUTE, status="200") == 1
    assert delta(before, after, REQUESTS, method="GET", route=KR_ROUTE, status="404") == 1
    assert delta(before, after, REQUESTS, method="PUT", route=KR_ROUTE, status="405") == 1
    assert delta(before, after, REQUESTS, method="GET", route="unmatched", status="404") == 1
    touched = {
        dict(labels)["route"]
        for (name, labels), count in after.items()
        if name == REQUESTS and count > before.get((name, labels), 0.0)
    }
    assert touched == {KR_ROUTE, "unmatched", "/metrics"}  # the first scrape, counted by now


def test_a_streamed_response_passes_through_and_is_timed_to_its_last_chunk() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for n in range(3):
            await asyncio.sleep(0.01)
            yield f"chunk {n}\n".encode()

    async def stream(_: Request) -> StreamingResponse:
        return StreamingResponse(chunks(), media_type="text/plain")

    app = Starlette(routes=[Route("/export/{name}", stream)])
    app.add_middleware(metrics.RequestMetricsMiddleware)
    labels = {"method": "GET", "route": "/export/{name}", "status": "200"}
    before = metrics.REQUEST_DURATION.labels(**labels)._sum.get()

    with TestClient(app) as local:
        response = local.get("/export/everything")

    assert response.text == "chunk 0\nchunk 1\nchunk 2\n"
    assert metrics.REQUEST_DURATION.labels(**labels)._sum.get() - before >= 0.03


def test_included_routers_and_mounts_are_labelled_with_their_full_template(
    tmp_path: Path,
) -> None:
    (tmp_path / "app.js").write_text("// the dashboard's script")
    things = APIRouter()

    @things.get("/things/{thing_id}")
    def thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    app = FastAPI()
    app.add_middleware(metrics.RequestMetricsMiddleware)
    app.include_router(things, prefix="/v9")
    app.include_router(things, prefix="/old")  # the same route objects under a second prefix
    app.mount("/static", StaticFiles(directory=tmp_path), name="static")
    paths = ["/v9/things/1", "/old/things/2", "/static/app.js", "/static/missing.js", "/nope"]
    before = {path: _count(path) for path in ("/v9", "/old", "/static", "unmatched")}

    with TestClient(app) as local:
        assert [local.get(p).status_code for p in paths] == [200, 200, 200, 404, 404]

    assert _count("/v9") - before["/v9"] == 1
    assert _count("/old") - before["/old"] == 1
    assert _count("/static") - before["/static"] == 2
    assert _count("unmatched") - before["unmatched"] == 1


_TEMPLATES = {
    "/v9": "/v9/things/{thing_id}",
    "/old": "/old/things/{thing_id}",
    "/static": "/static/{path}",
    "unmatched": "unmatched",
}


def _count(prefix: str) -> float:
    """Requests answered under one template, whatever their status."""
    route = _TEMPLATES[prefix]
    return sum(
        s.value
        for family in metrics.REQUEST_DURATION.collect()
        for s in family.samples
        if s.name == REQUESTS and s.labels["route"] == route
    )


def test_unusual_methods_share_one_label() -> None:
    metrics.observe_request("BREW", "unmatched", 405, 0.001)
    body, content_type = metrics.render()

    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert b'method="BREW"' not in body
    assert b'method="other",route="unmatched",status="405"' in body


def test_a_run_whose_process_died_is_counted_failed_when_the_next_run_cleans_it_up(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A killed process can't count its own run: the next run of the source does, once."""
    freeze_today(monkeypatch, date(2026, 8, 16))
    src = make_source(name="crashed")
    make_mapping(make_kr(), src, "sessions")
    with session_scope() as s:
        s.add(
            SyncRun(
                data_source_id=src,
                trigger="cli",
                status="running",
                prepared_at=datetime(2026, 8, 16, 3, tzinfo=UTC),
            )
        )
    before = scrape(client)

    sync(src)

    dead_run, new_run = runs(src)
    assert dead_run.status == "failed"
    assert new_run.status == "succeeded", new_run.error
    after = scrape(client)
    labels = {"connector": "demo"}
    assert delta(before, after, "krsync_sync_runs_total", status="failed", **labels) == 1
    assert delta(before, after, "krsync_sync_runs_total", status="succeeded", **labels) == 1
    # The dead run's duration is unknown, so only the new run is timed.
    assert delta(before, after, "krsync_sync_duration_seconds_count", **labels) == 1
