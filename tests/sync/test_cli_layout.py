"""The `krsync` command read in an 80-column terminal: help, tables and logs under the bars."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import pytest
import typer
from rich.console import Console
from sync_factories import freeze_today, make_kr, make_mapping, make_source
from typer.testing import CliRunner, Result

from app import cli as cli_module
from app.cli import cli
from app.core.logging import configure_logging
from app.core.settings import get_settings
from connectors.base import FetchResult, MetricQuery, RetriableError, Window
from connectors.demo import DemoConnector

runner = CliRunner()
COLUMNS = 80
#: Long, as teams name their sources; each must stay on one line of a table.
NAMES = ("website-analytics-eu", "crm-pipeline-hubspot", "newsletter")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _krsync(*args: str) -> Result:
    return runner.invoke(cli, list(args), env={"COLUMNS": str(COLUMNS)})


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path; typer builds on its own copy of click, so groups are duck-typed."""
    yield path
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name)


def _fits(text: str) -> None:
    wide = [line for line in text.splitlines() if len(line) > COLUMNS]
    assert not wide, wide


def _sources(timezone: str = "America/New_York") -> list[int]:
    ids = []
    for seed, name in enumerate(NAMES):
        source = make_source(
            name, schedule="30 2 * * 1-5", timezone=timezone, config={"seed": seed}
        )
        make_mapping(make_kr(title=name), source, "sessions")
        ids.append(source)
    return ids


def _row_of(table: str, name: str) -> str:
    [row] = [line for line in table.splitlines() if line.strip().startswith(f"{name} ")]
    return row


# --- help --------------------------------------------------------------------------------------


def test_every_help_names_a_value_only_where_one_is_taken() -> None:
    """typer 0.29's rich panels printed `--help <bool>`, as if a flag took a value."""
    paths = list(_commands(typer.main.get_command(cli)))
    assert ("keys", "list") in paths
    for path in paths:
        result = _krsync(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, path
        assert re.search(r"^\s+--help\s+Show this message and exit\.$", result.output, re.M), (
            path,
            result.output,
        )
        _fits(result.output)
    sync_help = _krsync("sync", "--help").output
    assert re.search(r"^\s+--all\s+Every enabled source", sync_help, re.M), sync_help
    assert "-s, --source NAME" in sync_help
    assert "--from YYYY-MM-DD" in sync_help
    demo_help = _krsync("demo", "--help").output
    assert "--serve / --no-serve" in demo_help


# --- tables ------------------------------------------------------------------------------------


def test_the_sync_summary_keeps_names_whole_and_errors_below(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_today(monkeypatch, date(2026, 8, 16))
    _sources(timezone="UTC")
    original = DemoConnector.fetch
    failing = NAMES[1]

    async def flaky(self: DemoConnector, queries: Sequence[MetricQuery], window: Window) -> Any:
        if self.config.seed == NAMES.index(failing):
            raise RetriableError("the platform is down for maintenance until 14:00 UTC")
        result: FetchResult = await original(self, queries, window)
        return result

    monkeypatch.setattr(DemoConnector, "fetch", flaky)

    result = _krsync("sync")

    assert result.exit_code == 1
    table, below = result.stdout.split(_row_of(result.stdout, max(NAMES)), 1)
    _fits(table)
    for name in NAMES:
        assert "succeeded" in _row_of(result.stdout, name) or name == failing
    assert "failed" in _row_of(result.stdout, failing)
    assert "maintenance" not in table
    # One line, as a log wants it; a terminal wraps it, the table's narrow last column can't.
    [note] = [line for line in below.splitlines() if line.strip()]
    assert note.startswith(
        f"{failing}: temporary failure: the platform is down for maintenance until 14:00 UTC"
    )


def test_sources_list_keeps_names_and_timezones_whole(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_today(monkeypatch, date(2026, 8, 16))
    _sources()
    assert _krsync("sync", "-s", NAMES[0]).exit_code == 0

    result = _krsync("sources", "list")

    assert result.exit_code == 0, result.output
    _fits(result.stdout)
    for name in NAMES:
        row = _row_of(result.stdout, name)
        assert "30 2 * * 1-5" in row
    assert "America/New_York" in result.stdout
    assert "succeeded (cli," in _row_of(result.stdout, NAMES[0])
    assert "…" not in result.stdout


def test_connectors_list_hides_no_metric(db_url: str) -> None:
    result = _krsync("connectors", "list")
    assert result.exit_code == 0, result.output
    _fits(result.stdout)
    assert "…" not in result.stdout
    assert "newsletter_subscribers," in result.stdout


# --- logs under the live bars -----------------------------------------------------------------


def test_log_lines_print_above_the_live_bars(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A warning logged mid-sync goes through the bars' console, whole, on its own line."""
    freeze_today(monkeypatch, date(2026, 8, 16))
    _sources()
    original = DemoConnector.fetch
    said = "the platform asked us to slow down for 2 s"

    async def chatty(self: DemoConnector, queries: Sequence[MetricQuery], window: Window) -> Any:
        logging.getLogger("connectors.demo").warning(said)
        result: FetchResult = await original(self, queries, window)
        return result

    monkeypatch.setattr(DemoConnector, "fetch", chatty)
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=COLUMNS, soft_wrap=True)
    monkeypatch.setattr(cli_module, "console", terminal)
    configure_logging(get_settings())
    [handler] = [h for h in logging.getLogger().handlers if getattr(h, "_krsync", False)]
    assert isinstance(handler, logging.StreamHandler)
    underneath = io.StringIO()
    previous = handler.setStream(underneath)
    try:
        result = _krsync("sync")
    finally:
        handler.setStream(previous)

    assert result.exit_code == 0, result.output
    assert said not in underneath.getvalue()  # not written past the bars
    assert handler.stream is previous
    shown = [ANSI.sub("", line).strip() for line in ANSI.sub("\n", screen.getvalue()).split("\n")]
    logged = [line for line in shown if line.endswith(f"WARNING connectors.demo: {said}")]
    assert len(logged) == len(NAMES), shown
