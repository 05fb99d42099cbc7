"""Building a connector for a source: its class, validated config and credentials, its client.

Runs, checks, previews and connector tests all build it with :func:`open_connector`, so a
connector sees the same HTTP client (rate limits, OAuth refresh, redaction) wherever it is called
from, and a source's stored config and credentials are validated once, by :func:`connector_for`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel, ValidationError

from app.core.changes import same_named
from app.core.clock import today_in
from app.core.db import get_sessionmaker
from app.core.errors import reason
from app.core.http import HttpStats, KrsyncClient, OAuth2Settings, build_client
from app.core.redact import register_secrets, secrets_in
from app.core.secrets import SecretKeyError
from app.core.settings import get_settings
from app.core.vault import decrypt_credentials, encrypt_credentials
from app.models import DataSource
from app.sync.errors import SourceConfigError
from connectors.base import Connector
from connectors.registry import UnknownConnectorError, get_connector

TokenSaver = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class SourceConnector:
    """A source's connector class with its config and credentials validated: no session needed,
    so a run reads it in its first transaction and builds the client outside any."""

    cls: type[Connector[Any, Any]]
    config: BaseModel
    credentials: BaseModel
    #: The decrypted values: the client's secrets to mask, and what a refreshed token merges into.
    raw: dict[str, Any]
    name: str
    timezone: str = "UTC"
    #: Where a refreshed token is stored; None for a connector built without a stored source.
    source_id: int | None = None


def connector_for(source: DataSource) -> SourceConnector:
    """The stored source's connector, or a `SourceConfigError` saying what no longer fits."""
    try:
        cls = get_connector(source.connector)
    except UnknownConnectorError as exc:
        raise SourceConfigError(str(exc.args[0]) if exc.args else str(exc)) from exc
    try:
        config = cls.config_model.model_validate(source.config)
    except ValidationError as exc:
        raise SourceConfigError(f"the source's config no longer validates: {_fields(exc)}") from exc
    try:
        raw = decrypt_credentials(source.credentials_encrypted)
    except SecretKeyError as exc:
        raise SourceConfigError(str(exc)) from exc
    register_secrets(secrets_in(raw))
    try:
        credentials = cls.credentials_model.model_validate(raw)
    except ValidationError as exc:
        raise SourceConfigError(f"the source's credentials are incomplete: {_fields(exc)}") from exc
    return SourceConnector(
        cls=cls,
        config=config,
        credentials=credentials,
        raw=raw,
        name=source.name,
        timezone=source.timezone,
        source_id=source.id,
    )


def connector_from(
    cls: type[Connector[Any, Any]],
    config: Mapping[str, Any] | BaseModel,
    credentials: Mapping[str, Any],
    *,
    name: str,
    timezone: str = "UTC",
) -> SourceConnector:
    """A connector from plain values (tests, benchmarks), validated by its own models."""
    return SourceConnector(
        cls=cls,
        config=cls.config_model.model_validate(config),
        credentials=cls.credentials_model.model_validate(credentials),
        raw=dict(credentials),
        name=name,
        timezone=timezone,
    )


def _fields(exc: ValidationError) -> str:
    """Field names and reasons only: the input may be a secret."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {reason(e['msg'])}" for e in exc.errors()
    )


def _oauth(cls: type[Connector[Any, Any]], config: BaseModel, creds: BaseModel) -> Any:
    options = cls.http_options(config, creds)
    oauth = None
    if options.oauth is not None:
        o = options.oauth
        names = "token_endpoint client_id client_secret token auth_method scope"
        oauth = OAuth2Settings(**same_named(o, names))
    return options, oauth


def _token_saver(built: SourceConnector) -> TokenSaver | None:
    """Store every refreshed token at once: a rotated refresh token is the only one that works."""
    source_id, raw = built.source_id, built.raw
    if source_id is None:
        return None

    async def store(token: dict[str, Any]) -> None:
        merged = built.cls.merge_token(raw, token)
        raw.clear()
        raw.update(merged)
        register_secrets(secrets_in(merged))
        await asyncio.to_thread(_store_credentials, source_id, dict(merged))

    return store


def client_arguments(built: SourceConnector, on_token: TokenSaver | None) -> dict[str, Any]:
    """What `build_client` gets for a source: its connector's `HttpOptions`, OAuth included."""
    options, oauth = _oauth(built.cls, built.config, built.credentials)
    return {
        "source_name": built.name,
        "secrets": secrets_in(built.raw),
        "base_url": options.base_url,
        "rate_per_second": options.rate_per_second,
        "max_concurrency": options.max_concurrency,
        "allow_private": get_settings().allow_private_networks,
        "oauth": oauth,
        "on_token_update": on_token if oauth is not None else None,
        "headers": options.headers,
        "retry_after": options.retry_after,
        "pace": options.pace,
        "max_hold": options.max_hold,
        "credential_origins": options.credential_origins,
        "other_origins": options.other_origins,
    }


@asynccontextmanager
async def open_connector(
    source: DataSource | SourceConnector,
    *,
    today: date | None = None,
    on_token: TokenSaver | None = None,
    **client_overrides: Any,
) -> AsyncIterator[Connector[Any, Any]]:
    """The source's connector on its own client, closed when the block ends.

    ``today`` defaults to the source's today by the engine's clock. A refreshed token goes to
    ``on_token``, or else is stored encrypted on the source. ``client_overrides`` replace the
    matching `build_client` arguments (tests: a mock transport, a local server).
    """
    built = source if isinstance(source, SourceConnector) else connector_for(source)
    arguments = client_arguments(built, on_token or _token_saver(built))
    arguments.update(client_overrides)
    async with build_client(**arguments) as http:
        yield built.cls(
            built.config,
            built.credentials,
            http,
            timezone=built.timezone,
            today=today if today is not None else today_in(built.timezone),
        )


def http_stats(connector: Connector[Any, Any]) -> HttpStats:
    """What the connector's client has sent so far (an `open_connector` client counts)."""
    http = connector.http
    return http.stats if isinstance(http, KrsyncClient) else HttpStats()


def _store_credentials(source_id: int, credentials: dict[str, Any]) -> None:
    with get_sessionmaker()() as session, session.begin():
        source = session.get(DataSource, source_id)
        if source is not None:
            source.credentials_encrypted = encrypt_credentials(credentials)
