"""Test databases: migrated once per run by Alembic, then fresh for every test.

SQLite copies a template file. PostgreSQL (`KRSYNC_TEST_DATABASE_URL`) gives each test process one
database, copied from a template database made for this run, and empties it before each test back
to what the migrations left (rows deleted, sequences restarted, the migrations' own rows put
back): a `CREATE DATABASE` per test cost more than most tests. A test that changes the schema
(a downgrade) or leaves a lock behind gets a new copy. Every test therefore commits for real (the
API owns its transactions) and still sees nothing of any other test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, create_engine, insert, make_url, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError

from app.core.db import reset_engine
from app.core.migrate import upgrade
from app.core.settings import normalize_database_url
from app.okr import cache as progress_cache

ADMIN_KEY = "test-admin-key-0123456789"
#: Set by `make test-postgres`: the PostgreSQL run leaves out the tests that never open the
#: app's database (no `db_url`/`template_db` among their fixtures, no `database` marker) and
#: those marked `one_database` (what they assert can't differ between databases: input refused
#: before any query, pages in a real browser, the OpenAPI contract): they already ran in the
#: SQLite run of the same `make test`.
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
        wanted = uses_db or item.get_closest_marker("database")
        (keep if wanted and not item.get_closest_marker("one_database") else free).append(item)
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
        for reused in _reused:
            reused.drop()
        _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        path = tmp_path_factory.mktemp("tpl") / "template.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield url


class _ReusedPgDatabase:
    """This test process's PostgreSQL database, emptied back to the template before each test."""

    def __init__(self, template_url: str) -> None:
        self.template = make_url(template_url).database
        self.name = ""
        engine = create_engine(normalize_database_url(template_url))
        try:
            meta = MetaData()
            meta.reflect(engine)
            with engine.connect() as conn:
                self.version = conn.execute(text("SELECT version_num FROM alembic_version")).one()
                self.sequences = list(
                    conn.execute(text("SELECT sequencename FROM pg_sequences")).scalars()
                )
                tables = [t for t in meta.tables.values() if t.name != "alembic_version"]
                #: What the migrations wrote (the revision counter's row), to put back.
                self.seeded = {
                    t: [dict(r) for r in conn.execute(select(t)).mappings()] for t in tables
                }
        finally:
            engine.dispose()
        self.seeded = {t: rows for t, rows in self.seeded.items() if rows}
        self.tables = tables
        self.url = ""

    def _create(self) -> None:
        self.name = f"krsync_t_{RUN_ID}_{uuid.uuid4().hex[:8]}"
        _pg_exec(f'CREATE DATABASE "{self.name}" TEMPLATE "{self.template}"')
        self.url = _pg_admin_url().set(database=self.name).render_as_string(hide_password=False)

    def drop(self) -> None:
        if self.name:
            _pg_exec(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.name = ""

    def fresh(self) -> str:
        if not self.name:
            self._create()
        elif not self._emptied():
            self.drop()
            self._create()
        return self.url

    def _emptied(self) -> bool:
        """Back to the template's rows in one transaction, or False when it can't be."""
        engine = create_engine(normalize_database_url(self.url))
        try:
            with engine.begin() as conn:
                conn.execute(text("SET LOCAL lock_timeout = '2s'"))
                version = conn.execute(text("SELECT version_num FROM alembic_version")).all()
                if version != [self.version]:
                    return False
                # Triggers off for the session's deletes: every table is emptied at once.
                conn.execute(text("SET LOCAL session_replication_role = replica"))
                conn.exec_driver_sql(
                    "".join(f'DELETE FROM "{t.name}";' for t in self.tables)
                    + "".join(f'ALTER SEQUENCE "{q}" RESTART;' for q in self.sequences)
                )
                for table, rows in self.seeded.items():
                    conn.execute(insert(table), rows)
            return True
        except OperationalError:  # a schema changed by the test, a lock it left behind
            return False
        finally:
            engine.dispose()


_reused: list[_ReusedPgDatabase] = []


@pytest.fixture
def db_url(template_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated database for this test, and the app pointed at it."""
    if PG_URL:
        if not _reused:
            _reused.append(_ReusedPgDatabase(template_db))
        url = _reused[0].fresh()
    else:
        src = Path(make_url(template_db).database or "")
        dst = tmp_path / "krsync.db"
        shutil.copyfile(src, dst)
        url = f"sqlite:///{dst}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("KRSYNC_ADMIN_KEY", ADMIN_KEY)
    reset_engine()
    # Cached reads are keyed by the database's revision counter, which a reused database
    # starts again from 0: what the last test read must not answer this one.
    progress_cache.clear()
    yield url
    reset_engine()


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
