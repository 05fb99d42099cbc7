"""`krsync sync`, `krsync sources`, `krsync keys generate-secret` as cron and people call them."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sync_factories import freeze_today, make_kr, make_mapping, make_source, observations, runs
from typer.testing import CliRunner, Result

from app.cli import cli
from app.core.db import reset_engine
from app.sync.scheduler import RUN_SCHEDULER_ENV
from connectors.base import (
    CheckResult,
    ConnectorAuthError,
    FetchResult,
    MetricQuery,
    RetriableError,
    Window,
)
from connectors.demo import DemoConnector

runner = CliRunner()


def _krsync(*args: str) -> Result:
    # A wide terminal, whatever runs the tests: tests/sync/test_cli_layout.py covers 80 columns.
    return runner.invoke(cli, list(args), env={"COLUMNS": "200"})


def _one_line_error(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def _two_sources() -> tuple[int, int, int, int]:
    web_kr, social_kr = make_kr(title="sessions"), make_kr(title="signups")
    web = make_source("web")
    social = make_source("social", config={"seed": 3}, timezone="Europe/Paris")
    make_mapping(web_kr, web, "sessions")
    make_mapping(social_kr, social, "signups")
    return web, social, web_kr, social_kr


# --- sync --------------------------------------------------------------------------------------


def test_sync_runs_every_enabled_source_and_prints_a_summary(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_today(monkeypatch, date(2026, 8, 16))
    web, social, web_kr, social_kr = _two_sources()
    off = make_source("off", enabled=False)

    result = _krsync("sync")
    assert result.exit_code == 0, result.output
    table = result.stdout
    for name in ("web", "social"):
        [row] = [line for line in table.splitlines() if line.strip().startswith(f"{name} ")]
        assert "succeeded" in row
        assert "2026-07-01 → 08-15" in row
        assert " 46 " in row  # observations written: the cycle so far
    assert "off" not in table
    assert runs(off) == []
    for src in (web, social):
        [run] = runs(src)
        assert (run.trigger, run.status) == ("cli", "succeeded")
    assert len(observations(web_kr)) == len(observations(social_kr)) == 46


def test_sync_of_named_sources_only(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_today(monkeypatch, date(2026, 8, 16))
    web, social, _, _ = _two_sources()
    result = _krsync("sync", "--source", "social")
    assert result.exit_code == 0, result.output
    assert len(runs(social)) == 1
    assert runs(web) == []


def test_an_unknown_source_is_one_line_listing_the_known_ones(db_url: str) -> None:
    _two_sources()
    result = _krsync("sync", "--source", "web", "--source", "nope")
    assert result.exit_code == 2
    assert (
        _one_line_error(result) == "error: unknown data source 'nope'; known sources: social, web"
    )


def test_a_disabled_source_named_is_refused(db_url: str) -> None:
    make_source("off", enabled=False)
    result = _krsync("sync", "-s", "off")
    assert result.exit_code == 2
    assert "disabled" in _one_line_error(result)


def test_a_failing_source_fails_the_command_but_not_the_others(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_today(monkeypatch, date(2026, 8, 16))
    web, social, web_kr, _ = _two_sources()
    original = DemoConnector.fetch

    async def flaky(self: DemoConnector, queries: Sequence[MetricQuery], window: Window) -> Any:
        if self.config.seed == 3:
            raise RetriableError("platform down")
        result: FetchResult = await original(self, queries, window)
        return result

    monkeypatch.setattr(DemoConnector, "fetch", flaky)
    result = _krsync("sync")
    assert result.exit_code == 1
    [row] = [line for line in result.stdout.splitlines() if line.strip().startswith("social ")]
    assert "failed" in row
    assert "temporary failure: platform down" in row
    assert result.stderr.strip().splitlines()[-1] == "error: 1 of 2 source(s) failed"
    assert "Traceback" not in result.output
    assert runs(web)[0].status == "succeeded"
    assert runs(social)[0].status == "failed"
    assert len(observations(web_kr)) == 46


def test_a_window_fetches_exactly_those_days(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_today(monkeypatch, date(2026, 8, 16))
    kr_a, kr_b = make_kr(title="a"), make_kr(title="b")
    src = make_source()
    make_mapping(kr_a, src, "sessions", backfill_pending=False)
    make_mapping(kr_b, src, "signups", backfill_pending=False)

    result = _krsync("sync", "--from", "2026-07-01", "--to", "2026-07-03")
    assert result.exit_code == 0, result.output
    days = [date(2026, 7, 1), date(2026, 7, 2), date(2026, 7, 3)]
    assert [o[0] for o in observations(kr_a)] == days
    assert [o[0] for o in observations(kr_b)] == days
    [run] = runs(src)
    assert (run.window_from, run.window_to, run.observations_written) == (days[0], days[-1], 6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-07-01"], "--from and --to go together"),
        (["--to", "2026-07-01"], "--from and --to go together"),
        (["--from", "2026-07-03", "--to", "2026-07-01"], "--from 2026-07-03 is after --to"),
        (["--from", "2026-08-01", "--to", "2026-08-30"], "--to 2026-08-30 is after 2026-08-17"),
        (["--all", "--source", "demo"], "--all and --source exclude each other"),
    ],
)
def test_a_bad_window_is_a_clear_error_before_any_run(
    db_url: str, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    freeze_today(monkeypatch, date(2026, 8, 16))
    src = make_source()
    result = _krsync("sync", *args)
    assert result.exit_code == 2
    assert message in _one_line_error(result)
    assert runs(src) == []


@pytest.mark.parametrize("day", ["2026-7-1", "20260701", "2026-07-01T00:00:00", "0"])
@pytest.mark.parametrize("option", ["--from", "--to"])
def test_a_window_day_is_strict_iso(
    db_url: str, monkeypatch: pytest.MonkeyPatch, option: str, day: str
) -> None:
    """The API's rule: `YYYY-MM-DD` and nothing a lax parser would also take."""
    freeze_today(monkeypatch, date(2026, 8, 16))
    src = make_source()
    window = {"--from": "2026-07-01", "--to": "2026-07-03", option: day}
    result = _krsync("sync", *(part for pair in window.items() for part in pair))
    assert result.exit_code == 2
    said = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.stderr).split())
    assert f"Invalid value for '{option}': must be a date written YYYY-MM-DD" in said, said
    assert runs(src) == []


def test_nothing_to_sync_is_not_a_failure(db_url: str) -> None:
    result = _krsync("sync", "--all")
    assert result.exit_code == 0
    assert "no enabled data sources" in result.stderr


def test_an_unreachable_database_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/krsync?connect_timeout=2")
    reset_engine()
    try:
        for args in (["sync"], ["sources", "list"], ["sources", "check", "web"]):
            result = _krsync(*args)
            assert result.exit_code == 1, args
            assert "can't reach the database at 127.0.0.1:9/krsync" in _one_line_error(result)
        # a database that exists but was never migrated says what to do
        monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
        reset_engine()
        result = _krsync("sync")
        assert result.exit_code == 1
        assert "run `krsync migrate` first" in _one_line_error(result)
    finally:
        reset_engine()


# --- sources -----------------------------------------------------------------------------------


def test_sources_list_shows_schedules_and_the_last_run(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_today(monkeypatch, date(2026, 8, 16))
    _two_sources()
    make_source("nightly", schedule="30 2 * * 1-5", timezone="America/New_York", enabled=False)
    assert _krsync("sync", "-s", "web").exit_code == 0

    result = _krsync("sources", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    body = lines[next(i for i, line in enumerate(lines) if line.strip().startswith("─")) + 1 :]
    rows = {line.split()[0]: line for line in body if line.strip()}
    assert list(rows) == ["nightly", "social", "web"]
    assert "30 2 * * 1-5" in rows["nightly"]
    assert "America/New_York" in rows["nightly"]
    assert " disabled " in rows["nightly"]
    assert " healthy " in rows["web"]
    assert "succeeded (cli," in rows["web"]
    assert rows["social"].rstrip().endswith("never")


def test_sources_check_says_whether_the_source_works(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_source("web")
    ok = _krsync("sources", "check", "web")
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.strip() == "ok web: Demo data is always reachable"

    async def refused(self: DemoConnector) -> CheckResult:
        raise ConnectorAuthError("the API key was revoked")

    monkeypatch.setattr(DemoConnector, "check", refused)
    bad = _krsync("sources", "check", "web")
    assert bad.exit_code == 1
    line = _one_line_error(bad)
    # (the platform's words may come back masked: the redactor's known secrets are process-wide)
    assert line.startswith("error: web: authentication failed: ")
    assert line.endswith("(fix the source's credentials)")

    unknown = _krsync("sources", "check", "nope")
    assert unknown.exit_code == 2
    assert _one_line_error(unknown) == "error: unknown data source 'nope'; known sources: web"


# --- keys and serve ----------------------------------------------------------------------------


def test_generate_secret_prints_a_fernet_key() -> None:
    result = _krsync("keys", "generate-secret")
    assert result.exit_code == 0
    key = result.stdout.strip()
    assert Fernet(key.encode()).decrypt(Fernet(key.encode()).encrypt(b"x")) == b"x"
    assert "KRSYNC_SECRET_KEY" in result.stderr


def test_serve_migrates_sqlite_and_asks_the_app_for_a_scheduler(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import uvicorn
    from sqlalchemy import create_engine, inspect

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    monkeypatch.setenv(RUN_SCHEDULER_ENV, "0")  # so the flag `serve` sets is undone afterwards
    db = tmp_path / "fresh.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    reset_engine()
    try:
        result = _krsync("serve", "--port", "8123")
    finally:
        reset_engine()
    assert result.exit_code == 0, result.output
    log_config = calls[0].pop("log_config")
    assert log_config is uvicorn.config.LOGGING_CONFIG  # text logs: uvicorn's own format
    assert calls == [
        {
            "app": "app.main:app",
            "host": "127.0.0.1",
            "port": 8123,
            "workers": 1,
            "log_level": "info",
            # Forwarded headers are believed from KRSYNC_TRUSTED_PROXIES only, by the app.
            "proxy_headers": False,
        }
    ]
    assert os.environ[RUN_SCHEDULER_ENV] == "1"
    assert "http://127.0.0.1:8123/docs" in result.stderr
    engine = create_engine(f"sqlite:///{db}")
    try:
        assert "sync_runs" in inspect(engine).get_table_names()
    finally:
        engine.dispose()

    try:
        assert _krsync("serve", "--no-scheduler").exit_code == 0
    finally:
        reset_engine()
    assert os.environ[RUN_SCHEDULER_ENV] == "0"


def test_connectors_list_shows_the_installed_connectors() -> None:
    result = _krsync("connectors", "list")
    assert result.exit_code == 0, result.output
    assert "demo" in result.stdout
    assert "bounce_rate" in result.stdout
