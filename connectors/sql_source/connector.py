"""The ``sql`` connector: the hooks, and the database work of a read-only, rolled-back run.

All database work happens here, in a worker thread, on an engine built and disposed per call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from connectors.base import (
    CheckResult,
    ConnectorAuthError,
    ConnectorConfigError,
    FetchResult,
    MetricQuery,
    MetricSpec,
    RetriableError,
    Window,
)
from connectors.sql_source.guards import SqlGuards
from connectors.sql_source.models import SqlConfig, SqlCredentials, SqlParams, normalize_url
from connectors.sql_source.rows import parse_rows

CONNECT_TIMEOUT_SECONDS = 10
#: The most rows one query may return; a daily series over years is a few thousand.
MAX_ROWS = 100_000


class SqlConnector(SqlGuards):
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
        today: date | None = None,
    ) -> None:
        super().__init__(config, credentials, http, timezone=timezone, today=today)
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
        today = self.today

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
