"""Guards and error classification: the private-network check, and what a driver error means.

The dialects' error codes differ (PostgreSQL SQLSTATEs, MySQL/MariaDB numbers), so they sit in one
table here beside the methods that read them. :class:`SqlGuards` is the connector's base so those
methods keep their names and ``self``; the connector's ``__init__`` sets ``url`` and ``_secret``.
"""

from __future__ import annotations

import ipaddress
import os
import socket

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from connectors.base import Connector, ConnectorAuthError, ConnectorConfigError, RetriableError
from connectors.sql_source.models import SqlConfig, SqlCredentials

WRITE_REFUSED = "the database refused a write: the query must only read"
ALLOW_PRIVATE_ENV = "KRSYNC_ALLOW_PRIVATE_NETWORKS"

# Error codes by dialect: (read-only violation, statement timeout, authentication, unknown db).
_PG_READ_ONLY, _PG_TIMEOUT = {"25006"}, {"57014"}
_PG_AUTH, _PG_UNKNOWN_DB = {"28P01", "28000"}, {"3D000"}
_MY_READ_ONLY, _MY_TIMEOUT = {1792}, {1969, 3024}  # 1969: MariaDB, 3024: MySQL
_MY_AUTH, _MY_UNKNOWN_DB = {1045, 1044, 1698}, {1049}


class SqlGuards(Connector[SqlConfig, SqlCredentials]):
    """The checks and messages of the SQL connector, apart from its database work."""

    #: The database URL with its password, set by the connector's ``__init__``.
    url: URL
    #: The password alone, masked out of every message.
    _secret: str | None

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
