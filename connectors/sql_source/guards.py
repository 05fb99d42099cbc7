"""Guards and error classification: where a connection may go, and what a driver error means.

The private-network guard runs on the very arguments SQLAlchemy hands the driver (a
``do_connect`` hook), so every host the driver would use is checked: libpq's ``host`` and
``hostaddr`` lists, a Unix socket (a path, or no host at all), PyMySQL's ``unix_socket``. The same
hook pins what the environment could otherwise change (``PGHOSTADDR``, ``PGPASSWORD``). SQLite
opens only files inside ``KRSYNC_FILES_DIR``, never krsync's own database.

:class:`SqlGuards` is the connector's base; the connector's ``__init__`` sets ``url`` and
``_secret``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from connectors.base import Connector, ConnectorAuthError, ConnectorConfigError, RetriableError
from connectors.files import file_in_files_dir
from connectors.netguard import ALLOW_PRIVATE_ENV, non_public_reason, private_networks_allowed
from connectors.sql_source.models import SqlConfig, SqlCredentials, sqlite_path

WRITE_REFUSED = "the database refused a write: the query must only read"
#: Where krsync's own database is configured (``app/core/settings.py``), and its default.
OWN_DATABASE_ENVS = ("DATABASE_URL", "KRSYNC_DATABASE_URL")
OWN_DATABASE_DEFAULT = "sqlite:///krsync.db"
_MULTI_STATEMENTS = 1 << 16  # PyMySQL's CLIENT.MULTI_STATEMENTS

# Error codes, PostgreSQL SQLSTATEs (text) beside MySQL/MariaDB numbers.
_READ_ONLY = {"25006", 1792}
_TIMEOUT = {"57014", 1969, 3024}  # 1969: MariaDB, 3024: MySQL
_AUTH = {"28P01", "28000", 1045, 1044, 1698}
_UNKNOWN_DB = {"3D000", 1049}
_LOST = {2006, 2013}  # server gone away, lost connection (PyMySQL's read_timeout among them)


class SqlGuards(Connector[SqlConfig, SqlCredentials]):
    """The checks and messages of the SQL connector, apart from its database work."""

    #: The database URL with its password.
    url: URL
    #: The password alone, masked out of every message.
    _secret: str | None

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
        """``target`` is a host name or an IP address, or a Unix socket's path (empty: the
        driver's default socket)."""
        opt_in = f"krsync only reaches one when {ALLOW_PRIVATE_ENV}=true"
        if is_socket:
            where = f"a Unix socket (`{target}`)" if target else "the local Unix socket (no host)"
            raise ConnectorConfigError(
                f"the database is reached through {where}, a private address of this machine:"
                f" {opt_in}"
            )
        try:
            infos = socket.getaddrinfo(target, port, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as exc:
            raise ConnectorConfigError(
                f"can't resolve the database host `{target}`: {exc}"
            ) from None
        for info in infos:
            address = str(info[4][0])
            reason = non_public_reason(address)
            if reason is not None:
                raise ConnectorConfigError(
                    f"the database host `{target}` resolves to a private address ({address},"
                    f" {reason}): {opt_in}"
                )

    def _sqlite_url(self) -> URL:
        """The SQLite file, inside KRSYNC_FILES_DIR and not krsync's own, opened read-only.

        The URI is built here from the real path, percent-encoded, so no part of the file's name
        can add URI parameters (``vfs``, ``mode``) of its own.
        """
        given = sqlite_path(self.config.url)
        path = file_in_files_dir(given, otherwise=" to read SQLite databases")
        own = _own_database()
        if own is not None and (path == own or (own.exists() and os.path.samefile(path, own))):
            raise ConnectorConfigError(
                f"`{given}` is krsync's own database: point the source at your data instead"
            )
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
        code, said = _code(exc), self._mask(str(exc.orig)).strip()
        lowered = said.lower()
        if (
            code in _AUTH
            or "password authentication failed" in lowered
            or "access denied" in lowered
        ):
            return ConnectorAuthError(
                f"the database refused the user or password for {self._where()}: check the"
                f" user in `url` and the password in the credentials ({said})"
            )
        if code in _UNKNOWN_DB:
            return ConnectorConfigError(f"the database in {self._where()} does not exist ({said})")
        if code in _LOST or "timeout expired" in lowered or "timed out" in lowered:
            return RetriableError(f"the {self._where()} did not answer in time ({said})")
        return ConnectorConfigError(f"can't connect to {self._where()}: {said}")

    def _query_error(self, exc: DBAPIError, timeout: int) -> Exception:
        code, said = _code(exc), self._mask(str(exc.orig)).strip()
        lowered = said.lower()
        # SQLite's authorizer says "not authorized" to an attach, a pragma, a write.
        read_only = ("readonly database", "read-only transaction", "read only transaction")
        if (
            code in _READ_ONLY
            or lowered == "not authorized"
            or any(t in lowered for t in read_only)
        ):
            return ConnectorConfigError(WRITE_REFUSED)
        timed_out = ("max_statement_time", "statement timeout")
        if code in _TIMEOUT or lowered == "interrupted" or any(t in lowered for t in timed_out):
            return RetriableError(
                f"the query ran past the {timeout}s statement"
                " timeout: make it faster (an index on the date column) or raise the timeout"
            )
        if exc.connection_invalidated:
            return RetriableError(f"lost the connection to {self._where()}: {said}")
        return ConnectorConfigError(f"the query failed: {said}")


def _code(exc: DBAPIError) -> str | int | None:
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate:
        return str(sqlstate)
    args = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


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


def _own_database() -> Path | None:
    """The SQLite file krsync itself runs on, resolved as krsync opens it (from its cwd)."""
    configured = next((os.environ[name] for name in OWN_DATABASE_ENVS if os.environ.get(name)), "")
    try:
        url = make_url(configured.strip() or OWN_DATABASE_DEFAULT)
    except (ArgumentError, ValueError):
        return None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database.removeprefix("file:").split("?", 1)[0]).expanduser().resolve()
