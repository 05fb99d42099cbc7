"""What an SQL source is told: a password-free URL, a timeout, and a query bound to the window.

``normalize_url`` is here because the URL is part of the config: it picks the drivers krsync
ships and makes SQLite read-only before any connection is opened.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from connectors.base import ConnectorConfigError

_BIND = {name: re.compile(rf"(?<![:\w]):{name}\b") for name in ("from", "to")}


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
