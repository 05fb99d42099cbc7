"""The audit trail, readable (SPEC 3): `GET /api/v1/audit-events` and `krsync audit`."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import cli
from app.core.settings import get_settings
from app.models import AuditEvent
from factories import api_key_headers, cycle, key_result, objective

URL = "/api/v1/audit-events"


def _events(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get(URL, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _at(db_url: str, moments: dict[int, datetime]) -> None:
    """Moves events in time: every write of a test happens within the same second."""
    engine = create_engine(db_url)
    with Session(engine) as session:
        for event_id, moment in moments.items():
            session.execute(update(AuditEvent).where(AuditEvent.id == event_id).values(at=moment))
        session.commit()
    engine.dispose()


@pytest.fixture
def trail(client: TestClient, anon: TestClient) -> dict[str, int]:
    """Writes by the bootstrap admin and by an editor's key, in this order:

    1 create cycle, 2 create objective, 3 create key_result, 4 create api_key (admin);
    5 create check_in, 6 update check_in, 7 update key_result (editor).
    """
    c = cycle(client)["id"]
    o = objective(client, c)["id"]
    kr = key_result(client, o)["id"]
    editor = api_key_headers(client, "editor")
    made = anon.post(
        f"/api/v1/key-results/{kr}/check-ins",
        json={"date": "2026-07-02", "value": 5},
        headers=editor,
    ).json()
    anon.patch(
        f"/api/v1/key-results/{kr}/check-ins/{made['id']}", json={"value": 6}, headers=editor
    )
    anon.patch(f"/api/v1/key-results/{kr}", json={"title": "3,500 followers"}, headers=editor)
    return {"cycle": c, "objective": o, "kr": kr, "check_in": made["id"]}


def test_newest_first_with_every_field(client: TestClient, trail: dict[str, int]) -> None:
    body = _events(client)
    assert body["total"] == 7
    items = body["items"]
    assert [i["id"] for i in items] == [7, 6, 5, 4, 3, 2, 1]
    assert set(items[0]) == {"id", "actor", "action", "entity", "entity_id", "changes", "at"}
    assert items[0] == items[0] | {
        "actor": "key:editor-key",
        "action": "update",
        "entity": "key_result",
        "entity_id": trail["kr"],
        "changes": {"title": ["3,000 new followers", "3,500 followers"]},
    }
    assert items[1]["changes"] == {"key_result_id": trail["kr"], "value": [5.0, 6.0]}
    assert items[3]["changes"] == {"name": "editor-key", "role": "editor"}  # never the key
    assert datetime.fromisoformat(items[0]["at"]).tzinfo is not None


def test_filters_combine(client: TestClient, trail: dict[str, int]) -> None:
    def ids(**params: Any) -> list[int]:
        body = _events(client, **params)
        assert body["total"] == len(body["items"])
        return [i["id"] for i in body["items"]]

    assert ids(entity="check_in") == [6, 5]
    assert ids(entity="check_in", entity_id=trail["check_in"]) == [6, 5]
    assert ids(entity="check_in", entity_id=trail["check_in"] + 1) == []
    assert ids(entity="key_result", entity_id=trail["kr"]) == [7, 3]
    assert ids(actor="key:editor-key") == [7, 6, 5]
    assert ids(actor="bootstrap-admin", entity="key_result") == [3]
    assert ids(actor="nobody") == []


def test_pages_keep_the_total(client: TestClient, trail: dict[str, int]) -> None:
    first = _events(client, limit=3)
    second = _events(client, limit=3, offset=3)
    last = _events(client, limit=3, offset=6)
    assert first["total"] == second["total"] == last["total"] == 7
    pages = [i["id"] for p in (first, second, last) for i in p["items"]]
    assert pages == [7, 6, 5, 4, 3, 2, 1]


def test_from_and_to_are_whole_days_in_utc(
    client: TestClient, db_url: str, trail: dict[str, int]
) -> None:
    """Both inclusive: `to=2026-07-01` keeps 23:59:59 of that day and nothing of the 2nd."""
    _at(
        db_url,
        {
            1: datetime(2026, 6, 30, 23, 59, 59, tzinfo=UTC),
            2: datetime(2026, 7, 1, 0, 0, 0, tzinfo=UTC),
            3: datetime(2026, 7, 1, 23, 59, 59, tzinfo=UTC),
            4: datetime(2026, 7, 2, 0, 0, 0, tzinfo=UTC),
            5: datetime(2026, 7, 3, 12, 0, 0, tzinfo=UTC),
            6: datetime(2026, 7, 3, 12, 0, 0, tzinfo=UTC),
            7: datetime(2026, 7, 4, 8, 0, 0, tzinfo=UTC),
        },
    )

    def ids(**params: Any) -> list[int]:
        return [i["id"] for i in _events(client, **params)["items"]]

    assert ids(**{"from": "2026-07-01", "to": "2026-07-01"}) == [3, 2]
    assert ids(**{"from": "2026-07-02"}) == [7, 6, 5, 4]
    assert ids(to="2026-07-01") == [3, 2, 1]
    assert ids(**{"from": "2026-07-03", "to": "2026-07-03"}) == [6, 5]  # same moment: by id
    assert _events(client, **{"from": "2026-07-01", "to": "2026-07-03"})["total"] == 5


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2026-7-1", "from"),
        ("to=20260701", "to"),
        ("from=2026-07-02T00:00:00", "from"),
        ("from=2026-07-02&to=2026-07-01", "to"),
        ("entity=key-result", "entity"),
        ("entity_id=0", "entity_id"),
        ("limit=501", "limit"),
        ("who=bootstrap-admin", "who"),
    ],
)
def test_bad_filters_are_refused(client: TestClient, query: str, field: str) -> None:
    response = client.get(f"{URL}?{query}")
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]


def test_admins_only(client: TestClient, anon: TestClient) -> None:
    for role in ("viewer", "editor"):
        response = anon.get(URL, headers=api_key_headers(client, role))
        assert response.status_code == 403, role
    assert anon.get(URL).status_code == 401
    assert anon.get(f"{URL}?who=x").status_code == 401  # the key is checked before the query


def test_a_data_sources_credentials_never_appear(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Creating and changing a source's credentials reads `changed`, never their value."""
    monkeypatch.setenv("KRSYNC_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()
    secret = "audit-canary-5f1e0c-s3cr3t"
    created = client.post(
        "/api/v1/data-sources",
        json={
            "name": "Pushed",
            "connector": "push",
            "config": {},
            "credentials": {"secret": secret},
        },
    )
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    changed = client.patch(
        f"/api/v1/data-sources/{sid}", json={"credentials": {"secret": secret + "2"}}
    )
    assert changed.status_code == 200, changed.text
    body = _events(client, entity="data_source", entity_id=sid)
    assert [i["changes"].get("credentials") for i in body["items"]] == ["changed", "changed"]
    assert secret not in json.dumps(body)
    get_settings.cache_clear()


# --- krsync audit -----------------------------------------------------------------------------

runner = CliRunner()


def test_cli_prints_the_trail_as_a_table(client: TestClient, trail: dict[str, int]) -> None:
    result = runner.invoke(cli, ["audit", "--entity", "check_in"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "actor" in line)
    for column in ("at (UTC)", "actor", "action", "entity", "id", "changes"):
        assert column in header
    # A row starts with its moment; a long `changes` folds onto the lines below it.
    rows = [line for line in lines if re.match(r"\s*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", line)]
    assert all("key:editor-key" in row for row in rows)
    assert len(rows) == 2
    assert "update" in rows[0]
    assert '"value": [5.0, 6.0]' in rows[0]
    assert "create" in rows[1]


def test_cli_json_is_the_apis_answer(client: TestClient, trail: dict[str, int]) -> None:
    args = ["--actor", "key:editor-key", "--limit", "2"]
    result = runner.invoke(cli, ["audit", *args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == _events(client, actor="key:editor-key", limit=2)
    assert json.loads(result.stdout)["total"] == 3

    window = ["--from", "2026-07-01", "--to", "2999-12-31", "--entity-id", str(trail["kr"])]
    result = runner.invoke(cli, ["audit", *window, "--entity", "key_result", "--json"])
    assert [i["id"] for i in json.loads(result.stdout)["items"]] == [7, 3]


def test_cli_says_when_more_are_left(client: TestClient, trail: dict[str, int]) -> None:
    result = runner.invoke(cli, ["audit", "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert "2 of 7 shown (newest first); --offset 2 for the next ones" in result.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--entity", "key-result"], "unknown --entity 'key-result'"),
        (["--from", "2026-07-02", "--to", "2026-07-01"], "--to must be on or after --from"),
        (["--from", "2026-7-2"], "YYYY-MM-DD"),
        (["--limit", "0"], "--limit"),
    ],
)
def test_cli_refuses_bad_filters_in_one_line(
    client: TestClient, args: list[str], needle: str
) -> None:
    result = runner.invoke(cli, ["audit", *args])
    assert result.exit_code == 2, result.output
    assert needle in result.stderr
    assert "Traceback" not in result.output


def test_cli_with_nothing_to_show(client: TestClient) -> None:
    result = runner.invoke(cli, ["audit"])
    assert result.exit_code == 0, result.output
    assert "no audit events yet" in result.stderr
