"""An ``sql`` source through the API: its URL holds no password, its mappings only read.

The target databases are real (PostgreSQL in a scratch schema, MariaDB in a scratch table, made
and dropped by ``tests/connectors/test_sql.py``'s helpers). A mapping whose query writes, or
slips several statements past the window rule, is refused with a 422 that says why, and the
target is left as it was, whether the query arrives at mapping time or, stored before the rule,
at preview and sync.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sync_factories import make_mapping

from app.core.db import session_scope
from app.models import AuditEvent, DataSource, Mapping
from factories import cycle, key_result, objective
from tests.connectors.test_sql import ROWS, SECRET, Db, _mariadb, _postgres, count

PG_SOURCE = "postgresql://postgres@127.0.0.1:5432/postgres"
MARIA_SOURCE = "mysql://root@127.0.0.1:3306/test"


@pytest.fixture(params=["postgresql", "mariadb"])
def target(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Db]:
    monkeypatch.setenv("KRSYNC_ALLOW_PRIVATE_NETWORKS", "true")  # both listen on 127.0.0.1
    yield from (_postgres() if request.param == "postgresql" else _mariadb())


def _source(client: TestClient, url: str) -> int:
    created = client.post(
        "/api/v1/data-sources",
        json={"name": "Shop database", "connector": "sql", "config": {"url": url}},
    )
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def _kr(client: TestClient) -> int:
    o = objective(client, cycle(client)["id"])
    return int(key_result(client, o["id"], aggregation="sum")["id"])


def _map(client: TestClient, kr: int, source: int, query: str) -> httpx.Response:
    body = {
        "key_result_id": kr,
        "data_source_id": source,
        "metric": "value",
        "params": {"query": query},
    }
    return client.post("/api/v1/mappings", json=body)


def _url(db: Db) -> str:
    return PG_SOURCE if db.url.startswith("postgresql") else MARIA_SOURCE


def _insert(db: Db) -> str:
    return f"INSERT INTO {db.table} (day, grp, amount) VALUES ('2026-07-02', 'evil', 1)"


def _mappings(source: int) -> int:
    with session_scope() as s:
        return len(s.scalars(select(Mapping).where(Mapping.data_source_id == source)).all())


# --- mapping time ------------------------------------------------------------------------------


def test_a_mapping_whose_query_writes_is_refused_and_the_target_is_unchanged(
    client: TestClient, target: Db
) -> None:
    kr, source = _kr(client), _source(client, _url(target))

    refused = _map(client, kr, source, target.write)

    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "params.query"
    assert "refused a write" in refused.json()["detail"]
    assert count(target) == len(ROWS)
    assert _mappings(source) == 0


def test_several_statements_are_refused_at_mapping_time_and_run_nowhere(
    client: TestClient, target: Db
) -> None:
    kr, source = _kr(client), _source(client, _url(target))
    select_ = f"SELECT day, amount FROM {target.table}"
    escaped = f"{select_} WHERE '\\:from' < '\\:to'; COMMIT; {_insert(target)}"
    bound = f"{select_} WHERE day BETWEEN :from AND :to; COMMIT; {_insert(target)}"

    for query in (escaped, bound):
        refused = _map(client, kr, source, query)
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "params.query", refused.text

    assert count(target) == len(ROWS)
    assert _mappings(source) == 0


def test_a_query_that_reads_is_mapped(client: TestClient, target: Db) -> None:
    kr, source = _kr(client), _source(client, _url(target))
    query = (
        f"SELECT day, SUM(amount) FROM {target.table} WHERE day BETWEEN :from AND :to GROUP BY day"
    )

    created = _map(client, kr, source, query)

    assert created.status_code == 201, created.text


def test_an_unreachable_database_leaves_the_query_to_the_first_sync(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KRSYNC_ALLOW_PRIVATE_NETWORKS", "true")
    kr, source = _kr(client), _source(client, "postgresql://reader@127.0.0.1:1/shop")

    created = _map(client, kr, source, "SELECT d, v FROM t WHERE d BETWEEN :from AND :to")

    assert created.status_code == 201, created.text


# --- a query stored before the rule: preview and sync -------------------------------------------


def test_a_stored_query_that_commits_then_writes_changes_nothing_on_preview_or_sync(
    client: TestClient, target: Db
) -> None:
    kr, source = _kr(client), _source(client, _url(target))
    escaped = (
        f"SELECT day, amount FROM {target.table} WHERE '\\:from' < '\\:to';"
        f" COMMIT; {_insert(target)}"
    )
    mapping = make_mapping(kr, source, metric="value", params={"query": escaped})

    preview = client.post(
        f"/api/v1/mappings/{mapping}/preview", json={"from": "2026-07-01", "to": "2026-07-03"}
    )
    sync = client.post(f"/api/v1/data-sources/{source}/sync")

    assert count(target) == len(ROWS)
    assert preview.status_code == 422, preview.text
    assert ":from" in preview.json()["detail"]
    assert sync.status_code == 202, sync.text
    run = client.get(f"/api/v1/sync-runs/{sync.json()['id']}").json()
    assert run["status"] == "failed", run
    assert ":from and :to" in run["error"]


# --- the URL holds no password ----------------------------------------------------------------


def _audit_text() -> str:
    with session_scope() as s:
        return repr([(e.action, e.changes) for e in s.scalars(select(AuditEvent))])


def _stored_configs() -> str:
    with session_scope() as s:
        return repr([d.config for d in s.scalars(select(DataSource))])


def test_a_password_in_the_url_is_refused_at_creation_and_on_change(client: TestClient) -> None:
    with_password = f"postgresql://reader:{SECRET}@db.example.com/shop"
    created = client.post(
        "/api/v1/data-sources",
        json={"name": "Shop", "connector": "sql", "config": {"url": with_password}},
    )
    source = _source(client, "postgresql://reader@db.example.com/shop")
    changed = client.patch(
        f"/api/v1/data-sources/{source}", json={"config": {"url": with_password}}
    )

    for refused in (created, changed):
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "config.url"
        assert "put it in the credentials" in refused.json()["detail"]
        assert SECRET[:8] not in refused.text
    kept = client.get(f"/api/v1/data-sources/{source}").json()
    assert kept["config"]["url"] == "postgresql://reader@db.example.com/shop"
    assert SECRET[:8] not in _audit_text()
    assert SECRET[:8] not in _stored_configs()
