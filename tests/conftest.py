"""Test databases: migrated once per run by Alembic, then copied fresh for every test.

SQLite copies a template file; PostgreSQL (`KRSYNC_TEST_DATABASE_URL`) creates each test's database
from a template database made for this run. Every test therefore commits for real (the API owns
its transactions) and still sees nothing of any other test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import URL

from app.core.db import reset_engine
from app.core.migrate import upgrade
from app.core.settings import normalize_database_url

ADMIN_KEY = "test-admin-key-0123456789"
#: Set by `make test-postgres`: the PostgreSQL run leaves out the tests that never open the
#: app's database (no `db_url`/`template_db` among their fixtures, no `database` marker): they
#: already ran, identically, in the SQLite run of the same `make test`.
DATABASE_TESTS_ONLY = "KRSYNC_TEST_DATABASE_TESTS_ONLY"
PG_URL = os.environ.get("KRSYNC_TEST_DATABASE_URL")
RUN_ID = uuid.uuid4().hex[:8]


def _pg_admin_url() -> URL:
    return make_url(normalize_database_url(PG_URL or "")).set(database="postgres")


def _pg_exec(sql: str) -> None:
    engine = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not (PG_URL and os.environ.get(DATABASE_TESTS_ONLY)):
        return
    keep: list[pytest.Item] = []
    free: list[pytest.Item] = []
    for item in items:
        uses_db = "template_db" in getattr(item, "fixturenames", ())
        (keep if uses_db or item.get_closest_marker("database") else free).append(item)
    if free:
        config.hook.pytest_deselected(items=free)
        items[:] = keep


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database to copy; yields its URL (SQLite file or PostgreSQL db name)."""
    if PG_URL:
        name = f"krsync_tpl_{RUN_ID}"
        _pg_exec(f'CREATE DATABASE "{name}"')
        url = _pg_admin_url().set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        yield url
        _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        path = tmp_path_factory.mktemp("tpl") / "template.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield url


@pytest.fixture
def db_url(template_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated database for this test, and the app pointed at it."""
    if PG_URL:
        tpl = make_url(template_db).database
        name = f"krsync_t_{RUN_ID}_{uuid.uuid4().hex[:8]}"
        _pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{tpl}"')
        url = _pg_admin_url().set(database=name).render_as_string(hide_password=False)
    else:
        src = Path(make_url(template_db).database or "")
        dst = tmp_path / "krsync.db"
        shutil.copyfile(src, dst)
        url = f"sqlite:///{dst}"
        name = ""
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("KRSYNC_ADMIN_KEY", ADMIN_KEY)
    reset_engine()
    yield url
    reset_engine()
    if PG_URL:
        _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    from app.main import app

    with TestClient(app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        yield test_client


@pytest.fixture
def anon(db_url: str) -> Iterator[TestClient]:
    from app.main import app

    with TestClient(app) as test_client:
        yield test_client
