"""What an SQL source is told: a password-free URL, a timeout, and a query bound to the window.

``check_url`` is what the config accepts: only the drivers whose timeouts and read-only settings
krsync sets, and of the URL's query parameters only those that can't point the driver somewhere
else (a service file, a socket, a file to read, a statement to run at connect); the hosts
themselves are checked when connecting.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from connectors.base import ConnectorConfigError

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
    """The URL as :func:`normalize_url` makes it, refused unless krsync can vouch for it."""
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
