"""Cached progress reads answered on the event loop stay exact, and so does authentication.

On PostgreSQL a cache hit reads the progress revision and the API key with one autocommit
SELECT each on an asyncio connection (app/core/fastread.py), not through the ORM and its
worker thread. Exactness is what matters: a write from any process or replica shows at once,
and a revoked key is refused at once.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url
from sqlalchemy.orm import Session

from app.core import fastread
from app.models import Observation
from factories import check_in, create, workspace
from tests.okr.test_statement_count import count_statements

AS_OF = "2026-08-15"


def _value(client: TestClient, kr_id: int) -> float:
    response = client.get(f"/api/v1/key-results/{kr_id}?as_of={AS_OF}")
    assert response.status_code == 200, response.text
    value: float = response.json()["progress"]["current_value"]
    return value


def test_a_write_by_another_process_shows_in_the_next_cached_read(
    client: TestClient, db_url: str
) -> None:
    """Another replica, a CLI sync: its own engine and sessions, the same database."""
    _, _, kr = workspace(client)
    check_in(client, kr, "2026-07-01", 40)
    assert _value(client, kr) == 40
    assert _value(client, kr) == 40  # answered from the cache

    elsewhere = create_engine(db_url)
    try:
        with Session(elsewhere) as session, session.begin():
            session.add(Observation(key_result_id=kr, date=date(2026, 7, 2), value=55.0))
    finally:
        elsewhere.dispose()

    assert _value(client, kr) == 95  # the default aggregation sums the days: 40 + 55


def test_a_cache_hit_on_postgresql_runs_no_statement_through_the_orm(
    client: TestClient, db_url: str
) -> None:
    _, _, kr = workspace(client)
    check_in(client, kr, "2026-07-01", 40)
    first = client.get(f"/api/v1/key-results/{kr}?as_of={AS_OF}")
    with count_statements() as statements:
        hit = client.get(f"/api/v1/key-results/{kr}?as_of={AS_OF}")
        dashboard = client.get(f"/api/v1/dashboard?as_of={AS_OF}")
        again = client.get(f"/api/v1/dashboard?as_of={AS_OF}")
    assert hit.json() == first.json()
    assert dashboard.json() == again.json()
    if make_url(db_url).get_backend_name() == "postgresql":
        # the dashboard's first read computes (the cache key was new); the rest are hits
        computed = len(statements)
        with count_statements() as after:
            client.get(f"/api/v1/dashboard?as_of={AS_OF}")
            client.get(f"/api/v1/key-results/{kr}?as_of={AS_OF}")
        assert computed > 0
        assert after == []
    else:
        assert statements, "SQLite keeps the ordinary path"


def test_a_revoked_key_is_refused_at_once_even_right_after_use(client: TestClient) -> None:
    key = create(client, "api-keys", name="wallboard", role="viewer")
    headers = {"Authorization": f"Bearer {key['key']}"}
    workspace(client)
    for _ in range(3):  # the first use records last_used_at; later ones may take the fast read
        assert client.get(f"/api/v1/dashboard?as_of={AS_OF}", headers=headers).status_code == 200
    assert client.delete(f"/api/v1/api-keys/{key['id']}").status_code == 204
    refused = client.get(f"/api/v1/dashboard?as_of={AS_OF}", headers=headers)
    assert refused.status_code == 401
    assert client.get("/api/v1/cycles", headers=headers).status_code == 401


def test_a_fast_read_that_cannot_run_hands_over_to_the_ordinary_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unreachable = make_url("postgresql+psycopg://nobody@127.0.0.1:1/nowhere")
    sqlite = make_url("sqlite:///krsync.db")
    attempts: list[str] = []
    connect = psycopg.AsyncConnection.connect

    async def counted(conninfo: str, **kwargs: Any) -> Any:
        attempts.append(conninfo)
        return await connect(conninfo, **kwargs)

    monkeypatch.setattr(psycopg.AsyncConnection, "connect", counted)

    async def reads() -> list[int | None]:
        return [
            await fastread.progress_revision(unreachable),
            await fastread.progress_revision(unreachable),  # within the pause: not tried
            await fastread.progress_revision(sqlite),
        ]

    assert asyncio.run(reads()) == [None, None, None]
    assert len(attempts) == 1


@pytest.mark.parametrize("path", ["/api/v1/dashboard", "/api/v1/key-results/1"])
def test_a_cached_read_still_needs_a_key(anon: TestClient, path: str) -> None:
    assert anon.get(path).status_code == 401
    assert anon.get(path, headers={"Authorization": "Bearer not-a-key"}).status_code == 401
