"""Data sources: admin-only CRUD, connector-validated config, write-only encrypted credentials."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from httpx import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from app.core import clock
from app.core.settings import get_settings
from app.models import AuditEvent, Mapping, Observation
from connectors import registry
from connectors.demo import DemoConnector
from factories import (
    api_key_headers,
    check_in,
    data_source,
    key_result,
    mapping,
    objective,
    workspace,
)

CANARY = "canary-s3cr3t-9f2e"
TODAY = clock.today()


class TokenCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: str = Field(min_length=8)


class SecretiveConnector(DemoConnector):
    """The demo figures behind a credential, to follow a secret through the API."""

    key = "secretive"
    name = "Demo data behind a token"
    credentials_model = TokenCredentials  # type: ignore[assignment]


@pytest.fixture
def secretive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        registry, "_cache", {**registry.load_connectors(), "secretive": SecretiveConnector}
    )


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("KRSYNC_SECRET_KEY", key)
    get_settings.cache_clear()
    yield key
    get_settings.cache_clear()


@pytest.fixture
def no_secret_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("KRSYNC_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _audit(db_url: str) -> list[tuple[str, str, Any]]:
    engine = create_engine(db_url)
    try:
        with Session(engine) as s:
            rows = s.execute(
                select(AuditEvent.action, AuditEvent.entity, AuditEvent.changes)
                .where(AuditEvent.entity == "data_source")
                .order_by(AuditEvent.id)
            ).all()
            return [tuple(r) for r in rows]
    finally:
        engine.dispose()


# --- CRUD -------------------------------------------------------------------------------------


def test_create_read_list_update_delete(client: TestClient, no_secret_key: None) -> None:
    created = data_source(client, credentials={})
    assert created["name"] == "Demo web analytics"
    assert created["connector"] == "demo"
    assert created["config"] == {"seed": 7}
    assert created["credentials_set"] is False
    assert created["timezone"] == "UTC"
    assert created["schedule"] == "0 3 * * *"
    assert created["lookback_days"] == 3
    assert created["enabled"] is True
    assert created["last_synced_day"] is None
    assert created["last_success_at"] is None
    assert "credentials" not in created
    assert "credentials_encrypted" not in created
    assert created.pop("push_secret") is None  # only a push source gets one, at creation
    sid = created["id"]

    assert client.get(f"/api/v1/data-sources/{sid}").json() == created
    listed = client.get("/api/v1/data-sources").json()
    assert listed == {"items": [created], "total": 1}

    changes = {
        "name": "Demo (Berlin)",
        "config": {"seed": 8},
        "timezone": "Europe/Berlin",
        "schedule": "30 4 * * 1-5",
        "lookback_days": 0,
        "enabled": False,
    }
    patched = client.patch(f"/api/v1/data-sources/{sid}", json=changes)
    assert patched.status_code == 200, patched.text
    assert patched.json() | changes == patched.json()

    partial = client.patch(f"/api/v1/data-sources/{sid}", json={"lookback_days": 7}).json()
    assert partial["lookback_days"] == 7
    assert partial["name"] == "Demo (Berlin)"

    assert client.delete(f"/api/v1/data-sources/{sid}").status_code == 204
    assert client.get(f"/api/v1/data-sources/{sid}").status_code == 404
    assert client.delete(f"/api/v1/data-sources/{sid}").status_code == 404
    assert client.patch(f"/api/v1/data-sources/{sid}", json={}).status_code == 404


def test_a_source_shows_its_api_version_and_sunset_and_its_config_changes_them(
    client: TestClient, secret_key: str
) -> None:
    """SPEC sections 4 and 7: a source's read carries the platform API version its calls use
    and the day the vendor retires it, and moving to a newer version is a config change.
    LinkedIn supports each month's version a year at least
    (https://learn.microsoft.com/en-us/linkedin/marketing/versioning); Meta dates each Graph
    version's end (https://developers.facebook.com/docs/graph-api/changelog/versions/: v19.0
    until 21 May 2026, v26.0 not dated yet); Salesforce retires 31.0-40.0 with Summer '28
    (https://help.salesforce.com/s/articleView?id=005321531), nothing later announced.
    """
    linkedin = data_source(
        client,
        name="LinkedIn page",
        connector="linkedin",
        config={"organization_id": "2414183"},
        credentials={"access_token": "li-token-0123456789"},
    )
    assert (linkedin["api_version"], linkedin["api_version_sunset"]) == ("202606", "2027-06-01")
    moved = client.patch(
        f"/api/v1/data-sources/{linkedin['id']}",
        json={"config": {"organization_id": "2414183", "api_version": "202611"}},
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["api_version"], moved.json()["api_version_sunset"]) == (
        "202611",
        "2027-11-01",
    )
    read = client.get(f"/api/v1/data-sources/{linkedin['id']}").json()
    assert (read["api_version"], read["api_version_sunset"]) == ("202611", "2027-11-01")

    cases = [
        ("meta", {"page_id": "1234", "api_version": "v19.0"}, "v19.0", "2026-05-21"),
        ("meta", {"page_id": "1234", "api_version": "v26.0"}, "v26.0", None),
        ("salesforce", {"api_version": "v35.0"}, "v35.0", "2028-05-01"),
        ("salesforce", {}, "v60.0", None),
    ]
    credentials = {
        "meta": {"access_token": "meta-token-0123456789"},
        "salesforce": {"client_id": "c", "client_secret": "s", "refresh_token": "r"},
    }
    for i, (connector, config, version, sunset) in enumerate(cases):
        made = data_source(
            client,
            name=f"{connector} {i}",
            connector=connector,
            config=config,
            credentials=credentials[connector],
        )
        assert (made["api_version"], made["api_version_sunset"]) == (version, sunset)

    demo = data_source(client, name="Demo")
    assert (demo["api_version"], demo["api_version_sunset"]) == (None, None)
    listed = client.get("/api/v1/data-sources", params={"limit": 100}).json()["items"]
    assert {s["name"]: s["api_version"] for s in listed}["LinkedIn page"] == "202611"


@pytest.mark.parametrize(
    ("connector", "config"),
    [
        ("linkedin", {"organization_id": "2414183", "api_version": "202613"}),
        ("linkedin", {"organization_id": "2414183", "api_version": "2026-06"}),
        ("meta", {"page_id": "1234", "api_version": "25.0"}),
        ("salesforce", {"api_version": "v60.1"}),
    ],
)
def test_an_api_version_of_the_wrong_shape_is_a_422(
    client: TestClient, secret_key: str, connector: str, config: dict[str, Any]
) -> None:
    """The version goes into a header or a path as it is: a month that doesn't exist or a
    version the vendor never numbers so is refused when the source is saved, naming the field."""
    response = client.post(
        "/api/v1/data-sources",
        json={"name": "versioned", "connector": connector, "config": config},
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "config.api_version"


def test_a_lookback_shorter_than_the_connector_recommends_is_a_notice(client: TestClient) -> None:
    """SPEC's default of 3 days stays; a Search Console source is told to look back 4.

    Search Console's final figures come two to three days late (``dataState``: ``final`` leaves
    out days not yet final, which the next syncs must read again). Docs:
    https://developers.google.com/webmaster-tools/v1/searchanalytics/query
    """
    created = data_source(
        client,
        name="Search Console",
        connector="search_console",
        config={"site_url": "https://www.example.com/"},
    )
    sid = created["id"]
    assert created["lookback_days"] == 3
    [notice] = created["notices"]
    assert notice.startswith("Google Search Console figures of the last 4 days can still arrive")
    assert "looks back 3: set `lookback_days` to 4 or more" in notice
    assert client.get(f"/api/v1/data-sources/{sid}").json()["notices"] == [notice]
    assert client.get("/api/v1/data-sources").json()["items"][0]["notices"] == [notice]

    patched = client.patch(f"/api/v1/data-sources/{sid}", json={"lookback_days": 4})
    assert patched.json()["notices"] == []
    assert client.get(f"/api/v1/data-sources/{sid}").json()["notices"] == []
    # The demo connector recommends no lookback: its sources carry no such notice.
    assert data_source(client, lookback_days=0)["notices"] == []


def test_every_write_is_audited(client: TestClient, db_url: str) -> None:
    sid = data_source(client)["id"]
    client.patch(f"/api/v1/data-sources/{sid}", json={"lookback_days": 5})
    client.delete(f"/api/v1/data-sources/{sid}")
    events = _audit(db_url)
    assert [(a, e) for a, e, _ in events] == [
        ("create", "data_source"),
        ("update", "data_source"),
        ("delete", "data_source"),
    ]
    assert events[1][2] == {"lookback_days": [3, 5]}


def test_duplicate_name_is_409(client: TestClient) -> None:
    first = data_source(client)
    response = client.post(
        "/api/v1/data-sources", json={"name": "Demo web analytics", "connector": "demo"}
    )
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]
    assert response.json()["field"] == "name"

    other = data_source(client, name="Other")
    clash = client.patch(f"/api/v1/data-sources/{other['id']}", json={"name": first["name"]})
    assert clash.status_code == 409
    same = client.patch(f"/api/v1/data-sources/{first['id']}", json={"name": first["name"]})
    assert same.status_code == 200


def test_unknown_connector_lists_the_installed_ones(client: TestClient) -> None:
    response = client.post("/api/v1/data-sources", json={"name": "x", "connector": "nope"})
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == "connector"
    assert "`nope`" in body["detail"]
    assert "`demo`" in body["detail"]


@pytest.mark.parametrize(
    ("over", "field", "needle"),
    [
        ({"config": {"seed": "not-a-number"}}, "config.seed", "integer"),
        ({"config": {"sead": 1}}, "config.sead", "accepted: `seed`"),
        ({"config": []}, "config", "dictionary"),
        ({"config": {"seed": 1, "x": "a\x00b"}}, "config", "NUL"),
        ({"credentials": {"token": "abcd1234"}}, "credentials.token", "unknown field"),
        ({"timezone": "Mars/Olympus"}, "timezone", "IANA"),
        ({"timezone": "../../etc/passwd"}, "timezone", "IANA"),
        ({"schedule": "0 3 * *"}, "schedule", "got 4, expected 5"),
        ({"schedule": "61 3 * * *"}, "schedule", "maximum value (59)"),
        ({"schedule": "0 3 31 2 *"}, "schedule", "never fires"),
        ({"lookback_days": 91}, "lookback_days", "90"),
        ({"lookback_days": -1}, "lookback_days", "0"),
        ({"enabled": "perhaps"}, "enabled", "boolean"),
        ({"name": ""}, "name", "at least 1"),
        ({"colour": "red"}, "colour", "Extra"),
    ],
)
def test_bad_sources_are_422(
    client: TestClient, over: dict[str, Any], field: str, needle: str
) -> None:
    body = {"name": "Demo", "connector": "demo"} | over
    response = client.post("/api/v1/data-sources", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert needle in response.json()["detail"]
    assert client.get("/api/v1/data-sources").json()["total"] == 0


def test_non_finite_config_is_422(client: TestClient) -> None:
    raw = b'{"name": "Demo", "connector": "demo", "config": {"seed": 1, "x": NaN}}'
    response = client.post(
        "/api/v1/data-sources", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert "finite" in response.json()["detail"]


def test_patch_rules(client: TestClient) -> None:
    sid = data_source(client)["id"]
    url = f"/api/v1/data-sources/{sid}"
    moved = client.patch(url, json={"connector": "ga4"})
    assert moved.status_code == 422
    assert moved.json()["field"] == "connector"
    assert "create a new data source" in moved.json()["detail"]
    assert client.patch(url, json={"connector": "demo"}).status_code == 200

    for name in ("name", "config", "timezone", "schedule", "lookback_days", "enabled"):
        response = client.patch(url, json={name: None})
        assert response.status_code == 422, name
        assert response.json()["field"] == name

    bad = client.patch(url, json={"config": {"seed": "x"}})
    assert bad.status_code == 422
    assert bad.json()["field"] == "config.seed"
    assert client.patch(url, json={"config": {}}).json()["config"] == {}


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_data_sources_are_admin_only(client: TestClient, anon: TestClient, role: str) -> None:
    sid = data_source(client)["id"]
    headers = api_key_headers(client, role)
    calls = [
        anon.post("/api/v1/data-sources", json={"name": "x", "connector": "demo"}, headers=headers),
        anon.get("/api/v1/data-sources", headers=headers),
        anon.get(f"/api/v1/data-sources/{sid}", headers=headers),
        anon.patch(f"/api/v1/data-sources/{sid}", json={"enabled": False}, headers=headers),
        anon.delete(f"/api/v1/data-sources/{sid}", headers=headers),
        anon.post(f"/api/v1/data-sources/{sid}/test", headers=headers),
        anon.post(f"/api/v1/data-sources/{sid}/sync", headers=headers),
    ]
    for response in calls:
        assert response.status_code == 403, response.request.url
        assert "admin" in response.json()["detail"]
    assert anon.get("/api/v1/data-sources").status_code == 401


# --- credentials ------------------------------------------------------------------------------


def test_credentials_need_the_secret_key(
    client: TestClient, secretive: None, no_secret_key: None
) -> None:
    body = {"name": "S", "connector": "secretive", "credentials": {"api_key": "0123456789"}}
    response = client.post("/api/v1/data-sources", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == "credentials"
    assert "KRSYNC_SECRET_KEY" in response.json()["detail"]
    assert client.get("/api/v1/data-sources").json()["total"] == 0


def test_demo_needs_no_key(client: TestClient, no_secret_key: None) -> None:
    created = data_source(client, credentials={})
    assert created["credentials_set"] is False
    assert data_source(client, name="No credentials at all")["credentials_set"] is False


def test_credentials_are_set_replaced_and_cleared(
    client: TestClient, secretive: None, secret_key: str, db_url: str
) -> None:
    body = {"name": "S", "connector": "secretive", "credentials": {"api_key": "first-key-123"}}
    created = client.post("/api/v1/data-sources", json=body).json()
    assert created["credentials_set"] is True
    url = f"/api/v1/data-sources/{created['id']}"

    short = client.patch(url, json={"credentials": {"api_key": "short"}})
    assert short.status_code == 422
    assert short.json()["field"] == "credentials.api_key"
    assert client.get(url).json()["credentials_set"] is True

    other = client.patch(url, json={"enabled": False}).json()
    assert other["credentials_set"] is True
    assert client.patch(url, json={"credentials": None}).json()["credentials_set"] is False
    missing = client.patch(url, json={"credentials": {}})
    assert missing.status_code == 422
    assert missing.json()["field"] == "credentials.api_key"
    again = client.patch(url, json={"credentials": {"api_key": "second-key-456"}}).json()
    assert again["credentials_set"] is True

    changes = [c for a, _, c in _audit(db_url) if "credentials" in c]
    assert [c["credentials"] for c in changes] == ["changed"] * 3

    engine = create_engine(db_url)
    with engine.connect() as conn:
        stored = conn.scalar(text("SELECT credentials_encrypted FROM data_sources"))
    engine.dispose()
    assert stored
    assert "second-key-456" not in stored


def _everything_said(responses: list[Response]) -> str:
    return "\n".join(f"{r.status_code} {r.headers!r} {r.text}" for r in responses if r is not None)


def test_a_secret_never_leaks(
    client: TestClient,
    secretive: None,
    secret_key: str,
    db_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    said: list[Response] = []

    def call(method: str, url: str, **kwargs: Any) -> Response:
        response = client.request(method, url, **kwargs)
        said.append(response)
        return response

    good = {"name": "S", "connector": "secretive", "credentials": {"api_key": CANARY}}
    created = call("POST", "/api/v1/data-sources", json=good)
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    url = f"/api/v1/data-sources/{sid}"
    assert call("GET", url).status_code == 200
    assert call("GET", "/api/v1/data-sources").status_code == 200
    assert call("PATCH", url, json={"credentials": {"api_key": CANARY + "-2"}}).status_code == 200
    assert call("POST", f"{url}/test").status_code == 200
    _, _, kr = workspace(client)
    made = call("POST", "/api/v1/mappings", json={"key_result_id": kr, "data_source_id": sid})
    assert made.status_code == 422  # no metric
    made = call(
        "POST",
        "/api/v1/mappings",
        json={"key_result_id": kr, "data_source_id": sid, "metric": "sessions"},
    )
    assert made.status_code == 201, made.text
    window = {"from": "2026-07-01", "to": "2026-07-03"}
    assert (
        call("POST", f"/api/v1/mappings/{made.json()['id']}/preview", json=window).status_code
        == 200
    )
    assert call("POST", f"{url}/sync", json=window).status_code == 202
    assert call("GET", "/api/v1/sync-runs").status_code == 200

    failing: list[dict[str, Any]] = [
        {"credentials": {"api_key": CANARY, "extra": CANARY}},
        {"credentials": {"api_key": [CANARY]}},
        {"credentials": {"api_key": {"nested": CANARY}}},
        {"credentials": CANARY},
        {"credentials": {"api_key": CANARY + "\x00"}},
        {"config": {"seed": CANARY}},
        {"config": CANARY},
        {"timezone": CANARY},
        {"schedule": CANARY},
        {"name": CANARY * 20},
    ]
    for over in failing:
        response = call("POST", "/api/v1/data-sources", json={**good, "name": "T"} | over)
        assert response.status_code == 422, (over, response.text)
        response = call("PATCH", url, json=over)
        assert response.status_code == 422, (over, response.text)
    demo = {"name": "D", "connector": "demo", "credentials": {"token": CANARY}}
    assert call("POST", "/api/v1/data-sources", json=demo).status_code == 422

    assert CANARY not in _everything_said(said)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        audit = " ".join(str(row) for row in conn.execute(text("SELECT * FROM audit_events")))
        sources = " ".join(str(row) for row in conn.execute(text("SELECT * FROM data_sources")))
        runs = " ".join(str(row) for row in conn.execute(text("SELECT * FROM sync_runs")))
    engine.dispose()
    assert "credentials" in audit
    assert CANARY not in audit
    assert CANARY not in sources
    assert CANARY not in runs
    assert CANARY not in caplog.text
    assert all(CANARY not in r.getMessage() for r in caplog.records)


# --- delete -----------------------------------------------------------------------------------


def _count(db_url: str, model: Any, *where: Any) -> int:
    engine = create_engine(db_url)
    try:
        with Session(engine) as s:
            return s.scalar(select(func.count()).select_from(model).where(*where)) or 0
    finally:
        engine.dispose()


def test_delete_with_mappings_needs_cascade(client: TestClient, db_url: str) -> None:
    _, objective_id, kr = workspace(client)
    sid = data_source(client)["id"]
    mid = mapping(client, kr, sid)["id"]
    response = client.delete(f"/api/v1/data-sources/{sid}")
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "cascade=true" in detail
    assert "observation" in detail
    assert client.get(f"/api/v1/mappings/{mid}").status_code == 200
    # A mapped key result takes no hand-typed figure: the check-in is on one no source measures.
    check_in(client, key_result(client, objective_id, title="Partners")["id"], "2026-07-02", 5)

    assert client.delete(f"/api/v1/data-sources/{sid}", params={"cascade": True}).status_code == 204
    assert client.get(f"/api/v1/mappings/{mid}").status_code == 404
    assert client.get("/api/v1/sync-runs", params={"data_source_id": sid}).json()["total"] == 0
    assert _count(db_url, Mapping) == 0
    assert _count(db_url, Observation, Observation.mapping_id.is_not(None)) == 0
    assert _count(db_url, Observation, Observation.mapping_id.is_(None)) == 1  # the check-in


# --- test and sync ----------------------------------------------------------------------------


def test_check_answers_ok_and_message(client: TestClient) -> None:
    sid = data_source(client)["id"]
    response = client.post(f"/api/v1/data-sources/{sid}/test")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"ok", "message", "notices"}
    assert body["notices"] == []
    assert isinstance(body["ok"], bool)
    assert isinstance(body["message"], str)
    assert client.post("/api/v1/data-sources/999/test").status_code == 404


def test_manual_sync_answers_202_with_the_run(client: TestClient) -> None:
    sid = data_source(client)["id"]
    response = client.post(f"/api/v1/data-sources/{sid}/sync")
    assert response.status_code == 202, response.text
    run = response.json()
    assert run["data_source_id"] == sid
    assert run["trigger"] == "manual"
    assert run["status"] == "running"
    for key in ("window_from", "window_to", "started_at", "finished_at", "api_calls"):
        assert key in run
    assert client.get(f"/api/v1/sync-runs/{run['id']}").status_code == 200

    yesterday = (TODAY - timedelta(days=1)).isoformat()
    window = {"from": "2026-07-01", "to": yesterday}
    windowed = client.post(f"/api/v1/data-sources/{sid}/sync", json=window)
    assert windowed.status_code == 202, windowed.text
    assert windowed.json()["window_from"] == "2026-07-01"
    assert windowed.json()["window_to"] == yesterday
    assert client.post("/api/v1/data-sources/999/sync").status_code == 404


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"from": "2026-07-01"}, "both"),
        ({"to": "2026-07-01"}, "both"),
        ({"from": "2026-07-02", "to": "2026-07-01"}, "on or after"),
        ({"from": "2020-01-01", "to": "2026-07-01"}, "at most"),
        ({"from": str(TODAY - timedelta(days=9)), "to": str(TODAY + timedelta(days=5))}, "after"),
        ({"from_": "2026-07-01", "to": "2026-07-02"}, "from_"),
        ({"from": "yesterday", "to": "2026-07-02"}, "from"),
    ],
)
def test_bad_sync_windows_are_422(client: TestClient, body: dict[str, Any], needle: str) -> None:
    sid = data_source(client)["id"]
    response = client.post(f"/api/v1/data-sources/{sid}/sync", json=body)
    assert response.status_code == 422, response.text
    assert needle in response.json()["detail"]
    assert client.get("/api/v1/sync-runs").json()["total"] == 0


def test_disabled_source_does_not_sync(client: TestClient) -> None:
    sid = data_source(client, enabled=False)["id"]
    response = client.post(f"/api/v1/data-sources/{sid}/sync")
    assert response.status_code == 409
    assert "disabled" in response.json()["detail"]


def test_new_config_refetches_the_mappings(client: TestClient) -> None:
    c, _, kr = workspace(client)
    other = key_result(client, objective(client, c)["id"], title="Signups")["id"]
    sid = data_source(client)["id"]
    mapping(client, kr, sid)
    mapping(client, other, sid, "signups")
    before = client.get("/api/v1/sync-runs", params={"data_source_id": sid}).json()["total"]
    client.patch(f"/api/v1/data-sources/{sid}", json={"lookback_days": 9})
    after_unrelated = client.get("/api/v1/sync-runs", params={"data_source_id": sid}).json()
    assert after_unrelated["total"] == before

    client.patch(f"/api/v1/data-sources/{sid}", json={"config": {"seed": 99}})
    runs = client.get("/api/v1/sync-runs", params={"data_source_id": sid}).json()
    assert runs["total"] == before + 1
    assert runs["items"][0]["trigger"] == "backfill"
