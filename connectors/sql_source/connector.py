"""Daily figures from a read-only SQL query on any database SQLAlchemy can reach.

The query returns ``date, value[, group]`` rows and is bound to the window with ``:from`` and
``:to`` (real bind parameters, so exactly one statement runs). It always runs in a read-only
transaction of a read-only session with a statement timeout, and the transaction is rolled back
at the end: a query that writes is refused by the database itself (PostgreSQL
``default_transaction_read_only`` and ``SET TRANSACTION READ ONLY``, MySQL/MariaDB
``SET SESSION TRANSACTION READ ONLY`` and ``START TRANSACTION READ ONLY``, SQLite opened with
``mode=ro``, ``PRAGMA query_only`` and an authorizer that allows reads only), not by inspecting
its text. SQLite opens only files inside ``KRSYNC_FILES_DIR``, never krsync's own database. The
driver is blocking, so the work runs in a worker thread, on an engine built and disposed per call.

Every driver call has a deadline: libpq's connect timeout, PyMySQL's socket timeouts, and
:class:`~connectors.deadline.Deadline` over the whole connection. A private address is reached
only when the admin allows it, checked on the very arguments SQLAlchemy hands the driver (a
``do_connect`` hook): every host it would use (libpq's ``host`` and ``hostaddr`` lists, a Unix
socket, PyMySQL's ``unix_socket``); what the environment could change is pinned (``PGHOSTADDR``,
``PGPASSWORD``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from operator import getitem
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import AfterValidator, ConfigDict, Field, SecretStr
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from connectors.base import (
    CheckResult,
    Connector,
    ConnectorAuthError,
    ConnectorConfigError,
    FetchResult,
    MappingError,
    MetricQuery,
    RetriableError,
    Window,
    as_number,
)
from connectors.deadline import Deadline
from connectors.files import file_in_files_dir
from connectors.models import Params, Strict
from connectors.netguard import ALLOW_PRIVATE_ENV, first_private, private_networks_allowed
from connectors.records import Day, Fields, Figure, reported, tally, value_metric

WRITE_REFUSED = "the database refused a write: the query must only read"
_MULTI_STATEMENTS = 1 << 16  # PyMySQL's CLIENT.MULTI_STATEMENTS

_Kind = tuple[set[str | int], str]
#: What a driver error means, by its code (PostgreSQL SQLSTATE, MySQL/MariaDB number) or by its
#: words, for the drivers (SQLite) and errors without one; SQLite's authorizer says "not
#: authorized" to an attach, a pragma, a write.
_AUTH: _Kind = {"28P01", "28000", 1045, 1044, 1698}, r"password authentication failed|access denied"
_UNKNOWN_DB: _Kind = {"3D000", 1049}, r"(?!)"  # by its code only
#: Server gone away, lost connection (PyMySQL's read_timeout among them).
_LOST: _Kind = {2006, 2013}, r"timeout expired|timed out"
_READ_ONLY: _Kind = {"25006", 1792}, r"readonly database|read[- ]only transaction|^not authorized$"
#: 1969: MariaDB's, 3024: MySQL's.
_TIMEOUT: _Kind = {"57014", 1969, 3024}, r"^interrupted$|max_statement_time|statement timeout"

CONNECT_TIMEOUT_SECONDS = 10
#: How long a driver call may run past the statement timeout before krsync gives up on it: the
#: server's own timeout answers well inside it, so only a stalled server or network reaches it.
DEADLINE_MARGIN_SECONDS = 5
#: The statement timeout of the one-day run that checks a new mapping, which holds up a request.
MAPPING_CHECK_SECONDS = 8
#: The most rows one query may return; a daily series over years is a few thousand.
MAX_ROWS = 100_000
#: What a query may do in SQLite: read tables, call functions, recurse. Not attach another file,
#: change a pragma or write, whatever ``query_only`` and the read-only open already refuse.
_SQLITE_READS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
#: The bind parameters a query must use (and the only ones it may).
WINDOW_BINDS = ("from", "to")
#: The drivers krsync ships and sets deadlines and read-only sessions for, by URL scheme.
DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
#: URL query parameters a user may set, by backend (hosts and sockets are checked at connect).
#: Left out on purpose: libpq's ``service``, ``servicefile``, ``passfile``, ``options`` and its
#: ``ssl*`` file paths; PyMySQL's ``init_command``, ``local_infile`` (a server could ask for any
#: local file), ``client_flag``, ``read_default_file``, a ``host`` beside the URL's; the drivers'
#: timeouts (krsync sets them); any password.
ALLOWED_QUERY = {
    "postgresql": frozenset(
        (
            "host hostaddr port sslmode sslrootcert sslnegotiation sslsni channel_binding"
            " gssencmode require_auth target_session_attrs load_balance_hosts application_name"
            " client_encoding"
        ).split()
    ),
    "mysql": frozenset({"charset", "unix_socket", "ssl_check_hostname"}),
}


def check_binds(query: str) -> None:
    """The query binds ``:from`` and ``:to``, as SQLAlchemy itself parses it, and nothing else.

    Asking SQLAlchemy rather than matching text matters: an escaped ``\\:from`` or a
    ``:from::date`` cast binds nothing, and a query without parameters reaches psycopg as a simple
    query, which runs several statements (``COMMIT`` among them) in one call.
    """
    try:
        names = set(text(query).compile().params)
    except SQLAlchemyError as exc:
        raise ConnectorConfigError(f"the query can't be read: {exc}") from None
    missing = [f":{name}" for name in WINDOW_BINDS if name not in names]
    if missing:
        raise ConnectorConfigError(
            f"the query must use {' and '.join(missing)} to limit rows to the window, e.g."
            " WHERE day BETWEEN :from AND :to (write CAST(:from AS date), not :from::date)"
        )
    extra = sorted(names - set(WINDOW_BINDS))
    if extra:
        raise ConnectorConfigError(
            f"the query may bind only :from and :to, not {', '.join(f':{n}' for n in extra)}"
            " (write \\: for a colon that is not a parameter)"
        )


def normalize_url(raw: str) -> URL:
    """A URL naming the driver krsync ships (postgres:// and mysql:// get psycopg and PyMySQL),
    a SQLite file opened read-only through SQLite's URI syntax."""
    scheme, sep, rest = raw.strip().partition("://")
    if not sep:
        raise ConnectorConfigError(
            "`url` is not a database URL: use e.g. postgresql://user@host/db or sqlite:///path"
        )
    try:
        url = make_url(f"{DRIVERS.get(scheme.lower(), scheme)}://{rest}")
    except (ArgumentError, ValueError):
        # Neither message is quoted: a malformed URL may still hold a password.
        raise ConnectorConfigError(
            "`url` is not a valid SQLAlchemy URL: use scheme://user@host:port/database, a port"
            " as a number, and several hosts as ?host=a&host=b"
        ) from None
    if url.password or any(key in ("password", "passwd") for key in url.query):
        raise ConnectorConfigError(
            "`url` must not contain a password: remove it and put it in the credentials"
        )
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return url
    read_only = {**url.query, "mode": "ro", "uri": "true"}
    if database.startswith("file:"):
        return url.set(query=read_only)
    return url.set(database=f"file:{database}", query=read_only)


def check_url(raw: str) -> URL:
    """The URL as :func:`normalize_url` makes it, refused unless krsync can vouch for it: only
    the drivers whose timeouts and read-only settings krsync sets, and of the query parameters
    only those that can't point the driver somewhere else (a service file, a socket, a file to
    read, a statement to run at connect); the hosts themselves are checked when connecting."""
    url = normalize_url(raw)
    backend = url.get_backend_name()
    shipped = ("sqlite", "sqlite+pysqlite") if backend == "sqlite" else (DRIVERS.get(backend),)
    if url.drivername not in shipped:
        raise ConnectorConfigError(
            f"`{url.drivername}` URLs are not supported: use postgresql://, mysql://,"
            " mariadb:// or sqlite:/// (krsync sets the timeouts and the read-only session of"
            " the drivers it ships)"
        )
    if backend == "sqlite":
        given = make_url(raw.strip())
        database = given.database or ""
        if given.query:
            raise ConnectorConfigError(
                "a SQLite `url` takes no query parameters: krsync opens the file read-only itself"
            )
        if database in ("", ":memory:") or database.startswith("file:"):
            raise ConnectorConfigError(
                "a SQLite `url` names a database file in KRSYNC_FILES_DIR, e.g. sqlite:///shop.db:"
                " not an in-memory database or a file: URI"
            )
        return url
    allowed_keys = ALLOWED_QUERY["mysql" if backend == "mariadb" else backend]
    unknown = sorted(set(url.query) - allowed_keys)
    if unknown:
        allowed = ", ".join(f"`{key}`" for key in sorted(allowed_keys))
        raise ConnectorConfigError(
            f"`url` can't set {', '.join(f'`{key}`' for key in unknown)}: krsync sets the"
            " connection's timeouts and read-only session itself and reads no local file,"
            f" service or option file for it (accepted: {allowed})"
        )
    if url.query.get("sslrootcert") not in (None, "system"):
        raise ConnectorConfigError(
            "`sslrootcert` may only be `system` (the system's certificate authorities):"
            " krsync reads no local file for a connection"
        )
    return url


def _refused_as_invalid(check: Callable[[str], object]) -> AfterValidator:
    """A check above as a field's: its refusal is the field's error."""

    def run(value: str) -> str:
        try:
            check(value)
        except ConnectorConfigError as exc:
            raise ValueError(exc.message) from None
        return value

    return AfterValidator(run)


class SqlConfig(Strict):
    model_config = ConfigDict(hide_input_in_errors=True)  # a refused URL may hold a password

    url: Annotated[str, _refused_as_invalid(check_url)] = Field(
        min_length=1,
        description="An SQLAlchemy URL without the password, e.g. "
        "postgresql://reader@db.example.com/shop, mysql://reader@db/shop or sqlite:///shop.db (a "
        "file in KRSYNC_FILES_DIR). Use a read-only database user; the password goes in the "
        "credentials.",
    )
    statement_timeout_seconds: int = Field(
        30, ge=1, le=3600, description="A query running longer than this is cancelled."
    )


class SqlCredentials(Strict):
    password: SecretStr | None = Field(None, description="The database user's password.")


class SqlParams(Params):
    query: Annotated[str, _refused_as_invalid(check_binds)] = Field(
        min_length=1,
        description="A SELECT returning `date, value[, group]` rows, one per day (and group), "
        "limited to the window with the :from and :to bind parameters (inclusive dates).",
    )


class SqlConnector(Connector[SqlConfig, SqlCredentials]):
    """Figures computed by the customer's own SQL, run read-only against their database."""

    key = "sql"
    name = "SQL query"
    category = "generic"
    metrics = value_metric(
        "The `value` column of your query, by its `date` (and `group`) column", SqlParams
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        password = self.credentials.password
        self._secret = password.get_secret_value() if password else None
        url = normalize_url(self.config.url)
        self.url = url.set(password=self._secret) if self._secret else url

    async def check(self) -> CheckResult:
        def probe(conn: Connection, timeout: int) -> CheckResult:
            conn.execute(text("SELECT 1")).scalar()
            return CheckResult(
                f"Connected to the {self._where()}", details={"dialect": conn.dialect.name}
            )

        return await asyncio.to_thread(self._with_connection, probe)

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        def run(conn: Connection, timeout: int) -> FetchResult:
            result = FetchResult()
            for query in queries:
                if query.metric != "value" or not isinstance(query.params, SqlParams):
                    result.query_errors[query.id] = (
                        f"the SQL connector has no metric `{query.metric}`"
                    )
                    continue
                try:
                    rows = self._run(conn, query.params.query, window, timeout)
                except ConnectorConfigError as exc:  # this query's own fault: the others run
                    result.query_errors[query.id] = exc.message
                    continue
                parse_rows(query.id, rows, window, result)
            return result

        return await asyncio.to_thread(self._with_connection, run, statements=len(queries))

    async def validate_mapping_online(self, query: MetricQuery) -> None:
        """Run the query over one day, so a write or a syntax error is refused at mapping time.

        A failure of the query itself is the mapping's fault (a ``MappingError``); one of the
        connection (unreachable, refused password, too slow) is the source's, left to its test.
        """
        if not isinstance(query.params, SqlParams):
            return
        sql, today = query.params.query, self.today

        def run(conn: Connection, timeout: int) -> None:
            try:
                self._run(conn, sql, Window(today, today), timeout)
            except ConnectorConfigError as exc:
                raise MappingError("params.query", exc.message) from None

        timeout = min(self.config.statement_timeout_seconds, MAPPING_CHECK_SECONDS)
        await asyncio.to_thread(self._with_connection, run, timeout=timeout)

    def _with_connection(
        self, work: Callable[[Connection, int], Any], *, timeout: int = 0, statements: int = 1
    ) -> Any:
        """``work`` on a fresh connection, within one deadline for the connect, the session
        settings, then ``statements`` queries of ``timeout`` seconds each."""
        timeout = timeout or self.config.statement_timeout_seconds
        per_call = timeout + DEADLINE_MARGIN_SECONDS
        deadline = Deadline(CONNECT_TIMEOUT_SECONDS + per_call * (statements + 1))
        try:
            engine = self._engine(timeout, deadline)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise ConnectorConfigError(
                f"can't use `{self.url.drivername}` URLs: {self._mask(str(exc))}"
                " (is its driver installed?)"
            ) from None
        try:
            with deadline.running():
                try:
                    conn = engine.connect()
                except DBAPIError as exc:
                    raise self._late(deadline) or self._connect_error(exc) from None
                except SQLAlchemyError as exc:
                    raise ConnectorConfigError(f"can't connect: {self._mask(str(exc))}") from None
                with conn:
                    try:
                        if conn.dialect.name in ("mysql", "mariadb"):
                            self._session_timeout(conn, timeout)
                        outcome = work(conn, timeout)
                    except (ConnectorConfigError, RetriableError) as exc:
                        raise self._late(deadline) or exc from None
                # A cut connection may also surface as one query's error in a fetch.
                if late := self._late(deadline):
                    raise late
                return outcome
        finally:
            engine.dispose()

    def _late(self, deadline: Deadline) -> RetriableError | None:
        """The error to report once the deadline cut the connection, whatever the driver said."""
        if not deadline.expired:
            return None
        return RetriableError(
            f"the {self._where()} did not answer within {deadline.seconds:g}s, so krsync"
            " closed the connection: is the server overloaded or the network path down?"
        )

    def _engine(self, timeout: int, deadline: Deadline) -> Engine:
        if self.url.get_backend_name() == "sqlite":
            engine = create_engine(
                self._sqlite_url(), poolclass=NullPool, connect_args={"check_same_thread": False}
            )
            event.listen(
                engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA query_only = ON")
            )
            return engine
        connect_args: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        if self.url.get_backend_name() == "postgresql":
            # Session defaults from the first byte: even a statement that ended krsync's
            # read-only transaction would find the next one read-only too.
            connect_args["options"] = (
                f"-c default_transaction_read_only=on -c statement_timeout={timeout * 1000}"
            )
        else:
            # PyMySQL waits forever on a silent server unless told otherwise, handshake included.
            connect_args["read_timeout"] = connect_args["write_timeout"] = (
                timeout + DEADLINE_MARGIN_SECONDS
            )
            connect_args["init_command"] = "SET SESSION TRANSACTION READ ONLY"
        engine = create_engine(self.url, poolclass=NullPool, connect_args=connect_args)
        event.listen(engine, "do_connect", lambda _d, _r, _a, cparams: self._guard_connect(cparams))
        # First among the connect hooks, so SQLAlchemy's own first queries are covered too.
        event.listen(engine, "connect", lambda dbapi, _: deadline.watch(dbapi), insert=True)
        return engine

    def _session_timeout(self, conn: Connection, timeout: int) -> None:
        """MySQL's and MariaDB's, set before any transaction starts."""
        try:
            if getattr(conn.dialect, "is_mariadb", False):
                conn.exec_driver_sql(f"SET SESSION max_statement_time = {int(timeout)}")
            else:
                conn.exec_driver_sql(f"SET SESSION max_execution_time = {int(timeout) * 1000}")
            conn.commit()
        except DBAPIError as exc:
            raise self._query_error(exc, timeout) from None

    def _run(
        self, conn: Connection, sql: str, window: Window, timeout: int
    ) -> list[tuple[Any, ...]]:
        """The rows of one query, in a read-only transaction that is always rolled back.

        Exactly one statement runs: the query always carries its two parameters, so psycopg
        sends it by the extended protocol (one statement, server-side parameters), PyMySQL
        connects without multi-statements, and sqlite3 executes one statement at a time.
        """
        check_binds(sql)
        dialect = conn.dialect.name
        raw = conn.connection.dbapi_connection if dialect == "sqlite" else None
        bounds: dict[str, Any] = {"from": window.start, "to": window.end}
        try:
            if dialect == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout) * 1000}")
            elif dialect in ("mysql", "mariadb"):
                # Again before each query: one of an earlier mapping may have set the session
                # read-write, and a statement that commits implicitly (DDL) leaves the
                # transaction below for the session's mode.
                conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
                conn.exec_driver_sql("START TRANSACTION READ ONLY")
            if raw is not None:
                # sqlite3's default date adapter is deprecated; SQLite compares ISO strings anyway.
                bounds = {name: day.isoformat() for name, day in bounds.items()}
                deadline = time.monotonic() + timeout
                raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
                raw.set_authorizer(
                    lambda action, *_: (
                        sqlite3.SQLITE_OK if action in _SQLITE_READS else sqlite3.SQLITE_DENY
                    )
                )
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
            raise self._query_error(exc, timeout) from None
        finally:
            if raw is not None:
                raw.set_progress_handler(None, 0)
                raw.set_authorizer(None)
            with contextlib.suppress(SQLAlchemyError):
                conn.rollback()

    # --- where a connection may go, and what a driver error means -------------------------

    def _guard_connect(self, cparams: dict[str, Any]) -> None:
        """Check (and pin) the driver's own arguments right before it connects."""
        if self.url.get_backend_name() == "postgresql":
            # Given explicitly, even empty, libpq no longer fills them from PGHOSTADDR or
            # PGPASSWORD: krsync's environment must not redirect a source or lend it a password.
            cparams.setdefault("hostaddr", "")
            cparams.setdefault("password", "")
            targets = [(t, not t or t.startswith(("/", "@"))) for t in _libpq_targets(cparams)]
        else:
            # A client flag from the URL must not turn on several statements per call.
            cparams["client_flag"] = int(cparams.get("client_flag", 0)) & ~_MULTI_STATEMENTS
            socket_path = str(cparams.get("unix_socket") or "")
            # PyMySQL takes the socket over the host, and "localhost" for no host at all.
            host = str(cparams.get("host") or "localhost")
            targets = [(socket_path, True) if socket_path else (host, False)]
        if private_networks_allowed():
            return
        port = cparams.get("port")
        for target, is_socket in targets:
            self._refuse_private(target, is_socket, port if isinstance(port, int) else None)

    def _refuse_private(self, target: str, is_socket: bool, port: int | None) -> None:
        """Unless ``target`` (a host or IP, or a Unix socket's path; empty: the driver's default
        socket) is public."""
        opt_in = f"krsync only reaches one when {ALLOW_PRIVATE_ENV}=true"
        if is_socket:
            where = f"a Unix socket (`{target}`)" if target else "the local Unix socket (no host)"
            raise ConnectorConfigError(
                f"the database is reached through {where}, a private address of this machine:"
                f" {opt_in}"
            )
        try:
            private = first_private(target, port)
        except (OSError, UnicodeError) as exc:
            raise ConnectorConfigError(
                f"can't resolve the database host `{target}`: {exc}"
            ) from None
        if private is not None:
            raise ConnectorConfigError(
                f"the database host `{target}` resolves to a private address ({private[0]},"
                f" {private[1]}): {opt_in}"
            )

    def _sqlite_url(self) -> URL:
        """The SQLite file, inside KRSYNC_FILES_DIR and not krsync's own, opened read-only.

        The URI is built here from the real path, percent-encoded, so no part of the file's name
        can add URI parameters (``vfs``, ``mode``) of its own.
        """
        given = make_url(self.config.url.strip()).database or ""  # as the user wrote it
        path = file_in_files_dir(given, otherwise=" to read SQLite databases")
        # Built afresh: SQLite takes no user or password, and one set by mistake would make the
        # URL invalid (``URL.set`` can't clear a field).
        return URL.create(
            self.url.drivername,
            database=f"file:{quote(str(path), safe='/')}",
            query={"mode": "ro", "uri": "true"},
        )

    def _mask(self, message: str) -> str:
        return message.replace(self._secret, "***") if self._secret else message

    def _where(self) -> str:
        """The database named for a message: never the password."""
        url, backend = self.url, self.url.get_backend_name()
        if not url.host:
            return f"{backend} database `{(url.database or '').removeprefix('file:')}`"
        port = f":{url.port}" if url.port else ""
        user = f"{url.username}@" if url.username else ""
        return f"{backend} database `{url.database or ''}` on {user}{url.host}{port}"

    def _connect_error(self, exc: DBAPIError) -> Exception:
        said = self._mask(str(exc.orig)).strip()
        if _means(exc, said, _AUTH):
            return ConnectorAuthError(
                f"the database refused the user or password for {self._where()}: check the"
                f" user in `url` and the password in the credentials ({said})"
            )
        if _means(exc, said, _UNKNOWN_DB):
            return ConnectorConfigError(f"the database in {self._where()} does not exist ({said})")
        if _means(exc, said, _LOST):
            return RetriableError(f"the {self._where()} did not answer in time ({said})")
        return ConnectorConfigError(f"can't connect to {self._where()}: {said}")

    def _query_error(self, exc: DBAPIError, timeout: int) -> Exception:
        said = self._mask(str(exc.orig)).strip()
        if _means(exc, said, _READ_ONLY):
            return ConnectorConfigError(WRITE_REFUSED)
        if _means(exc, said, _TIMEOUT):
            return RetriableError(
                f"the query ran past the {timeout}s statement"
                " timeout: make it faster (an index on the date column) or raise the timeout"
            )
        if exc.connection_invalidated:
            return RetriableError(f"lost the connection to {self._where()}: {said}")
        return ConnectorConfigError(f"the query failed: {said}")


def _means(exc: DBAPIError, said: str, kind: _Kind) -> bool:
    codes, words = kind
    sqlstate, args = getattr(exc.orig, "sqlstate", None), getattr(exc.orig, "args", ())
    code = str(sqlstate) if sqlstate else args[0] if args and isinstance(args[0], int) else None
    return code in codes or re.search(words, said.lower()) is not None


def _libpq_targets(cparams: dict[str, Any]) -> list[str]:
    """Where libpq connects: each host's ``hostaddr`` when given, else the host (a path or an
    empty entry is a Unix socket). Lists are comma-separated, as libpq splits them."""
    hosts = str(cparams.get("host") or "").split(",")
    addresses = str(cparams.get("hostaddr") or "").split(",")
    if addresses == [""]:
        return hosts
    if len(addresses) != len(hosts) and hosts != [""]:
        return [*hosts, *addresses]  # libpq refuses the mismatch; check every name anyway
    return [address or (hosts[i] if i < len(hosts) else "") for i, address in enumerate(addresses)]


# --- rows, as drivers hand them (no database here: the row rules are tested without one) -----


def parse_rows(
    query_id: str, rows: Sequence[tuple[Any, ...]], window: Window, result: FetchResult
) -> None:
    """``date, value[, group]`` rows into ``result``: daily values (duplicates summed), warnings."""
    width = len(rows[0]) if rows else 0  # every row of a result has its columns
    if width < 2:
        result.warnings.append(
            f"expected `date, value[, group]` columns, got {width}: none of the query's "
            f"{len(rows)} row(s) can be read"
        )
        return
    bad: dict[int, str] = {}
    columns = Fields(getitem, 0, 1, 2 if width > 2 else None, label=_group)
    result.values += tally(
        query_id, enumerate(rows, 1), columns, window, bad, read_day=_as_date, read_value=_figure
    )
    result.warnings += reported(bad, "row", "rows")


def _group(raw: Any) -> str | None:
    return None if raw is None else str(raw)  # a NULL group is no group


def _figure(raw: Any) -> Figure:
    if raw is None:
        return None
    value = as_number(float(raw) if isinstance(raw, Decimal) else raw)
    if value is None or not math.isfinite(value):
        return f"value {raw!r} is not a number; row skipped"
    return value


def _as_date(raw: Any) -> Day:
    if isinstance(raw, date):
        return raw.date() if isinstance(raw, datetime) else raw
    if isinstance(raw, str):
        for parse in (date.fromisoformat, lambda s: datetime.fromisoformat(s).date()):
            with contextlib.suppress(ValueError):
                return parse(raw.strip())
    return f"{raw!r} is not a date; row skipped"
