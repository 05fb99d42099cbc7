"""`krsync notify run`: what is due goes out, then it exits with a line saying how it went, for
cron or a Kubernetes CronJob beside `krsync sync`."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from notify.receivers import channel, emit_events, free_port, receiver
from typer.testing import CliRunner

from app.cli import cli
from app.core.db import reset_engine

runner = CliRunner()


def test_notify_run_delivers_what_is_due_and_exits(client: TestClient) -> None:
    with receiver() as hook:
        channel(client, "slack", config={"url": f"{hook.url}/services/a"})
        channel(client, "teams", config={"url": f"http://127.0.0.1:{free_port()}/down"})
        emit_events(3)
        result = runner.invoke(cli, ["notify", "run", "--concurrency", "4"])
    assert result.exit_code == 0, result.output
    assert len(hook.requests) == 3
    assert "notifications: 3 delivered, 1 to retry later, 0 failed (4 attempts" in result.output
    again = runner.invoke(cli, ["notify", "run"])
    assert again.exit_code == 0
    assert "notifications: 0 delivered, 0 to retry later, 0 failed" in again.output


def test_notify_run_says_when_the_database_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    reset_engine()
    result = runner.invoke(cli, ["notify", "run"])
    assert result.exit_code == 1
    assert "no krsync tables yet: run `krsync migrate` first" in result.output
