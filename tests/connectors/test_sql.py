"""The SQL connector against real PostgreSQL, SQLite and MariaDB databases.

Each backend gets a fresh table (PostgreSQL in its own schema), figures by day and group, a query
bound to the window, a query that tries to write (refused by the database, the table untouched),
a query that outlives the statement timeout, and errors that never show the password.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from connectors.base import (
    ConnectorAuthError,
    ConnectorConfigError,
    FetchResult,
    MetricQuery,
    RetriableError,
    Window,
)
from connectors.registry import get_connector
from connectors.sql_source import (
    WRITE_REFUSED,
    SqlConfig,
    SqlConnector,
    SqlCredentials,
    SqlParams,
    normalize_url,
)
from tests.connectors.kits import KITS

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MARIA = "mysql+pymysql://root@127.0.0.1:3306/test"
WINDOW = Window(date(2026, 7, 2), date(2026, 7, 3))
SECRET = "s3cret-Pa55word-never-shown"
ROWS = [
    ("2026-07-01", "web", 1.0),
    ("2026-07-02", "web", 2.0),
    ("2026-07-02", "app", 20.5),
    ("2026-07-03", "web", 3.0),
    ("2026-07-04", "web", 4.0),
]


@pytest.fixture(autouse=True)
def allow_private(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRSYNC_ALLOW_PRIVATE_NETWORKS", "true")


@dataclass
class Db:
    url: str
    table: str
    count: str  # a query counting the table's rows
    sleep: str  # a query that takes five seconds
    write: str  # a query that tries to change the table
    params: dict[str, Any]


def connector(url: str, password: str | None = None, timeout: int = 30) -> SqlConnector:
    config = SqlConfig(url=url, statement_timeout_seconds=timeout)
    creds = SqlCredentials.model_validate({"password": password} if password else {})
    return SqlConnector(config, creds, httpx.AsyncClient())


def fetch(conn: SqlConnector, sql: str, window: Window = WINDOW) -> FetchResult:
    query = MetricQuery("q1", "value", SqlParams(query=sql))
    return asyncio.run(conn.fetch([query], window))


def count(db: Db) -> int:
    engine = create_engine(db.url, connect_args=db.params)
    try:
        with engine.connect() as c:
            return int(c.execute(text(db.count)).scalar_one())
    finally:
        engine.dispose()


def _seed(url: str, table: str, ddl: str, params: dict[str, Any] | None = None) -> None:
    engine = create_engine(url, connect_args=params or {})
    try:
        with engine.begin() as c:
            c.execute(text(ddl))
            c.execute(
                text(f"INSERT INTO {table} (day, grp, amount) VALUES (:d, :g, :a)"),
                [{"d": date.fromisoformat(d), "g": g, "a": a} for d, g, a in ROWS],
            )
    finally:
        engine.dispose()


def _postgres() -> Iterator[Db]:
    schema = f"sqlconn_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is unreachable: {exc}")
    table = f"{schema}.figures"
    try:
        _seed(PG_ADMIN, table, f"CREATE TABLE {table} (day date, grp text, amount numeric)")
        yield Db(
            url=PG_ADMIN,
            table=table,
            count=f"SELECT count(*) FROM {table}",
            sleep="SELECT current_date, 1 FROM pg_sleep(5) WHERE :from <= :to",
            write=(
                f"WITH gone AS (DELETE FROM {table} RETURNING day, amount)"
                " SELECT day, amount FROM gone WHERE day BETWEEN :from AND :to"
            ),
            params={},
        )
    finally:
        with admin.connect() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _mariadb() -> Iterator[Db]:
    pytest.importorskip("pymysql")
    table = f"sqlconn_{uuid.uuid4().hex[:10]}"
    try:
        _seed(
            MARIA,
            table,
            f"CREATE TABLE {table} (day DATE, grp VARCHAR(20), amount DECIMAL(10, 2))",
            {"connect_timeout": 3},
        )
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"MariaDB at 127.0.0.1:3306 (root, database test) is unreachable: {exc}")
    try:
        yield Db(
            url=MARIA,
            table=table,
            count=f"SELECT count(*) FROM {table}",
            sleep="SELECT CURRENT_DATE, SLEEP(5) FROM DUAL WHERE :from <= :to",
            write=(f"DELETE FROM {table} WHERE day BETWEEN :from AND :to RETURNING day, amount"),
            params={},
        )
    finally:
        engine = create_engine(MARIA)
        with engine.begin() as c:
            c.execute(text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()


def _sqlite(tmp_path: Path) -> Iterator[Db]:
    path = tmp_path / "figures.db"
    url = f"sqlite:///{path}"
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE figures (day TEXT, grp TEXT, amount REAL)")
        c.executemany("INSERT INTO figures VALUES (?, ?, ?)", ROWS)
    # A recursive count to ten billion runs far past any one-second timeout.
    slow = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000000000)"
        " SELECT :from, max(i) FROM n WHERE :from <= :to"
    )
    yield Db(
        url=url,
        table="figures",
        count="SELECT count(*) FROM figures",
        sleep=slow,
        write="DELETE FROM figures WHERE day BETWEEN :from AND :to RETURNING day, amount",
        params={},
    )


@pytest.fixture(params=["postgresql", "sqlite", "mariadb"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    backends = {"postgresql": _postgres, "mariadb": _mariadb}
    gen = _sqlite(tmp_path) if request.param == "sqlite" else backends[request.param]()
    yield from gen


# --- every backend ----------------------------------------------------------------------------


def test_values_by_day_and_group_inside_the_window(db: Db) -> None:
    sql = (
        f"SELECT day, SUM(amount), grp FROM {db.table}"
        " WHERE day BETWEEN :from AND :to GROUP BY day, grp"
    )
    result = fetch(connector(db.url), sql)

    assert not result.query_errors, result.query_errors
    assert not result.warnings
    got = {(v.date, v.group): v.value for v in result.values}
    assert got == {
        (date(2026, 7, 2), "web"): 2.0,
        (date(2026, 7, 2), "app"): 20.5,
        (date(2026, 7, 3), "web"): 3.0,
    }
    assert all(type(v.value) is float and v.query_id == "q1" for v in result.values)


def test_the_window_is_bound_and_rows_outside_it_are_ignored(db: Db) -> None:
    # The query ignores :to for its filter, so the connector itself drops the 4th of July.
    sql = f"SELECT day, amount FROM {db.table} WHERE grp = 'web' AND day >= :from AND :to = :to"
    result = fetch(connector(db.url), sql, Window(date(2026, 7, 1), date(2026, 7, 3)))

    assert {(v.date, v.value) for v in result.values} == {
        (date(2026, 7, 1), 1.0),
        (date(2026, 7, 2), 2.0),
        (date(2026, 7, 3), 3.0),
    }


def test_a_query_that_writes_is_refused_by_the_database(db: Db) -> None:
    before = count(db)
    conn = connector(db.url)
    query = MetricQuery("q1", "value", SqlParams(query=db.write))

    result = fetch(conn, db.write)
    with pytest.raises(ConnectorConfigError) as refused:
        asyncio.run(conn.validate_mapping_online(query))

    assert result.query_errors == {"q1": WRITE_REFUSED}
    assert result.values == []
    assert refused.value.message == WRITE_REFUSED
    assert count(db) == before == len(ROWS)


def test_a_slow_query_hits_the_statement_timeout(db: Db) -> None:
    with pytest.raises(RetriableError, match="statement timeout"):
        fetch(connector(db.url, timeout=1), db.sleep)


# --- errors and guards ------------------------------------------------------------------------


def test_a_wrong_password_is_an_auth_error_without_the_password() -> None:
    pytest.importorskip("pymysql")
    try:
        count(Db(MARIA, "", "SELECT 1", "", "", {"connect_timeout": 3}))
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"MariaDB at 127.0.0.1:3306 is unreachable: {exc}")
    conn = connector("mysql://root@127.0.0.1:3306/test", password=SECRET)

    with pytest.raises(ConnectorAuthError) as checked:
        asyncio.run(conn.check())

    assert "password" in checked.value.message
    assert SECRET not in checked.value.message
    assert SECRET not in str(checked.value)


def test_an_unreachable_database_says_so_without_the_password() -> None:
    conn = connector("postgres://reader@127.0.0.1:1/shop", password=SECRET)
    assert conn.url.drivername == "postgresql+psycopg"

    with pytest.raises(ConnectorConfigError) as failed:
        asyncio.run(conn.check())

    assert "can't connect" in failed.value.message
    assert SECRET not in failed.value.message
    assert SECRET not in repr(failed.value)


def test_a_password_in_the_url_is_refused() -> None:
    with pytest.raises(ConnectorConfigError, match="must not contain a password"):
        connector(f"postgresql://reader:{SECRET}@db.example.com/shop")


def test_private_addresses_are_refused_without_the_opt_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KRSYNC_ALLOW_PRIVATE_NETWORKS", "false")
    for url in ("postgresql://reader@127.0.0.1/shop", "mysql://reader@10.1.2.3/shop"):
        with pytest.raises(ConnectorConfigError, match="private address"):
            asyncio.run(connector(url).check())


def test_urls_get_krsync_drivers_and_sqlite_opens_read_only() -> None:
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("mysql://u@h/db").drivername == "mysql+pymysql"
    assert normalize_url("postgresql+psycopg2://u@h/db").drivername == "postgresql+psycopg2"
    lite = normalize_url("sqlite:////data/shop.db")
    assert lite.database == "file:/data/shop.db"
    assert dict(lite.query) == {"mode": "ro", "uri": "true"}


def test_the_query_must_bind_the_window() -> None:
    cls = SqlConnector
    with pytest.raises(ConnectorConfigError, match=":to"):
        cls.validate_query("value", {"query": "SELECT d, v FROM t WHERE d >= :from"}, [], "sum")
    cls.validate_query(
        "value", {"query": "SELECT d, v FROM t WHERE d BETWEEN :from AND :to"}, [], "sum"
    )


def test_bad_rows_are_warnings_with_their_row_number(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE t (day TEXT, amount)")
        c.executemany(
            "INSERT INTO t VALUES (?, ?)",
            [
                ("2026-07-02", "12.5"),
                ("2026-07-02", "lots"),
                ("not a day", 1),
                ("2026-07-03T09:00", 4),
            ],
        )
    sql = "SELECT day, amount FROM t WHERE :from <= :to ORDER BY rowid"
    result = fetch(connector(f"sqlite:///{path}"), sql)

    assert {(v.date, v.value) for v in result.values} == {
        (date(2026, 7, 2), 12.5),
        (date(2026, 7, 3), 4.0),
    }
    assert any(w.startswith("row 2:") and "not a number" in w for w in result.warnings)
    assert any(w.startswith("row 3:") and "not a date" in w for w in result.warnings)


def test_the_kit_is_discovered_and_the_registry_can_hold_the_connector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from connectors import registry

    discover = registry._discover
    monkeypatch.setattr(registry, "_discover", lambda: {**discover(), "sql": SqlConnector})
    monkeypatch.setattr(registry, "_cache", None)

    assert get_connector("sql") is SqlConnector
    assert KITS["sql"].http is False
