"""Source health (SPEC section 7) through the real sync engine, the API, the CLI and /metrics.

A failing source goes `failing`, counting failed runs in a row, and is paused after
KRSYNC_PAUSE_AFTER_FAILURES of them (3 here); scheduled runs skip it and a manual sync is refused
until an admin resumes it; a good run makes it healthy again. A failed run never moves its
freshness. Partial or warned runs are `degraded`; a platform's refusal of the credentials (a 401,
a revoked refresh token) and a refresh token that ends within 7 days are `needs_reauth`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
import stamina
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sync_factories import (
    freeze_today,
    make_kr,
    make_mapping,
    make_source,
    observations,
    runs,
    source,
    sync_source,
)
from typer.testing import CliRunner, Result

from app.cli import cli
from app.core.db import session_scope
from app.core.settings import get_settings
from app.core.vault import encrypt_credentials
from app.models import AuditEvent, DataSource
from app.sync.scheduler import fire
from app.sync.source_health import (
    HEALTHS,
    REAUTH_WITHIN,
    CredentialsStored,
    HealthChange,
    Resumed,
    RunFinished,
    credentials_expiry,
    record,
    sunset_notice,
)
from connectors.base import FetchResult, MetricQuery, RetriableError, Window
from connectors.demo import DemoConnector
from tests.connectors.acme import ACME_URL, API_KEY_REFUSED, configure_engine
from tests.connectors.acme_fake import (
    API_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    FakeAcme,
    day_of_month,
)

TODAY = date(2026, 8, 16)
PAUSE_AFTER = 3
runner = CliRunner()
_DEMO_FETCH = DemoConnector.fetch


@pytest.fixture(autouse=True)
def pause_after(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KRSYNC_PAUSE_AFTER_FAILURES", str(PAUSE_AFTER))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _krsync(*args: str) -> Result:
    return runner.invoke(cli, list(args), env={"COLUMNS": "200"})


def _read(client: TestClient, source_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/data-sources/{source_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _demo_source(monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    freeze_today(monkeypatch, TODAY)
    kr = make_kr()
    src = make_source(schedule="0 3 * * *")
    make_mapping(kr, src, "sessions")
    return src, kr


def _platform(monkeypatch: pytest.MonkeyPatch, answer: str) -> None:
    """What the demo platform does from now on: `down`, `partial`, `warns` or `fine`."""
    original = _DEMO_FETCH

    async def fetch(self: DemoConnector, queries: Sequence[MetricQuery], window: Window) -> Any:
        if answer == "down":
            raise RetriableError("the platform is down for maintenance")
        result: FetchResult = await original(self, queries, window)
        if answer == "partial":
            result.query_errors[queries[0].id] = "the metric was retired"
        if answer == "warns":
            result.warnings.append("the platform sampled the figures")
        return result

    monkeypatch.setattr(DemoConnector, "fetch", fetch)


# --- failing, paused, resumed, recovered ---------------------------------------------------------


def test_a_failing_source_is_paused_after_n_runs_and_a_resume_and_a_good_run_bring_it_back(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, kr = _demo_source(monkeypatch)
    sync_source(src)
    good = _read(client, src)
    assert (good["health"], good["consecutive_failures"], good["health_reason"]) == (
        "healthy",
        0,
        None,
    )
    assert good["last_success_at"] is not None
    assert good["last_attempt_at"] == good["last_success_at"]
    seeded = observations(kr)

    _platform(monkeypatch, "down")
    for failures in (1, 2):
        sync_source(src)
        read = _read(client, src)
        assert (read["health"], read["consecutive_failures"]) == ("failing", failures)
        assert read["paused_at"] is None
    assert "the last 2 run(s) failed" in read["health_reason"]
    # A failed run never moves freshness forward, and touches no figure.
    assert read["last_success_at"] == good["last_success_at"]
    assert read["last_synced_day"] == good["last_synced_day"]
    assert read["last_attempt_at"] > good["last_attempt_at"]
    assert observations(kr) == seeded

    sync_source(src)  # the third in a row
    paused = _read(client, src)
    assert (paused["health"], paused["consecutive_failures"]) == ("paused", PAUSE_AFTER)
    assert paused["paused_at"] is not None
    assert f"/api/v1/data-sources/{src}/resume" in paused["health_reason"]
    assert paused["last_success_at"] == good["last_success_at"]

    # Scheduled runs skip it, however the clock turns; a manual sync says to resume it.
    freeze_today(monkeypatch, TODAY + timedelta(days=1))
    assert fire(src) is None
    refused = client.post(f"/api/v1/data-sources/{src}/sync")
    assert refused.status_code == 409
    assert f"POST /api/v1/data-sources/{src}/resume" in refused.json()["detail"]
    assert len(runs(src)) == 1 + PAUSE_AFTER

    resumed = client.post(f"/api/v1/data-sources/{src}/resume")
    assert resumed.status_code == 200, resumed.text
    body = resumed.json()
    # Its last run still failed: it reads `failing`, with the count started again.
    assert (body["health"], body["consecutive_failures"], body["paused_at"]) == ("failing", 0, None)
    with session_scope() as s:
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "resume")).all()
        assert (event.entity, event.entity_id) == ("data_source", src)
        assert event.changes["consecutive_failures"] == [PAUSE_AFTER, 0]
        assert event.changes["health"] == ["paused", "failing"]

    _platform(monkeypatch, "fine")
    assert fire(src) is not None
    well = _read(client, src)
    assert (well["health"], well["consecutive_failures"], well["health_reason"]) == (
        "healthy",
        0,
        None,
    )
    assert well["last_success_at"] > good["last_success_at"]


def test_a_resume_of_an_unknown_source_is_404_and_of_a_healthy_one_changes_nothing(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, _ = _demo_source(monkeypatch)
    assert client.post("/api/v1/data-sources/999/resume").status_code == 404
    before = _read(client, src)
    after = client.post(f"/api/v1/data-sources/{src}/resume").json()
    assert after["health"] == "healthy"
    assert after["updated_at"] == before["updated_at"]


def test_pause_after_zero_never_pauses(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRSYNC_PAUSE_AFTER_FAILURES", "0")
    get_settings.cache_clear()
    src, _ = _demo_source(monkeypatch)
    _platform(monkeypatch, "down")
    for _ in range(PAUSE_AFTER + 1):
        sync_source(src)
    read = _read(client, src)
    assert (read["health"], read["consecutive_failures"]) == ("failing", PAUSE_AFTER + 1)


def test_a_paused_source_waits_for_its_backfill_until_resumed(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, _ = _demo_source(monkeypatch)
    _platform(monkeypatch, "down")
    for _ in range(PAUSE_AFTER):
        sync_source(src)
    assert _read(client, src)["health"] == "paused"
    _platform(monkeypatch, "fine")
    other = make_kr(title="signups")
    created = client.post(
        "/api/v1/mappings",
        json={"key_result_id": other, "data_source_id": src, "metric": "signups"},
    )
    assert created.status_code == 201, created.text
    assert len(runs(src)) == PAUSE_AFTER  # no backfill while paused

    client.post(f"/api/v1/data-sources/{src}/resume")
    assert len(runs(src)) == PAUSE_AFTER + 1
    assert runs(src)[-1].trigger == "backfill"
    assert observations(other)


# --- degraded -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("partial", "the last run was partial"),
        ("warns", "the last run finished with warnings"),
    ],
)
def test_a_partial_or_warned_run_is_degraded_and_resets_the_failures(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, answer: str, why: str
) -> None:
    src, _ = _demo_source(monkeypatch)
    _platform(monkeypatch, "down")
    sync_source(src)
    assert _read(client, src)["consecutive_failures"] == 1

    _platform(monkeypatch, answer)
    sync_source(src)
    read = _read(client, src)
    assert (read["health"], read["consecutive_failures"]) == ("degraded", 0)
    assert why in read["health_reason"]

    _platform(monkeypatch, "fine")
    sync_source(src)
    assert _read(client, src)["health"] == "healthy"


# --- needs_reauth -------------------------------------------------------------------------------


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAcme]:
    configure_engine(monkeypatch)
    freeze_today(monkeypatch, date(2026, 7, 11))
    acme = FakeAcme(ACME_URL, default=day_of_month)
    with (
        stamina.set_testing(True, attempts=100, cap=True),
        respx.mock(assert_all_called=False) as router,
    ):
        acme.install(router)
        yield acme


def _acme(credentials: dict[str, Any]) -> int:
    src = make_source(
        name="acme",
        connector="acme",
        config={"base_url": ACME_URL},
        credentials_encrypted=encrypt_credentials(credentials),
    )
    make_mapping(make_kr(), src, "signups")
    return src


def test_a_401_makes_the_source_need_reauth_until_new_credentials_and_a_good_run(
    client: TestClient, fake: FakeAcme
) -> None:
    src = _acme({"api_key": API_KEY})
    sync_source(src)
    assert _read(client, src)["health"] == "healthy"
    fake.api_keys.clear()  # the key was revoked in Acme's settings: 401

    sync_source(src)
    read = _read(client, src)
    assert (read["health"], read["consecutive_failures"]) == ("needs_reauth", 1)
    assert read["health_reason"].startswith("authentication failed")
    assert API_KEY_REFUSED in read["health_reason"]

    # New credentials: the refusal was about the old ones; the last run still failed.
    fake.api_keys.add("acme-key-new")
    patched = client.patch(
        f"/api/v1/data-sources/{src}", json={"credentials": {"api_key": "acme-key-new"}}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["health"] == "failing"

    sync_source(src)
    assert _read(client, src)["health"] == "healthy"


def test_a_refresh_token_the_platform_refuses_needs_reauth_a_token_endpoint_down_does_not(
    client: TestClient, fake: FakeAcme
) -> None:
    oauth = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
        "access_token": "acme-access-stale",
        "expires_at": 4_102_444_800,
    }
    src = _acme(oauth)
    sync_source(src)
    fake.access_tokens.clear()
    fake.fail("token", *[httpx.Response(503, text="maintenance")] * 4)
    sync_source(src)
    assert _read(client, src)["health"] == "failing"

    fake.refresh_tokens.clear()  # revoked
    sync_source(src)
    read = _read(client, src)
    assert read["health"] == "needs_reauth"
    assert "reconnect the source" in read["health_reason"]


def _linkedin(client: TestClient, refresh_ends_in: timedelta, **config: Any) -> dict[str, Any]:
    end = datetime.now(UTC) + refresh_ends_in
    response = client.post(
        "/api/v1/data-sources",
        json={
            "name": f"linkedin-{refresh_ends_in.days}",
            "connector": "linkedin",
            "config": {"organization_id": "2414183", **config},
            "credentials": {
                "access_token": "li-access",
                "refresh_token": "li-refresh",
                "client_id": "li-client",
                "client_secret": "li-secret",
                "refresh_token_expires_at": end.timestamp(),
            },
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_refresh_token_that_ends_within_7_days_needs_reauth(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_engine(monkeypatch)
    soon = _linkedin(client, timedelta(days=3))
    assert soon["health"] == "needs_reauth"
    end = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    assert f"the stored credentials expire on {end}" in soon["health_reason"]
    assert soon["consecutive_failures"] == 0
    assert soon["last_attempt_at"] is None

    later = _linkedin(client, timedelta(days=30))
    assert (later["health"], later["health_reason"]) == ("healthy", None)
    # Nothing runs in between: the days pass, and the read says so.
    monkeypatch.setattr(
        "app.core.clock.utcnow", lambda: datetime.now(UTC) + timedelta(days=30) - REAUTH_WITHIN
    )
    assert _read(client, later["id"])["health"] == "needs_reauth"


def test_credentials_say_when_they_end() -> None:
    moment = datetime(2027, 1, 1, tzinfo=UTC)
    ts = moment.timestamp()
    refresh = {"refresh_token": "r", "access_token": "a", "expires_at": 1.0}
    assert credentials_expiry({**refresh, "refresh_token_expires_at": ts}) == moment
    assert credentials_expiry({**refresh, "refresh_token_expires_at": str(ts)}) == moment
    assert credentials_expiry({**refresh, "refresh_token_expires_at": "2027-01-01T00:00:00Z"}) == (
        moment
    )
    # a refresh token without an end: the access token's is the engine's business
    assert credentials_expiry(refresh) is None
    # no refresh token: the access token's end is the end
    assert credentials_expiry({"access_token": "a", "expires_at": ts}) == moment
    assert credentials_expiry({"api_key": "k"}) is None
    assert credentials_expiry({"access_token": "a", "expires_at": "soon"}) is None
    assert credentials_expiry({"access_token": "a", "expires_at": True}) is None


# --- API version sunset ---------------------------------------------------------------------------


def test_an_api_version_retired_within_60_days_is_a_notice(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_engine(monkeypatch)
    freeze_today(monkeypatch, TODAY)
    # LinkedIn retires a monthly version a year after its month begins.
    old = _linkedin(client, timedelta(days=300), api_version="202509")
    assert old["api_version_sunset"] == "2026-09-01"
    [notice] = [n for n in old["notices"] if "retired" in n]
    assert notice == (
        "LinkedIn API version 202509 is retired by its vendor on 2026-09-01: set `api_version` "
        "in the source's config to a newer version before then"
    )
    new = client.patch(
        f"/api/v1/data-sources/{old['id']}",
        json={"config": {"organization_id": "2414183", "api_version": "202607"}},
    ).json()
    assert new["api_version_sunset"] == "2027-07-01"
    assert not [n for n in new["notices"] if "retired" in n]


def test_a_sunset_notice_names_a_past_retirement_too() -> None:
    assert sunset_notice("Meta", "v18.0", date(2026, 1, 1), date(2026, 2, 1)) == (
        "Meta API version v18.0 was retired by its vendor on 2026-01-01: set `api_version` in "
        "the source's config to a newer version"
    )
    assert sunset_notice("Meta", "v24.0", date(2026, 12, 1), date(2026, 9, 1)) is None
    assert sunset_notice("Meta", "v24.0", date(2026, 10, 31), date(2026, 9, 1)) is not None
    assert sunset_notice("Acme", None, None, date(2026, 9, 1)) is None


# --- CLI and Prometheus ---------------------------------------------------------------------------


def test_cli_lists_health_and_resumes_by_name_or_id(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, _ = _demo_source(monkeypatch)
    well = make_source("well", config={"seed": 3})
    make_mapping(make_kr(title="well"), well, "sessions")
    _platform(monkeypatch, "down")
    for _ in range(PAUSE_AFTER):
        sync_source(src)

    listed = _krsync("sources", "list")
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
    assert f"paused ({PAUSE_AFTER})" in rows["demo"]
    assert "failed (cli," in rows["demo"]
    assert "last success never" in rows["demo"]
    assert " healthy " in rows["well"]
    said = " ".join(listed.stderr.split())
    assert "demo: paused: paused on" in said
    assert f"after {PAUSE_AFTER} failed run(s) in a row" in said
    assert "well:" not in said

    # `krsync sync` skips a paused source, and refuses to sync one by name.
    _platform(monkeypatch, "fine")
    every = _krsync("sync")
    assert every.exit_code == 0, every.output
    assert [r.trigger for r in runs(well)] == ["cli"]
    assert len(runs(src)) == PAUSE_AFTER
    named = _krsync("sync", "-s", "demo")
    assert named.exit_code == 2
    assert "krsync sources resume" in named.stderr

    assert _krsync("sources", "resume", "nope").exit_code == 2
    resumed = _krsync("sources", "resume", str(src))
    assert resumed.exit_code == 0, resumed.output
    assert "resumed demo" in resumed.stdout
    assert source(src).paused_at is None
    again = _krsync("sources", "resume", "demo")
    assert again.exit_code == 0
    assert "was not paused" in again.stdout
    assert _krsync("sync", "-s", "demo").exit_code == 0
    assert re.search(r"^demo\s+demo\s+healthy\s", _krsync("sources", "list").stdout, re.M)


def _gauges(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = client.get("/metrics").text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("krsync_source")
        for sample in family.samples
    }


def _labels(source_id: int, name: str, **more: str) -> frozenset[tuple[str, str]]:
    return frozenset(
        {"source_id": str(source_id), "source": name, "connector": "demo", **more}.items()
    )


def test_metrics_count_sources_per_health_and_give_each_one_its_state(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, _ = _demo_source(monkeypatch)
    well = make_source("well", config={"seed": 3})
    _platform(monkeypatch, "down")
    sync_source(src)
    sync_source(src)

    gauges = _gauges(client)
    per_health = {h: gauges["krsync_sources", frozenset({("health", h)})] for h in HEALTHS}
    assert per_health == {
        "healthy": 1,
        "degraded": 0,
        "failing": 1,
        "needs_reauth": 0,
        "paused": 0,
    }
    for health in HEALTHS:
        demo_state = gauges["krsync_source_health", _labels(src, "demo", health=health)]
        well_state = gauges["krsync_source_health", _labels(well, "well", health=health)]
        assert demo_state == (1 if health == "failing" else 0)
        assert well_state == (1 if health == "healthy" else 0)
    assert gauges["krsync_source_consecutive_failures", _labels(src, "demo")] == 2
    # never synced successfully: no timestamp to show
    assert ("krsync_source_last_success_timestamp_seconds", _labels(src, "demo")) not in gauges

    client.delete(f"/api/v1/data-sources/{well}")
    gauges = _gauges(client)
    assert not [key for key in gauges if ("source_id", str(well)) in key[1]]
    assert gauges["krsync_sources", frozenset({("health", "healthy")})] == 0


# --- the dashboard ------------------------------------------------------------------------------


def test_the_dashboard_tells_admins_which_sources_need_them(
    client: TestClient, anon: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, _ = _demo_source(monkeypatch)
    page = client.get("/").text
    assert 'class="notice source-attention"' not in page
    _platform(monkeypatch, "down")
    sync_source(src)

    page = client.get("/").text
    assert "1 data source needs you" in page
    assert f'<a href="/sources/{src}">demo</a> <span class="chip h-failing">failing</span>' in page
    assert "the last run failed" in page

    viewer = client.post("/api/v1/api-keys", json={"name": "viewer", "role": "viewer"}).json()
    seen = anon.get("/", headers={"Authorization": f"Bearer {viewer['key']}"}).text
    assert "needs you" not in seen
    assert 'class="notice source-attention"' not in seen


# --- the transition itself ---------------------------------------------------------------------


def test_one_function_decides_each_transition_and_answers_old_and_new() -> None:
    """`record` is where the `source.*` events of section 7 hook in: it says what changed."""
    now = datetime(2026, 8, 16, 12, tzinfo=UTC)
    src = DataSource(id=7, name="crm", connector="acme", consecutive_failures=0)

    def failed(auth: str | None = None) -> HealthChange:
        return record(src, RunFinished("failed", now, auth_error=auth), now=now, pause_after=3)

    assert failed() == HealthChange(7, "healthy", "failing", 1)
    assert failed("authentication failed: revoked") == HealthChange(7, "failing", "needs_reauth", 2)
    # the platform down next: nothing new about the credentials, the refusal stands
    change = failed()
    assert change == HealthChange(7, "needs_reauth", "paused", 3, paused=True)
    assert src.auth_error == "authentication failed: revoked"
    assert failed().paused is False  # paused once, not at every failure after
    assert record(src, Resumed(now), now=now) == HealthChange(7, "paused", "needs_reauth", 0)
    assert record(src, CredentialsStored({"api_key": "new"}), now=now) == HealthChange(
        7, "needs_reauth", "failing", 0
    )
    ok = record(src, RunFinished("succeeded", now, warned=True), now=now, pause_after=3)
    assert ok == HealthChange(7, "failing", "degraded", 0)
    assert not record(src, RunFinished("partial", now), now=now).changed
