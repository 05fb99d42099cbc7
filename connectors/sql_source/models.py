"""What an SQL source is told: a password-free URL, a timeout, and a query bound to the window.

``normalize_url`` is here because the URL is part of the config: it picks the drivers krsync
ships and makes SQLite read-only before any connection is opened. ``check_url`` is what the config
accepts: only the drivers whose timeouts and read-only settings krsync sets, and of the URL's
query parameters only those that can't point the driver somewhere else (a service file, a socket,
a file to read, a statement to run at connect); the hosts themselves are checked when connecting.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from connectors.base import ConnectorConfigError

#: The bind parameters a query must use (and the only ones it may).
WINDOW_BINDS = ("from", "to")
_PASSWORDS = frozenset({"password", "passwd"})
#: The drivers krsync ships and sets deadlines and read-only sessions for.
DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
    "sqlite": "sqlite",
}
#: URL query parameters a user may set, by backend (hosts and sockets are checked at connect).
#: Left out on purpose: libpq's ``service``, ``servicefile``, ``passfile``, ``options`` and its
#: ``ssl*`` file paths; PyMySQL's ``init_command``, ``local_infile`` (a server could ask for any
#: local file), ``client_flag``, ``read_default_file``, a ``host`` beside the URL's; the drivers'
#: timeouts (krsync sets them); any password.
ALLOWED_QUERY = {
    "postgresql": frozenset(
        {
            "host",
            "hostaddr",
            "port",
            "sslmode",
            "sslrootcert",
            "sslnegotiation",
            "sslsni",
            "channel_binding",
            "gssencmode",
            "require_auth",
            "target_session_attrs",
            "load_balance_hosts",
            "application_name",
            "client_encoding",
        }
    ),
    "mysql": frozenset({"charset", "unix_socket", "ssl_check_hostname"}),
    "sqlite": frozenset(),
}


class SqlConfig(BaseModel):
    # A refused URL may hold a password: its errors never quote it.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    url: str = Field(
        min_length=1,
        description=(
            "An SQLAlchemy URL without the password, e.g. postgresql://reader@db.example.com/shop,"
            " mysql://reader@db/shop or sqlite:///shop.db (a file in KRSYNC_FILES_DIR). Use a"
            " read-only database user; the password goes in the credentials."
        ),
    )
    statement_timeout_seconds: int = Field(
        30, ge=1, le=3600, description="A query running longer than this is cancelled."
    )

    @field_validator("url")
    @classmethod
    def _usable(cls, url: str) -> str:
        try:
            check_url(url)
        except ConnectorConfigError as exc:
            raise ValueError(exc.message) from None
        return url


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
        try:
            check_binds(query)
        except ConnectorConfigError as exc:
            raise ValueError(exc.message) from None
        return query


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
    except (ArgumentError, ValueError):
        # Neither message is quoted: a malformed URL may still hold a password.
        raise ConnectorConfigError(
            "`url` is not a valid SQLAlchemy URL: use scheme://user@host:port/database, a port"
            " as a number, and several hosts as ?host=a&host=b"
        ) from None
    if url.password or any(key in _PASSWORDS for key in url.query):
        raise ConnectorConfigError(
            "`url` must not contain a password: remove it and put it in the credentials"
        )
    if url.get_backend_name() == "sqlite":
        url = _sqlite_read_only(url)
    return url


def check_url(raw: str) -> URL:
    """The URL as :func:`normalize_url` makes it, refused unless krsync can vouch for it."""
    url = normalize_url(raw)
    backend = url.get_backend_name()
    family = "mysql" if backend == "mariadb" else backend
    if DRIVERS.get(backend) != url.drivername and not (
        backend == "sqlite" and url.drivername == "sqlite+pysqlite"
    ):
        raise ConnectorConfigError(
            f"`{url.drivername}` URLs are not supported: use postgresql://, mysql://,"
            " mariadb:// or sqlite:/// (krsync sets the timeouts and the read-only session of"
            " the drivers it ships)"
        )
    if family == "sqlite":
        _check_sqlite(raw)
        return url
    unknown = sorted(set(url.query) - ALLOWED_QUERY[family])
    if unknown:
        allowed = ", ".join(f"`{key}`" for key in sorted(ALLOWED_QUERY[family]))
        raise ConnectorConfigError(
            f"`url` can't set {', '.join(f'`{key}`' for key in unknown)}: krsync sets the"
            " connection's timeouts and read-only session itself and reads no local file,"
            f" service or option file for it (accepted: {allowed})"
        )
    root_certs = url.query.get("sslrootcert")
    if root_certs is not None and root_certs != "system":
        raise ConnectorConfigError(
            "`sslrootcert` may only be `system` (the system's certificate authorities):"
            " krsync reads no local file for a connection"
        )
    return url


def sqlite_path(raw: str) -> str:
    """The file a ``sqlite:///`` URL names, as the user wrote it (relative to KRSYNC_FILES_DIR)."""
    return make_url(raw.strip()).database or ""


def _check_sqlite(raw: str) -> None:
    url = make_url(raw.strip())
    database = url.database or ""
    if url.query:
        raise ConnectorConfigError(
            "a SQLite `url` takes no query parameters: krsync opens the file read-only itself"
        )
    if database in ("", ":memory:") or database.startswith("file:"):
        raise ConnectorConfigError(
            "a SQLite `url` names a database file in KRSYNC_FILES_DIR, e.g. sqlite:///shop.db:"
            " not an in-memory database or a file: URI"
        )


def _sqlite_read_only(url: URL) -> URL:
    """A file database opened read-only through SQLite's URI syntax."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        query = dict(url.query)
        if database.startswith("file:"):
            query.update(mode="ro", uri="true")
        return url.set(query=query)
    return url.set(database=f"file:{database}", query={**url.query, "mode": "ro", "uri": "true"})
