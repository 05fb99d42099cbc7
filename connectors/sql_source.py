"""Daily figures from a read-only SQL query on any database SQLAlchemy can reach.

The query returns ``date, value[, group]`` rows and is bound to the window with ``:from`` and
``:to``. It always runs in a read-only transaction with a statement timeout, and the transaction
is rolled back at the end: a query that writes is refused by the database itself (PostgreSQL
``SET TRANSACTION READ ONLY``, MySQL/MariaDB ``START TRANSACTION READ ONLY``, SQLite opened with
``mode=ro`` and ``PRAGMA query_only``), not by inspecting its text. The driver is blocking, so the
database work runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import os
import re
import socket
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from connectors.base import (
    CheckResult,
    Connector,
    ConnectorAuthError,
    ConnectorConfigError,
    DailyValue,
    FetchResult,
    MetricQuery,
    MetricSpec,
    RetriableError,
    Window,
)

WRITE_REFUSED = "the database refused a write: the query must only read"
ALLOW_PRIVATE_ENV = "KRSYNC_ALLOW_PRIVATE_NETWORKS"
CONNECT_TIMEOUT_SECONDS = 10
#: The most rows one query may return; a daily series over years is a few thousand.
MAX_ROWS = 100_000
_BIND = {name: re.compile(rf"(?<![:\w]):{name}\b") for name in ("from", "to")}

# Error codes by dialect: (read-only violation, statement timeout, authentication, unknown db).
_PG_READ_ONLY, _PG_TIMEOUT = {"25006"}, {"57014"}
_PG_AUTH, _PG_UNKNOWN_DB = {"28P01", "28000"}, {"3D000"}
_MY_READ_ONLY, _MY_TIMEOUT = {1792}, {1969, 3024}  # 1969: MariaDB, 3024: MySQL
_MY_AUTH, _MY_UNKNOWN_DB = {1045, 1044, 1698}, {1049}


class SqlConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        description=(
            "An SQLAlchemy URL without the password, e.g. postgresql://reader@db.example.com/shop,"
            " mysql://reader@db/shop or sqlite:////data/shop.db. Use a read-only database user."
        ),
    )
    statement_timeout_seconds: int = Field(
        30, ge=1, le=3600, description="A query running longer than this is cancelled."
    )


class SqlCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: SecretStr | None = Field(None, description="The database user's password.")


class SqlParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    query: str = Field(
        min_length=1,
        description=(
            "A SELECT returning `date, value[, group]` rows, one per day (and group), limited to"
            " the window with the :from and :to bind parameters (inclusive dates)."
        ),
    )

    @field_validator("query")
    @classmethod
    def _binds_the_window(cls, query: str) -> str:
        missing = [f":{name}" for name, pattern in _BIND.items() if not pattern.search(query)]
        if missing:
            raise ValueError(
                f"the query must use {' and '.join(missing)} to limit rows to the window, e.g."
                " WHERE day BETWEEN :from AND :to"
            )
        return query


def normalize_url(raw: str) -> URL:
    """A URL naming the driver krsync ships: postgres:// and mysql:// get psycopg and PyMySQL."""
    scheme, sep, rest = raw.strip().partition("://")
    if not sep:
        raise ConnectorConfigError(
            "`url` is not a database URL: use e.g. postgresql://user@host/db or sqlite:///path"
        )
    drivers = {
        "postgres": "postgresql+psycopg",
        "postgresql": "postgresql+psycopg",
        "mysql": "mysql+pymysql",
        "mariadb": "mariadb+pymysql",
    }
    scheme = drivers.get(scheme.lower(), scheme)
    try:
        url = make_url(f"{scheme}://{rest}")
    except ArgumentError as exc:
        raise ConnectorConfigError(f"`url` is not a valid SQLAlchemy URL: {exc}") from None
    if url.password:
        raise ConnectorConfigError(
            "`url` must not contain a password: remove it and put it in the credentials"
        )
    if url.get_backend_name() == "sqlite":
        url = _sqlite_read_only(url)
    return url


def _sqlite_read_only(url: URL) -> URL:
    """A file database opened read-only through SQLite's URI syntax."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        query = dict(url.query)
        if database.startswith("file:"):
            query.update(mode="ro", uri="true")
        return url.set(query=query)
    return url.set(database=f"file:{database}", query={**url.query, "mode": "ro", "uri": "true"})


class SqlConnector(Connector[SqlConfig, SqlCredentials]):
    """Figures computed by the customer's own SQL, run read-only against their database."""

    key = "sql"
    name = "SQL query"
    category = "generic"
    config_model = SqlConfig
    credentials_model = SqlCredentials
    metrics = (
        MetricSpec(
            name="value",
            description="The `value` column of your query, by its `date` (and `group`) column",
            unit="value",
            params_model=SqlParams,
            additive=True,
            history="daily",
        ),
    )

    def __init__(
        self,
        config: SqlConfig,
        credentials: SqlCredentials,
        http: httpx.AsyncClient,
        *,
        timezone: str = "UTC",
    ) -> None:
        super().__init__(config, credentials, http, timezone=timezone)
        url = normalize_url(config.url)
        password = credentials.password.get_secret_value() if credentials.password else None
        self.url = url.set(password=password) if password else url
        self._secret = password

    # --- contract ----------------------------------------------------------------------------

    async def check(self) -> CheckResult:
        def probe(conn: Connection) -> CheckResult:
            conn.execute(text("SELECT 1")).scalar()
            return CheckResult(
                f"Connected to the {self._where()}",
                details={"dialect": conn.dialect.name},
            )

        return await asyncio.to_thread(self._with_connection, probe)

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        return await asyncio.to_thread(
            self._with_connection, lambda c: self._fetch(c, queries, window)
        )

    async def validate_mapping_online(self, query: MetricQuery) -> None:
        """Run the query over one day, so a write or a syntax error is refused at mapping time."""
        if not isinstance(query.params, SqlParams):
            return
        params = query.params
        today = datetime.now(self.zone).date()

        def run(conn: Connection) -> None:
            self._run(conn, params.query, Window(today, today))

        await asyncio.to_thread(self._with_connection, run)

    # --- database work (in a worker thread) ---------------------------------------------------

    def _fetch(
        self, conn: Connection, queries: Sequence[MetricQuery], window: Window
    ) -> FetchResult:
        result = FetchResult()
        for query in queries:
            if query.metric != "value" or not isinstance(query.params, SqlParams):
                result.query_errors[query.id] = f"the SQL connector has no metric `{query.metric}`"
                continue
            try:
                rows = self._run(conn, query.params.query, window)
            except (ConnectorAuthError, RetriableError):
                raise
            except ConnectorConfigError as exc:
                result.query_errors[query.id] = exc.message
                continue
            values, warnings = parse_rows(query.id, rows, window)
            result.values.extend(values)
            result.warnings.extend(warnings)
        return result

    def _with_connection(self, work: Callable[[Connection], Any]) -> Any:
        self._guard_network()
        try:
            engine = self._engine()
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise ConnectorConfigError(
                f"can't use `{self.url.drivername}` URLs: {self._mask(str(exc))}"
                " (is its driver installed?)"
            ) from None
        try:
            try:
                conn = engine.connect()
            except DBAPIError as exc:
                raise self._connect_error(exc) from None
            except SQLAlchemyError as exc:
                raise ConnectorConfigError(f"can't connect: {self._mask(str(exc))}") from None
            with conn:
                self._prepare_connection(conn)
                return work(conn)
        finally:
            engine.dispose()

    def _engine(self) -> Engine:
        backend = self.url.get_backend_name()
        connect_args: dict[str, Any] = {}
        if backend == "postgresql":
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
        elif backend in ("mysql", "mariadb"):
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
        elif backend == "sqlite":
            connect_args["check_same_thread"] = False
        return create_engine(self.url, poolclass=NullPool, connect_args=connect_args)

    def _prepare_connection(self, conn: Connection) -> None:
        """Session-wide settings, before any transaction starts."""
        timeout = self.config.statement_timeout_seconds
        try:
            if conn.dialect.name in ("mysql", "mariadb"):
                if getattr(conn.dialect, "is_mariadb", False):
                    conn.exec_driver_sql(f"SET SESSION max_statement_time = {int(timeout)}")
                else:
                    conn.exec_driver_sql(f"SET SESSION max_execution_time = {int(timeout) * 1000}")
                conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
                conn.commit()
            elif conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA query_only = ON")
                conn.commit()
        except DBAPIError as exc:
            raise self._query_error(exc) from None

    def _run(self, conn: Connection, sql: str, window: Window) -> list[tuple[Any, ...]]:
        """The rows of one query, in a read-only transaction that is always rolled back."""
        dialect = conn.dialect.name
        timeout = self.config.statement_timeout_seconds
        # sqlite3's default date adapter is deprecated; SQLite compares ISO strings anyway.
        bounds: dict[str, Any] = (
            {"from": window.start.isoformat(), "to": window.end.isoformat()}
            if dialect == "sqlite"
            else {"from": window.start, "to": window.end}
        )
        raw = conn.connection.dbapi_connection if dialect == "sqlite" else None
        try:
            if dialect == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout) * 1000}")
            elif dialect in ("mysql", "mariadb"):
                conn.exec_driver_sql("START TRANSACTION READ ONLY")
            if raw is not None:
                deadline = time.monotonic() + timeout
                raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
            result = conn.execute(text(sql), bounds)
            if not result.returns_rows:
                raise ConnectorConfigError(
                    "the query returned no rows: it must be a SELECT of `date, value[, group]`"
                )
            rows = [tuple(r) for r in result.fetchmany(MAX_ROWS + 1)]
            if len(rows) > MAX_ROWS:
                raise ConnectorConfigError(
                    f"the query returned more than {MAX_ROWS} rows: aggregate it by day"
                    " (GROUP BY date) and limit it with :from and :to"
                )
            return rows
        except DBAPIError as exc:
            raise self._query_error(exc) from None
        finally:
            if raw is not None:
                raw.set_progress_handler(None, 0)
            try:
                conn.rollback()
            except SQLAlchemyError:
                pass

    # --- guards and error classification ----------------------------------------------------

    def _guard_network(self) -> None:
        host = self.url.host
        if not host or os.environ.get(ALLOW_PRIVATE_ENV, "").strip().lower() in (
            "1",
            "true",
            "yes",
        ):
            return
        try:
            infos = socket.getaddrinfo(host, self.url.port or None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as exc:
            raise ConnectorConfigError(f"can't resolve the database host `{host}`: {exc}") from None
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if (
                address.is_private
                or address.is_loopback
                or address.is_link_local
                or address.is_reserved
                or address.is_multicast
                or address.is_unspecified
            ):
                raise ConnectorConfigError(
                    f"the database host `{host}` resolves to a private address ({address}):"
                    f" krsync only reaches one when {ALLOW_PRIVATE_ENV}=true"
                )

    def _mask(self, message: str) -> str:
        if self._secret:
            message = message.replace(self._secret, "***")
        return message

    def _where(self) -> str:
        """The database named for a message: never the password."""
        url = self.url
        if not url.host:
            return (
                f"{url.get_backend_name()} database `{(url.database or '').removeprefix('file:')}`"
            )
        port = f":{url.port}" if url.port else ""
        user = f"{url.username}@" if url.username else ""
        return f"{url.get_backend_name()} database `{url.database or ''}` on {user}{url.host}{port}"

    def _connect_error(self, exc: DBAPIError) -> Exception:
        code, text_ = _code(exc), self._mask(str(exc.orig)).strip()
        lowered = text_.lower()
        if (
            code in _PG_AUTH
            or code in _MY_AUTH
            or "password authentication failed" in lowered
            or "access denied" in lowered
        ):
            return ConnectorAuthError(
                f"the database refused the user or password for {self._where()}: check the"
                f" user in `url` and the password in the credentials ({text_})"
            )
        if code in _PG_UNKNOWN_DB or code in _MY_UNKNOWN_DB:
            return ConnectorConfigError(f"the database in {self._where()} does not exist ({text_})")
        return ConnectorConfigError(f"can't connect to {self._where()}: {text_}")

    def _query_error(self, exc: DBAPIError) -> Exception:
        code, text_ = _code(exc), self._mask(str(exc.orig)).strip()
        lowered = text_.lower()
        if (
            code in _PG_READ_ONLY
            or code in _MY_READ_ONLY
            or "readonly database" in lowered
            or "read-only transaction" in lowered
            or "read only transaction" in lowered
        ):
            return ConnectorConfigError(WRITE_REFUSED)
        if (
            code in _PG_TIMEOUT
            or code in _MY_TIMEOUT
            or lowered == "interrupted"
            or "max_statement_time" in lowered
            or "statement timeout" in lowered
        ):
            return RetriableError(
                f"the query ran past the {self.config.statement_timeout_seconds}s statement"
                " timeout: make it faster (an index on the date column) or raise the timeout"
            )
        if exc.connection_invalidated:
            return RetriableError(f"lost the connection to {self._where()}: {text_}")
        return ConnectorConfigError(f"the query failed: {text_}")


def _code(exc: DBAPIError) -> str | int | None:
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate:
        return str(sqlstate)
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    return None


# --- rows ------------------------------------------------------------------------------------


def parse_rows(
    query_id: str, rows: Sequence[tuple[Any, ...]], window: Window
) -> tuple[list[DailyValue], list[str]]:
    """Daily values from ``date, value[, group]`` rows; duplicates of a day and group are summed."""
    totals: dict[tuple[date, str | None], float] = {}
    warnings: list[str] = []
    for number, row in enumerate(rows, start=1):
        if len(row) < 2:
            warnings.append(
                f"row {number}: expected `date, value[, group]` columns, got {len(row)}"
            )
            continue
        day = _as_date(row[0])
        if day is None:
            warnings.append(f"row {number}: {row[0]!r} is not a date; row skipped")
            continue
        if day not in window:
            continue
        if row[1] is None:
            continue
        value = _as_float(row[1])
        if value is None:
            warnings.append(f"row {number}: value {row[1]!r} is not a number; row skipped")
            continue
        group = None if len(row) < 3 or row[2] is None else str(row[2])
        totals[(day, group)] = totals.get((day, group), 0.0) + value
    values = [DailyValue(query_id, d, v, g) for (d, g), v in totals.items()]
    return values, warnings


def _as_date(raw: Any) -> date | None:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        s = raw.strip()
        try:
            return date.fromisoformat(s)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(s).date()
        except ValueError:
            return None
    return None


def _as_float(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float | Decimal):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            return None
    else:
        return None
    return value if math.isfinite(value) else None


__all__ = ["WRITE_REFUSED", "SqlConfig", "SqlConnector", "SqlCredentials", "SqlParams"]
