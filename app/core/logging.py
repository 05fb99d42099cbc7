"""Logging: text or JSON lines, and never a secret in either."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from app.core.redact import RedactingFilter, redact
from app.core.settings import Settings

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line, extras (source_id, run_id) included, redacted once more."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                body[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(body, default=str))


def configure_logging(settings: Settings) -> None:
    """Idempotent: the CLI and the app both call it."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_krsync", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._krsync = True  # type: ignore[attr-defined]
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.setLevel(settings.log_level.upper())
    # One line per connector request drowns the sync's own lines; their failures surface anyway.
    for noisy in ("httpx", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    for existing in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in existing.filters):
            existing.addFilter(RedactingFilter())


def _krsync_handler() -> logging.StreamHandler[TextIO] | None:
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_krsync", False) and isinstance(handler, logging.StreamHandler):
            return handler
    return None


@contextmanager
def log_stream(wrap: Callable[[TextIO], TextIO]) -> Iterator[None]:
    """For a while, krsync's log lines go through `wrap(stream)` (the CLI's live progress bars)."""
    handler = _krsync_handler()
    if handler is None:
        yield
        return
    original = handler.stream
    handler.setStream(wrap(original))
    try:
        yield
    finally:
        handler.setStream(original)
