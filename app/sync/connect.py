"""Building a connector for a source: its class, validated config and credentials, its client.

Runs, checks, previews and connector tests all build it this way, so a connector sees the same
HTTP client (rate limits, OAuth refresh, redaction) wherever it is called from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from app.core.db import get_sessionmaker
from app.core.errors import reason
from app.core.http import (
    OAuth2Settings,
    build_client,
)
from app.core.redact import register_secrets, secrets_in
from app.core.secrets import SecretKeyError
from app.core.settings import get_settings
from app.core.vault import decrypt_credentials, encrypt_credentials
from app.models import DataSource
from app.sync.errors import SourceConfigError
from connectors.base import (
    Connector,
)
from connectors.registry import UnknownConnectorError, get_connector


def _connector_parts(
    source: DataSource,
) -> tuple[type[Connector[Any, Any]], BaseModel, dict[str, Any], BaseModel]:
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
    return cls, config, raw, credentials


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
        oauth = OAuth2Settings(
            token_endpoint=o.token_endpoint,
            client_id=o.client_id,
            client_secret=o.client_secret,
            token=o.token,
            auth_method=o.auth_method,
            scope=o.scope,
        )
    return options, oauth


def _token_saver(
    source_id: int, cls: type[Connector[Any, Any]], raw: dict[str, Any]
) -> Callable[[dict[str, Any]], Awaitable[None]]:
    """Store every refreshed token at once: a rotated refresh token is the only one that works."""

    async def store(token: dict[str, Any]) -> None:
        merged = cls.merge_token(raw, token)
        raw.clear()
        raw.update(merged)
        register_secrets(secrets_in(merged))
        await asyncio.to_thread(_store_credentials, source_id, dict(merged))

    return store


def client_arguments(
    source_name: str,
    cls: type[Connector[Any, Any]],
    config: BaseModel,
    credentials: BaseModel,
    raw: dict[str, Any],
    on_token: Callable[[dict[str, Any]], Awaitable[None]] | None,
) -> dict[str, Any]:
    """What `build_client` gets for a source: its connector's `HttpOptions`, OAuth included.

    Public so connector tests build their clients exactly as a sync does.
    """
    options, oauth = _oauth(cls, config, credentials)
    return {
        "source_name": source_name,
        "secrets": secrets_in(raw),
        "base_url": options.base_url,
        "rate_per_second": options.rate_per_second,
        "max_concurrency": options.max_concurrency,
        "allow_private": get_settings().allow_private_networks,
        "oauth": oauth,
        "on_token_update": on_token if oauth is not None else None,
        "headers": options.headers,
        "retry_after": options.retry_after,
        "credential_origins": options.credential_origins,
        "other_origins": options.other_origins,
    }


def _client(
    source_name: str,
    cls: type[Connector[Any, Any]],
    config: BaseModel,
    credentials: BaseModel,
    raw: dict[str, Any],
    on_token: Callable[[dict[str, Any]], Awaitable[None]] | None,
) -> Any:
    return build_client(**client_arguments(source_name, cls, config, credentials, raw, on_token))


def _store_credentials(source_id: int, credentials: dict[str, Any]) -> None:
    with get_sessionmaker()() as session, session.begin():
        source = session.get(DataSource, source_id)
        if source is not None:
            source.credentials_encrypted = encrypt_credentials(credentials)
