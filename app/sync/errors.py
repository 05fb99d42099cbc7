"""What a failed sync, check or preview says: one line a person can act on, secrets masked."""

from __future__ import annotations

from app.core.errors import DomainError
from app.core.http import (
    HttpLayerError,
    OAuthRefreshError,
    PrivateNetworkError,
)
from app.core.redact import redact
from connectors.base import (
    ConnectorAuthError,
    ConnectorConfigError,
    ConnectorError,
    RateLimited,
    RetriableError,
    TokenRefreshError,
    excerpt,
)


class UpstreamError(DomainError, status_code=502, code="upstream_error"):
    """The platform failed us (down, rate limited): not the caller's fault, so a 502."""


class SourceConfigError(Exception):
    """The source can't be used as stored (unknown connector, bad config, lost key)."""


def classify(exc: BaseException) -> str:
    """One line a person can act on, with every known secret masked."""
    if isinstance(exc, OAuthRefreshError) and exc.transient:
        text = f"temporary failure: {_message(exc)} (the next run tries again)"
    elif isinstance(exc, ConnectorAuthError | OAuthRefreshError):
        text = f"authentication failed: {_message(exc)} (fix the source's credentials)"
    elif isinstance(exc, RateLimited):
        text = f"rate limited: {_message(exc)} (the next run tries again)"
    elif isinstance(exc, ConnectorConfigError | SourceConfigError | PrivateNetworkError):
        text = f"configuration error: {_message(exc)} (fix the source; not retried)"
    elif isinstance(exc, RetriableError | HttpLayerError):
        text = f"temporary failure: {_message(exc)} (the next run tries again)"
    elif isinstance(exc, ConnectorError):
        text = f"connector error: {_message(exc)}"
    else:
        text = f"internal error: {type(exc).__name__}: {exc}"
    return excerpt(text, redact, 2000)


def is_auth_failure(exc: BaseException) -> bool:
    """The platform refused the credentials (or their refresh): a person must reconnect."""
    if isinstance(exc, TokenRefreshError) and exc.transient:
        return False  # the token endpoint was down: the next run may get through as it is
    return isinstance(exc, ConnectorAuthError)


def _message(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc)
