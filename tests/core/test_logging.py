"""Logs as JSON lines with ``KRSYNC_LOG_FORMAT=json``: each sync line names its source and run,
and no line carries a secret, even when the platform echoes one back (SPEC section 4).
"""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest
import respx
import stamina
from sync_factories import freeze_today, make_kr, make_mapping, make_source, runs

from app.core.db import session_scope
from app.core.logging import JsonFormatter, configure_logging
from app.core.redact import RedactingFilter
from app.core.settings import get_settings
from app.core.vault import encrypt_credentials
from app.models import DataSource
from app.sync.engine import sync_now
from tests.connectors.acme import ACME_URL, configure_engine
from tests.connectors.acme_fake import FakeAcme, day_of_month

CANARY = "canary-5d1c-l0g-s3cr3t"


@pytest.fixture(autouse=True)
def root_logger(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    """configure_logging changes the root logger; everything it touched is put back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    saved = [(h, list(h.filters), h.formatter, getattr(h, "stream", None)) for h in handlers]
    yield root
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    for handler, filters, formatter, stream in saved:
        handler.filters[:] = filters
        handler.setFormatter(formatter)
        if isinstance(handler, logging.StreamHandler) and stream is not None:
            handler.setStream(stream)
    root.setLevel(level)
    get_settings.cache_clear()


def configure(monkeypatch: pytest.MonkeyPatch, fmt: str, level: str = "INFO") -> logging.Handler:
    """Configure as the app does; krsync's handler writes to a StringIO from now on."""
    monkeypatch.setenv("KRSYNC_LOG_FORMAT", fmt)
    monkeypatch.setenv("KRSYNC_LOG_LEVEL", level)
    get_settings.cache_clear()
    configure_logging(get_settings())
    [handler] = [h for h in logging.getLogger().handlers if getattr(h, "_krsync", False)]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(io.StringIO())
    return handler


def lines(handler: logging.Handler) -> list[dict[str, Any]]:
    assert isinstance(handler, logging.StreamHandler)
    text = handler.stream.getvalue()
    parsed = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(p, dict) for p in parsed)
    return parsed


# --- configuration ---------------------------------------------------------------------------


def test_json_format_installs_one_redacting_json_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure(monkeypatch, "json")
    handler = configure(monkeypatch, "json")  # idempotent: the app and the CLI both call it

    assert [h for h in logging.getLogger().handlers if getattr(h, "_krsync", False)] == [handler]
    assert isinstance(handler.formatter, JsonFormatter)
    assert any(isinstance(f, RedactingFilter) for f in handler.filters)
    logging.getLogger("krsync.test").info("hello %s", "world", extra={"run_id": 7})
    [line] = lines(handler)
    assert line["message"] == "hello world"
    assert line["level"] == "info"
    assert line["logger"] == "krsync.test"
    assert line["run_id"] == 7


def test_text_format_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    handler = configure(monkeypatch, "text")

    assert not isinstance(handler.formatter, JsonFormatter)


def test_the_app_and_the_cli_configure_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.cli import main
    from app.main import create_app

    monkeypatch.setenv("KRSYNC_LOG_FORMAT", "json")
    get_settings.cache_clear()
    create_app()
    [handler] = [h for h in logging.getLogger().handlers if getattr(h, "_krsync", False)]
    assert isinstance(handler.formatter, JsonFormatter)

    handler.setFormatter(None)
    monkeypatch.setattr(sys, "argv", ["krsync", "--help"])
    with pytest.raises(SystemExit):
        main()
    assert isinstance(handler.formatter, JsonFormatter)


# --- sync lines ------------------------------------------------------------------------------


@pytest.fixture
def fake(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAcme]:
    """Acme that accepts only the canary as its API key."""
    configure_engine(monkeypatch)
    freeze_today(monkeypatch, date(2026, 7, 11))
    acme = FakeAcme(ACME_URL, api_keys=(CANARY,), default=day_of_month)
    with stamina.set_testing(True, attempts=100, cap=True), respx.mock() as router:
        acme.install(router)
        yield acme


def canary_source() -> int:
    src = make_source(
        name="acme canary",
        connector="acme",
        config={"base_url": ACME_URL},
        credentials_encrypted=encrypt_credentials({"api_key": CANARY}),
    )
    make_mapping(make_kr(), src, "signups")
    return src


def sync(source_id: int) -> int:
    with session_scope() as s:
        src = s.get(DataSource, source_id)
        assert src is not None
        return sync_now(s, src, trigger="cli")


def test_sync_lines_carry_source_and_run_and_never_the_secret(
    fake: FakeAcme, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = configure(monkeypatch, "json", level="DEBUG")
    src = canary_source()

    ok = sync(src)
    # The platform echoes the key in a 500's body, every attempt, until the run gives up...
    fake.fail("metrics", *[httpx.Response(500, json={"error": f"bad key {CANARY}"})] * 10)
    down = sync(src)
    fake.faults["metrics"].clear()
    # ...then refuses it, quoting it back.
    fake.fail("metrics", httpx.Response(401, json={"error": f"invalid_token {CANARY}"}))
    refused = sync(src)

    assert [r.status for r in runs(src)] == ["succeeded", "failed", "failed"]
    assert CANARY not in handler.stream.getvalue()  # type: ignore[attr-defined]
    records = lines(handler)
    sync_lines = [r for r in records if r["logger"] == "krsync.sync"]
    assert [(r["level"], r["run_id"]) for r in sync_lines] == [
        ("info", ok),
        ("warning", down),
        ("warning", refused),
    ]
    assert all(r["source_id"] == src and r["source"] == "acme canary" for r in sync_lines)
    assert sync_lines[0]["message"].startswith("sync succeeded")
    assert "temporary failure" in sync_lines[1]["message"]
    assert "authentication failed" in sync_lines[2]["message"]
    # the HTTP layer's own lines (retries, requests) went through the same filter
    assert any(r["logger"] == "stamina" for r in records)


def test_a_run_that_fails_before_fetching_still_names_its_source_id_and_run(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = configure(monkeypatch, "json")
    src = make_source(name="orphan", connector="uninstalled")
    make_mapping(make_kr(), src, "sessions")

    run_id = sync(src)

    [line] = [r for r in lines(handler) if r["logger"] == "krsync.sync"]
    assert line["level"] == "warning"
    assert (line["source_id"], line["run_id"]) == (src, run_id)
    assert "configuration error" in line["message"]
