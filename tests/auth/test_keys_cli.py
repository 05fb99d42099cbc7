"""`krsync keys create / list / revoke`: the API's rules for a key, from a shell."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner, Result

from app.auth.service import hash_key
from app.cli import cli
from app.core.db import session_scope
from app.models import ApiKey, AuditEvent

runner = CliRunner()


def _krsync(*args: str) -> Result:
    return runner.invoke(cli, list(args), env={"COLUMNS": "80"})


def _one_line_error(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def _create(name: str, role: str = "viewer") -> str:
    result = _krsync("keys", "create", name, "--role", role)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def _keys() -> list[ApiKey]:
    with session_scope() as s:
        return list(s.scalars(select(ApiKey).order_by(ApiKey.id)))


@pytest.mark.parametrize("name", ["", "   ", "\t"])
def test_a_blank_name_is_refused_like_the_api_does(
    db_url: str, client: TestClient, name: str
) -> None:
    result = _krsync("keys", "create", name)
    assert result.exit_code == 2
    assert _one_line_error(result) == "error: name: String should have at least 1 character"
    api = client.post("/api/v1/api-keys", json={"name": name, "role": "viewer"})
    assert api.status_code == 422, api.text
    assert api.json()["field"] == "name"
    assert _keys() == []


def test_a_name_is_kept_as_the_api_keeps_it(db_url: str) -> None:
    secret = _create("  grafana  ")
    [key] = _keys()
    assert key.name == "grafana"
    assert key.key_hash == hash_key(secret)


def test_an_unknown_role_is_a_usage_error(db_url: str) -> None:
    result = _krsync("keys", "create", "grafana", "--role", "owner")
    assert result.exit_code == 2
    assert "unknown role 'owner'" in _one_line_error(result)


def test_list_shows_every_key_but_never_a_secret(db_url: str, client: TestClient) -> None:
    grafana = _create("grafana-dashboards-eu", "viewer")
    ci = _create("ci-pipeline", "editor")
    assert client.get("/api/v1/cycles", headers={"Authorization": f"Bearer {ci}"}).is_success
    assert _krsync("keys", "revoke", "grafana-dashboards-eu").exit_code == 0

    result = _krsync("keys", "list")

    assert result.exit_code == 0, result.output
    rows = {
        line.split()[1]: line for line in result.stdout.splitlines() if line.strip()[:1].isdigit()
    }
    assert list(rows) == ["grafana-dashboards-eu", "ci-pipeline"]
    assert " viewer " in rows["grafana-dashboards-eu"]
    assert " editor " in rows["ci-pipeline"]
    keys = {k.name: k for k in _keys()}
    revoked_at = keys["grafana-dashboards-eu"].revoked_at
    assert revoked_at is not None
    assert rows["grafana-dashboards-eu"].rstrip().endswith(revoked_at.date().isoformat())
    assert "never" in rows["grafana-dashboards-eu"]  # last used
    used_at = keys["ci-pipeline"].last_used_at
    assert used_at is not None
    assert used_at.strftime("%Y-%m-%d %H:%M") in rows["ci-pipeline"]
    for key in keys.values():
        assert key.key_hash not in result.output
    for secret in (grafana, ci):
        assert secret not in result.output
        assert secret[4:12] not in result.output  # not even its first characters
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_list_without_keys(db_url: str) -> None:
    result = _krsync("keys", "list")
    assert result.exit_code == 0
    assert "no API keys yet" in result.stderr


def test_revoke_by_name_or_id_refuses_the_key_from_then_on(db_url: str, client: TestClient) -> None:
    first = _create("grafana")
    second = _create("looker")
    looker_id = _keys()[1].id

    by_name = _krsync("keys", "revoke", "grafana")
    by_id = _krsync("keys", "revoke", str(looker_id))

    assert by_name.exit_code == 0, by_name.output
    assert by_id.exit_code == 0, by_id.output
    assert "revoked key" in by_name.stderr
    assert "(looker)" in by_id.stderr
    for secret in (first, second):
        answer = client.get("/api/v1/cycles", headers={"Authorization": f"Bearer {secret}"})
        assert answer.status_code == 401
    with session_scope() as s:
        actions = list(s.scalars(select(AuditEvent.action).where(AuditEvent.actor == "cli")))
    assert actions == ["create", "create", "revoke", "revoke"]

    again = _krsync("keys", "revoke", "grafana")
    assert again.exit_code == 0
    assert "already revoked" in again.stderr


def test_revoke_asks_for_the_id_when_a_name_is_shared(db_url: str) -> None:
    _create("laptop")
    _create("laptop")
    result = _krsync("keys", "revoke", "laptop")
    assert result.exit_code == 2
    ids = ", ".join(str(k.id) for k in _keys())
    assert _one_line_error(result) == (
        f"error: 2 live keys are named 'laptop' (ids {ids}): give the id"
    )
    assert all(k.revoked_at is None for k in _keys())


def test_revoke_of_an_unknown_key(db_url: str) -> None:
    _create("grafana")
    for unknown in ("nope", "999"):
        result = _krsync("keys", "revoke", unknown)
        assert result.exit_code == 2
        assert "no API key is named" in _one_line_error(result)
    assert all(k.revoked_at is None for k in _keys())
