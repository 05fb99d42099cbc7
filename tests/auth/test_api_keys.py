"""Roles, the bootstrap admin key, API keys stored hashed and shown once, the audit trail."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from app.models import ApiKey, AuditEvent
from factories import workspace


def _key(client: TestClient, role: str, name: str = "k") -> dict[str, object]:
    response = client.post("/api/v1/api-keys", json={"name": name, "role": role})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_missing_and_unknown_keys_are_401(anon: TestClient) -> None:
    assert anon.get("/api/v1/cycles").status_code == 401
    response = anon.get("/api/v1/cycles", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert "unknown" in response.json()["detail"]
    assert response.headers["www-authenticate"] == "Bearer"


def test_health_needs_no_key(anon: TestClient) -> None:
    assert anon.get("/healthz").json() == {"status": "ok"}
    ready = anon.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ok"


def test_roles(client: TestClient, anon: TestClient) -> None:
    viewer = {"Authorization": f"Bearer {_key(client, 'viewer')['key']}"}
    editor = {"Authorization": f"Bearer {_key(client, 'editor')['key']}"}
    body = {"name": "Q4", "start_date": "2026-10-01", "end_date": "2026-12-31"}

    assert anon.get("/api/v1/cycles", headers=viewer).status_code == 200
    denied = anon.post("/api/v1/cycles", json=body, headers=viewer)
    assert denied.status_code == 403
    assert "editor" in denied.json()["detail"]

    assert anon.post("/api/v1/cycles", json=body, headers=editor).status_code == 201
    assert anon.get("/api/v1/api-keys", headers=editor).status_code == 403
    assert (
        anon.post(
            "/api/v1/api-keys", json={"name": "x", "role": "admin"}, headers=editor
        ).status_code
        == 403
    )


def test_secret_shown_once_and_stored_hashed(client: TestClient, db_url: str) -> None:
    created = _key(client, "viewer", "grafana")
    secret = str(created["key"])
    assert secret.startswith("krs_")
    assert len(secret) > 40
    listed = client.get("/api/v1/api-keys").json()
    assert listed["total"] == 1
    assert "key" not in listed["items"][0]
    assert secret not in client.get("/api/v1/api-keys").text

    engine = create_engine(db_url)
    with engine.connect() as conn:
        dump = " ".join(str(v) for row in conn.execute(text("SELECT * FROM api_keys")) for v in row)
    engine.dispose()
    assert secret not in dump


def test_revoked_key_is_refused(client: TestClient, anon: TestClient) -> None:
    created = _key(client, "admin")
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert anon.get("/api/v1/cycles", headers=headers).status_code == 200
    assert client.delete(f"/api/v1/api-keys/{created['id']}").status_code == 204
    assert anon.get("/api/v1/cycles", headers=headers).status_code == 401
    assert client.delete("/api/v1/api-keys/999").status_code == 404


def test_last_used_is_recorded(client: TestClient, anon: TestClient) -> None:
    created = _key(client, "viewer")
    anon.get("/api/v1/cycles", headers={"Authorization": f"Bearer {created['key']}"})
    item = client.get("/api/v1/api-keys").json()["items"][0]
    assert item["last_used_at"] is not None


def test_every_write_leaves_an_audit_event(client: TestClient, db_url: str) -> None:
    cycle_id, _, kr_id = workspace(client)
    client.patch(f"/api/v1/cycles/{cycle_id}", json={"name": "renamed"})
    client.post(f"/api/v1/key-results/{kr_id}/check-ins", json={"date": "2026-07-02", "value": 5})
    # A key result with a check-in is a parent with children: its delete says so.
    assert client.delete(f"/api/v1/key-results/{kr_id}?cascade=true").status_code == 204
    created = _key(client, "viewer")

    engine = create_engine(db_url)
    with Session(engine) as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        actions = [(e.action, e.entity) for e in events]
        changes = [e.changes for e in events]
        actors = {e.actor for e in events}
        assert session.scalar(select(ApiKey.key_hash)) != created["key"]
    engine.dispose()
    assert actions == [
        ("create", "cycle"),
        ("create", "objective"),
        ("create", "key_result"),
        ("update", "cycle"),
        ("create", "check_in"),
        ("delete", "key_result"),
        ("create", "api_key"),
    ]
    assert changes[3] == {"name": ["2026-Q3", "renamed"]}
    assert actors == {"bootstrap-admin"}
    assert str(created["key"]) not in str(changes)
