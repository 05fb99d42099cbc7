"""`krsync review CYCLE`: the findings of a cycle from a shell, or its whole review."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient
from review.seed import Seeded, seed
from typer.testing import CliRunner, Result

from app.cli import cli
from factories import cycle

runner = CliRunner()


def _krsync(*args: str) -> Result:
    return runner.invoke(cli, list(args), env={"COLUMNS": "200"})


@pytest.fixture
def ws(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Seeded:
    return seed(client, monkeypatch)


def test_the_findings_are_listed_by_id_or_name(client: TestClient, ws: Seeded) -> None:
    for ref in (str(ws.cycle), "2026-Q3"):
        result = _krsync("review", ref, "--as-of", "2026-10-15")
        assert result.exit_code == 0, result.output
        out = result.stdout
        assert "task_not_outcome" in out
        assert "'Launch the new website' names an activity: what outcome shows it worked?" in out
        assert "no_key_results" in out
        assert "Speak at two events" in out
        assert "2026-Q3: 7 finding(s), 1 error(s), 6 warning(s)" in out


def test_format_writes_the_review_to_stdout(client: TestClient, ws: Seeded) -> None:
    md = _krsync("review", "2026-Q3", "--format", "md", "--as-of", "2026-10-15")
    assert md.exit_code == 0, md.output
    api = client.get(f"/api/v1/cycles/{ws.cycle}/review?format=md&as_of=2026-10-15").text
    assert md.stdout == api
    as_csv = _krsync("review", str(ws.cycle), "--format", "csv", "--as-of", "2026-10-15")
    assert as_csv.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {r["key_result"] for r in rows if r["key_result"]} == {
        "3,000 new followers",
        "500 newsletter sign-ups",
        "Pushed revenue",
        "Launch the new website",
        "40 press mentions",
    }


def test_a_clean_cycle_and_wrong_calls(client: TestClient) -> None:
    cycle(client, name="Empty")
    clean = _krsync("review", "Empty")
    assert clean.exit_code == 0
    assert "no findings" in clean.stdout
    unknown = _krsync("review", "2031-Q1")
    assert unknown.exit_code == 2
    assert "no cycle '2031-Q1' (cycles: Empty)" in unknown.stderr
    assert _krsync("review", "Empty", "--format", "pdf").exit_code == 2
