"""The SQL connector against real PostgreSQL, SQLite and MariaDB databases.

Each backend gets a fresh table (PostgreSQL in its own schema), figures by day and group, a query
bound to the window, a query that tries to write (refused by the database, the table untouched),
a query that outlives the statement timeout, and errors that never show the password.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine, inspect, text

from connectors.base import (
    ConnectorAuthError,
    ConnectorConfigError,
    FetchResult,
    MetricQuery,
    RetriableError,
    Window,
)
from connectors.registry import get_connector
from connectors.series import MAX_LISTED
from connectors.sql_source import connector as sql_connector
from connectors.sql_source.connector import (
    WRITE_REFUSED,
    SqlConfig,
    SqlConnector,
    SqlCredentials,
    SqlParams,
    normalize_url,
)
from tests.connectors.engine_client import BareClient
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
    return SqlConnector(config, creds, BareClient())


def fetch(conn: SqlConnector, sql: str, window: Window = WINDOW) -> FetchResult:
    query = MetricQuery("q1", "value", SqlParams(query=sql))
    return asyncio.run(conn.fetch([query], window))


def assert_not_shown(secret: str, *texts: str) -> None:
    """Not the secret, nor any eight characters of it (a masked or cut copy leaks too)."""
    for text_ in texts:
        for i in range(len(secret) - 7):
            assert secret[i : i + 8] not in text_, text_


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
def db(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Db]:
    monkeypatch.setenv("KRSYNC_FILES_DIR", str(tmp_path))  # SQLite files are read from there
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


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://reader:{SECRET}@db.example.com/shop",
        f"mysql://reader:{SECRET}@db.example.com/shop",
        f"postgresql://reader@db.example.com/shop?password={SECRET}",
        f"mysql://reader@db.example.com/shop?passwd={SECRET}",
    ],
)
def test_a_password_in_the_url_is_refused_without_being_shown(url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        SqlConfig(url=url)

    assert "must not contain a password" in str(refused.value)
    assert "put it in the credentials" in str(refused.value)
    assert_not_shown(SECRET, str(refused.value), repr(refused.value))


def test_a_malformed_url_is_refused_without_being_shown() -> None:
    with pytest.raises(ValidationError) as refused:
        SqlConfig(url=f"postgresql://reader:{SECRET}@db1:5432,db2/shop")

    assert "not a valid SQLAlchemy URL" in str(refused.value)
    assert_not_shown(SECRET, str(refused.value), repr(refused.value))


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


def test_bad_rows_are_warnings_with_their_row_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KRSYNC_FILES_DIR", str(tmp_path))
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


def test_a_query_of_bad_rows_gives_a_bounded_list_of_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run keeps its warnings: thousands of unreadable rows are the first few and a count,
    and a result without its value column is one warning, not one a row."""
    monkeypatch.setenv("KRSYNC_FILES_DIR", str(tmp_path))
    path = tmp_path / "many.db"
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE t (day TEXT, amount)")
        c.executemany("INSERT INTO t VALUES (?, ?)", [("2026-07-02", "lots")] * 5000)
    source = f"sqlite:///{path}"

    result = fetch(connector(source), "SELECT day, amount FROM t WHERE :from <= :to")
    assert not result.values
    assert len(result.warnings) == MAX_LISTED + 1
    assert result.warnings[0].startswith("row 1:")
    assert result.warnings[-1] == f"and {5000 - MAX_LISTED} more rows that can't be read"

    narrow = fetch(connector(source), "SELECT day FROM t WHERE :from <= :to")
    assert narrow.warnings == [
        "expected `date, value[, group]` columns, got 1: none of the query's 5000 row(s) can "
        "be read"
    ]


def test_the_kit_is_discovered_and_the_registry_can_hold_the_connector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from connectors import registry

    discover = registry._discover
    monkeypatch.setattr(registry, "_discover", lambda: {**discover(), "sql": SqlConnector})
    monkeypatch.setattr(registry, "_cache", None)

    assert get_connector("sql") is SqlConnector
    assert KITS["sql"].http is False


# --- the private-network guard: every host the driver would use --------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@/postgres",  # no host: libpq's Unix socket
        "postgresql://postgres@/postgres?host=127.0.0.1",
        "postgresql://postgres@/postgres?host=/var/run/postgresql",
        "postgresql://postgres@8.8.8.8/postgres?hostaddr=127.0.0.1",
        "postgresql://postgres@/postgres?host=8.8.8.8,127.0.0.1",
        "postgresql://postgres@/postgres?host=8.8.8.8&host=127.0.0.1:5432",
        "postgresql://postgres@8.8.8.8,127.0.0.1/postgres",
        "postgresql://postgres@/postgres?host=8.8.8.8,",  # an empty entry is the socket
        "postgresql://postgres@[::ffff:127.0.0.1]/postgres",
        "postgresql://postgres@100.64.0.1/postgres",  # carrier NAT: not private, not public
        "mysql://root@/test",  # no host: PyMySQL's localhost
        "mysql://root@8.8.8.8/test?unix_socket=/run/mysqld/mysqld.sock",
    ],
)
def test_every_host_the_driver_would_use_is_checked(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KRSYNC_ALLOW_PRIVATE_NETWORKS", "false")

    with pytest.raises(ConnectorConfigError, match="private address") as refused:
        asyncio.run(connector(url).check())

    assert "KRSYNC_ALLOW_PRIVATE_NETWORKS=true" in refused.value.message


def test_the_environment_does_not_redirect_a_source(monkeypatch: pytest.MonkeyPatch) -> None:
    # libpq fills an unset hostaddr from PGHOSTADDR: the guard checked 8.8.8.8, the
    # connection would have gone to the local server.
    monkeypatch.setenv("KRSYNC_ALLOW_PRIVATE_NETWORKS", "false")
    monkeypatch.setenv("PGHOSTADDR", "127.0.0.1")
    monkeypatch.setattr(sql_connector, "CONNECT_TIMEOUT_SECONDS", 2)

    with pytest.raises((ConnectorConfigError, RetriableError)) as failed:
        asyncio.run(connector("postgresql://postgres@8.8.8.8:5432/postgres").check())

    assert "8.8.8.8" in failed.value.message


def test_the_opt_in_reaches_local_databases_however_named() -> None:
    for url in (
        "postgresql://postgres@/postgres?host=127.0.0.1",
        "postgresql://postgres@/postgres?host=127.0.0.1&hostaddr=127.0.0.1",
        "postgresql://postgres@127.0.0.1,localhost/postgres",
    ):
        assert asyncio.run(connector(url).check()).details == {"dialect": "postgresql"}


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@db.example.com/shop?service=krsync",
        "postgresql://u@db.example.com/shop?servicefile=/etc/pg_service.conf",
        "postgresql://u@db.example.com/shop?passfile=/root/.pgpass",
        "postgresql://u@db.example.com/shop?sslkey=/etc/ssl/private/key.pem",
        "postgresql://u@db.example.com/shop?sslrootcert=/etc/shadow",
        "postgresql://u@db.example.com/shop?options=-c%20default_transaction_read_only%3Doff",
        "postgresql://u@db.example.com/shop?connect_timeout=0",
        "mysql://u@db.example.com/shop?init_command=DELETE%20FROM%20t",
        "mysql://u@db.example.com/shop?local_infile=1",
        "mysql://u@db.example.com/shop?client_flag=65536",
        "mysql://u@db.example.com/shop?read_default_file=/etc/mysql/my.cnf",
        "mysql://u@db.example.com/shop?host=127.0.0.1",
        "mysql://u@db.example.com/shop?read_timeout=0",
        "postgresql+psycopg2://u@db.example.com/shop",
        "mysql+mysqldb://u@db.example.com/shop",
    ],
)
def test_url_parameters_that_redirect_read_files_or_run_sql_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="url"):
        SqlConfig(url=url)


def test_harmless_url_parameters_are_kept() -> None:
    SqlConfig(url="postgresql://u@db.example.com/shop?sslmode=verify-full&sslrootcert=system")
    SqlConfig(url="postgresql://u@/shop?host=db1.example.com&host=db2.example.com:5433")
    SqlConfig(url="mysql://u@db.example.com/shop?charset=utf8mb4")


# --- SQLite: files inside KRSYNC_FILES_DIR only, never krsync's own --------------------------

SUM = "SELECT day, amount FROM t WHERE day BETWEEN :from AND :to"


def _figures(path: Path) -> Path:
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE t (day TEXT, amount REAL)")
        c.execute("INSERT INTO t VALUES ('2026-07-02', 7)")
    return path


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "files"
    root.mkdir()
    monkeypatch.setenv("KRSYNC_FILES_DIR", str(root))
    return root


def test_sqlite_opens_only_files_inside_the_files_dir(files: Path, tmp_path: Path) -> None:
    _figures(files / "inside.db")
    outside = _figures(tmp_path / "outside.db")
    (files / "link.db").symlink_to(outside)

    for url in ("sqlite:///inside.db", f"sqlite:///{files / 'inside.db'}"):
        assert [v.value for v in fetch(connector(url), SUM).values] == [7.0]
    for url in (f"sqlite:///{outside}", "sqlite:///../outside.db", "sqlite:///link.db"):
        with pytest.raises(ConnectorConfigError, match="only from KRSYNC_FILES_DIR"):
            fetch(connector(url), SUM)


def test_a_password_given_to_a_sqlite_source_is_ignored(files: Path) -> None:
    """SQLite has no password; one set by mistake must not turn the URL into an invalid one."""
    _figures(files / "inside.db")
    assert [
        v.value for v in fetch(connector("sqlite:///inside.db", "pw-for-nothing"), SUM).values
    ] == [7.0]


def test_sqlite_never_opens_krsyncs_own_database(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = _figures(files / "krsync.db")
    (files / "alias.db").symlink_to(own)
    (files / "hard.db").hardlink_to(own)
    monkeypatch.delenv("KRSYNC_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{own}")

    for name in ("krsync.db", "alias.db", "hard.db"):
        with pytest.raises(ConnectorConfigError, match="krsync's own database"):
            fetch(connector(f"sqlite:///{name}"), SUM)

    # Unset, krsync runs on krsync.db in its working directory.
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.chdir(files)
    with pytest.raises(ConnectorConfigError, match="krsync's own database"):
        asyncio.run(connector("sqlite:///krsync.db").check())


def test_sqlite_needs_the_files_dir_whatever_the_network_opt_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _figures(tmp_path / "figures.db")
    monkeypatch.delenv("KRSYNC_FILES_DIR", raising=False)

    with pytest.raises(ConnectorConfigError, match="KRSYNC_FILES_DIR, which is unset"):
        asyncio.run(connector(f"sqlite:///{path}").check())


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///file:figures.db?mode=rw&uri=true",
        "sqlite:///figures.db?vfs=unix-none",
        "sqlite:///figures.db?mode=rwc",
        "sqlite+pysqlcipher:///figures.db",
    ],
)
def test_sqlite_urls_that_open_something_else_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="url"):
        SqlConfig(url=url)


def test_sqlite_reads_through_an_authorizer_that_allows_reads_only(files: Path) -> None:
    _figures(files / "figures.db")
    _figures(files / "other.db")
    conn = connector("sqlite:///figures.db")
    attach = "ATTACH CASE WHEN :from <= :to THEN 'other.db' END AS other"

    assert fetch(conn, attach).query_errors == {"q1": WRITE_REFUSED}


# --- read-only: one statement, real parameters, a read-only session --------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT day, amount FROM t WHERE day BETWEEN '\\:from' AND '\\:to'",
        "SELECT day, amount FROM t WHERE day BETWEEN :from::date AND :to::date",
        "SELECT day, amount FROM t WHERE day BETWEEN :from AND :to AND grp = :group",
    ],
)
def test_the_window_must_be_real_bind_parameters(sql: str) -> None:
    with pytest.raises(ConnectorConfigError, match=r":from|:to"):
        SqlConnector.validate_query("value", {"query": sql}, [], "sum")


@pytest.fixture(params=["postgresql", "mariadb"])
def server_db(request: pytest.FixtureRequest) -> Iterator[Db]:
    yield from (_postgres() if request.param == "postgresql" else _mariadb())


def _insert(db: Db) -> str:
    return f"INSERT INTO {db.table} (day, grp, amount) VALUES ('2026-07-02', 'evil', 1)"


def test_a_query_that_commits_then_writes_changes_nothing(db: Db) -> None:
    """Several statements never run, however the query gets past validation."""
    escaped = f"SELECT day, amount FROM {db.table} WHERE '\\:from' < '\\:to'; COMMIT; {_insert(db)}"
    bound = f"SELECT day, amount FROM {db.table} WHERE day BETWEEN :from AND :to; COMMIT;"
    conn = connector(db.url)

    # model_construct: as a query stored before the window rule would reach the connector.
    queries = [
        MetricQuery("escaped", "value", SqlParams.model_construct(query=escaped)),
        MetricQuery("bound", "value", SqlParams.model_construct(query=f"{bound} {_insert(db)}")),
    ]
    result = asyncio.run(conn.fetch(queries, WINDOW))

    assert count(db) == len(ROWS)
    assert set(result.query_errors) == {"escaped", "bound"}
    assert ":from" in result.query_errors["escaped"]
    assert result.values == []


def test_the_session_itself_is_read_only(server_db: Db) -> None:
    # Even a statement that ended krsync's transaction would start a read-only one.
    read_only = {
        "postgresql": "current_setting('default_transaction_read_only') = 'on'",
        "mysql": "@@session.tx_read_only = 1",
    }[server_db.url.split("+")[0]]
    sql = f"SELECT CAST(:from AS date), 1 WHERE {read_only} AND :from <= :to"
    if server_db.url.startswith("mysql"):
        sql = sql.replace("WHERE", "FROM DUAL WHERE")

    result = fetch(connector(server_db.url), sql)

    assert not result.query_errors, result.query_errors
    assert [v.value for v in result.values] == [1.0]


def test_a_session_made_read_write_by_one_query_does_not_reach_the_next(server_db: Db) -> None:
    copy = f"{server_db.table}_copy"
    release = {
        "postgresql": "SELECT set_config('default_transaction_read_only', 'off', false),"
        " CAST(:from AS date), CAST(:to AS date)",
        "mysql": "SET SESSION TRANSACTION READ WRITE /* :from :to */",
    }[server_db.url.split("+")[0]]
    # DDL commits implicitly in MySQL/MariaDB, leaving the transaction for the session's mode.
    create = f"CREATE TABLE {copy} AS SELECT CAST(:from AS date) AS a, CAST(:to AS date) AS b"
    queries = [
        MetricQuery("release", "value", SqlParams(query=release)),
        MetricQuery("create", "value", SqlParams(query=create)),
    ]

    result = asyncio.run(connector(server_db.url).fetch(queries, WINDOW))

    engine = create_engine(server_db.url)
    try:
        with engine.connect() as c:
            tables = inspect(c).get_table_names(schema=_schema(server_db))
        if copy.rsplit(".", 1)[-1] in tables:  # the write got through: leave no table behind
            with engine.begin() as c:
                c.execute(text(f"DROP TABLE {copy}"))
    finally:
        engine.dispose()
    assert copy.rsplit(".", 1)[-1] not in tables
    assert result.query_errors.get("create") == WRITE_REFUSED


def _schema(db: Db) -> str | None:
    return db.table.split(".")[0] if "." in db.table else None


# --- deadlines: a server that stalls fails the call, never hangs it --------------------------


class _Silent:
    """A TCP server on 127.0.0.1 that answers ``greeting`` (if any), then never again."""

    def __init__(self, greeting: Callable[[socket.socket], None] | None = None) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        self._greeting = greeting
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.held.append(client)
            if self._greeting is not None:
                with contextlib.suppress(OSError):
                    self._greeting(client)

    def close(self) -> None:
        self.server.close()
        for client in self.held:
            client.close()


def _pg_handshake(client: socket.socket) -> None:
    """Play PostgreSQL up to ReadyForQuery (protocol 3.0, trust auth), then say nothing more.

    https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
    """
    (length,) = struct.unpack("!I", client.recv(4))
    request = client.recv(length - 4)
    if struct.unpack("!I", request[:4])[0] in (80877103, 80877104):  # SSLRequest, GSSENCRequest
        client.sendall(b"N")
        (length,) = struct.unpack("!I", client.recv(4))
        client.recv(length - 4)
    client.sendall(struct.pack("!cII", b"R", 8, 0))  # AuthenticationOk
    for name, value in (
        (b"server_version", b"15.0"),
        (b"client_encoding", b"UTF8"),
        (b"standard_conforming_strings", b"on"),
        (b"integer_datetimes", b"on"),
    ):
        body = name + b"\0" + value + b"\0"
        client.sendall(b"S" + struct.pack("!I", len(body) + 4) + body)
    client.sendall(struct.pack("!cIII", b"K", 12, 1, 2))  # BackendKeyData
    client.sendall(struct.pack("!cIc", b"Z", 5, b"I"))  # ReadyForQuery, idle


def _within(seconds: float, call: Callable[[], object]) -> BaseException:
    """The error ``call`` raised, which it must do within ``seconds`` (it runs in a thread so
    that a call that hangs fails this test instead of the run)."""
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    began = time.monotonic()
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still waiting after {seconds}s: the call has no deadline"
    assert outcome, "the call succeeded against a server that never answers"
    assert time.monotonic() - began < seconds
    return outcome[0]


@pytest.fixture
def short_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql_connector, "CONNECT_TIMEOUT_SECONDS", 1)
    monkeypatch.setattr(sql_connector, "DEADLINE_MARGIN_SECONDS", 1)


def test_a_mysql_server_that_never_answers_fails_the_check_in_time(
    short_deadlines: None,
) -> None:
    silent = _Silent()
    try:
        conn = connector(f"mysql://root@127.0.0.1:{silent.port}/test", timeout=1)
        error = _within(10, lambda: asyncio.run(conn.check()))
    finally:
        silent.close()

    assert isinstance(error, RetriableError), error
    assert "did not answer in time" in error.message


def test_a_postgres_server_that_stalls_after_the_handshake_is_cut_off(
    short_deadlines: None,
) -> None:
    silent = _Silent(_pg_handshake)
    try:
        conn = connector(f"postgresql://postgres@127.0.0.1:{silent.port}/postgres", timeout=1)
        error = _within(15, lambda: fetch(conn, "SELECT day, v FROM t WHERE day = :from OR :to"))
    finally:
        silent.close()

    assert isinstance(error, RetriableError), error
    assert "did not answer within" in error.message


def test_a_postgres_server_that_never_answers_fails_the_connect_in_time(
    short_deadlines: None,
) -> None:
    silent = _Silent()
    try:
        conn = connector(f"postgresql://postgres@127.0.0.1:{silent.port}/postgres", timeout=1)
        error = _within(10, lambda: asyncio.run(conn.check()))
    finally:
        silent.close()

    assert isinstance(error, RetriableError), error
    assert "did not answer in time" in error.message
