"""`krsync demo` on a bare machine: no DATABASE_URL, no admin key, an empty directory."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sync_factories import freeze_today
from typer.testing import CliRunner, Result

from app.cli import cli
from app.core import clock
from app.core.db import reset_engine, session_scope
from app.core.settings import get_settings
from app.demo import ADMIN_KEY_FILE, SECRET_KEY_FILE, quarter
from app.models import CheckIn, Cycle, DataSource, KeyResult, Mapping, Objective, SyncRun

TODAY = date(2026, 8, 16)
DEMO_SOURCES = {"demo-web", "demo-crm", "demo-social", "demo-email"}
ENV = (
    "DATABASE_URL",
    "KRSYNC_DATABASE_URL",
    "KRSYNC_ADMIN_KEY",
    "KRSYNC_SECRET_KEY",
    "KRSYNC_RUN_SCHEDULER",
)

runner = CliRunner()


@pytest.fixture
def bare(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No configuration at all; whatever `krsync demo` puts in os.environ is undone after."""
    for name in ENV:
        # setenv first, so the teardown also removes what the command sets.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    reset_engine()
    yield tmp_path / "demo"
    reset_engine()


def _demo(data_dir: Path, *more: str) -> Result:
    return runner.invoke(cli, ["demo", "--no-serve", "--data-dir", str(data_dir), *more])


def _counts() -> dict[str, int]:
    with session_scope() as s:
        return {
            m.__name__: s.scalar(select(func.count()).select_from(m)) or 0
            for m in (Cycle, Objective, KeyResult, DataSource, Mapping, CheckIn)
        }


def _dashboard(key: str, as_of: date = TODAY) -> dict[str, Any]:
    from app.main import app

    with TestClient(app) as client:
        response = client.get(
            "/api/v1/dashboard",
            params={"as_of": as_of.isoformat()},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_quarter_of_a_day() -> None:
    assert quarter(date(2026, 8, 16)) == ("2026-Q3", date(2026, 7, 1), date(2026, 9, 30))
    assert quarter(date(2026, 12, 31)) == ("2026-Q4", date(2026, 10, 1), date(2026, 12, 31))
    assert quarter(date(2027, 1, 1)) == ("2027-Q1", date(2027, 1, 1), date(2027, 3, 31))


def test_demo_from_nothing_then_again(bare: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_today(monkeypatch, TODAY)

    first = _demo(bare)

    assert first.exit_code == 0, first.output
    assert (bare / "krsync.db").is_file()
    key_file = bare / ADMIN_KEY_FILE
    key = key_file.read_text().strip()
    assert key in first.stdout
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    for url in ("http://127.0.0.1:8000/", "/docs", "/api/v1"):
        assert url in first.stdout

    with session_scope() as s:
        cycle = s.scalar(select(Cycle))
        assert cycle is not None
        assert (cycle.name, cycle.start_date, cycle.end_date) == (
            "Demo 2026-Q3",
            date(2026, 7, 1),
            date(2026, 9, 30),
        )
        sources = {src.name: src for src in s.scalars(select(DataSource))}
        assert set(sources) == DEMO_SOURCES
        assert all(src.connector == "demo" and src.enabled for src in sources.values())
        assert all(src.credentials_encrypted is None for src in sources.values())
        runs = list(s.scalars(select(SyncRun)))
        assert sorted(r.data_source_id for r in runs) == sorted(x.id for x in sources.values())
        assert {(r.trigger, r.status) for r in runs} == {("backfill", "succeeded")}
        # The relative target's baseline is the 92 days before the cycle: demo-web's backfill
        # reaches back to them.
        web_run = next(r for r in runs if r.data_source_id == sources["demo-web"].id)
        assert (web_run.window_from, web_run.window_to) == (date(2026, 3, 31), date(2026, 8, 15))
        assert s.scalar(select(func.count()).where(Mapping.backfill_pending.is_(True))) == 0

    board = _dashboard(key)
    assert board["cycle"]["name"] == "Demo 2026-Q3"
    objectives = board["objectives"]
    company = [o for o in objectives if o["level"] == "company"]
    assert [o["title"] for o in company] == ["Grow marketing-sourced revenue"]
    [rollup] = [k for k in company[0]["key_results"] if k["kind"] == "rollup"]
    teams = [o for o in objectives if o["level"] == "team"]
    assert len(teams) >= 3
    assert all(o["parent_key_result_id"] == rollup["id"] for o in teams)
    krs = [k for o in objectives for k in o["key_results"]]
    for obj in objectives:
        assert 1 <= len(obj["key_results"]) <= 3, obj["title"]
        assert obj["progress"]["progress"] is not None, obj["title"]
    for kr in krs:
        if kr["kind"] == "metric":
            assert kr["progress"]["progress"] is not None, kr["title"]
            assert kr["progress"]["status"] not in ("no_data", "no_baseline"), kr["title"]

    def one(**match: Any) -> dict[str, Any]:
        found = [k for k in krs if all(k[f] == v for f, v in match.items())]
        assert len(found) == 1, match
        return found[0]

    # Every kind of key result of SPEC section 2.
    each = one(group_rule="each")["progress"]
    assert {g["group"] for g in each["groups"]} == {"linkedin", "instagram", "youtube"}
    assert each["progress"] == min(g["progress"] for g in each["groups"])
    relative = one(target_change_pct=25)
    assert relative["progress"]["target_value"] > 0  # baseline found: last quarter was synced
    assert one(direction="decrease")["aggregation"] == "avg"
    assert one(direction="at_most")["progress"]["current_value"] is not None
    assert one(kind="milestone")["progress"]["status"] in ("on_track", "done")
    manual = one(direction="at_least", aggregation="last")
    assert manual["progress"]["current_value"] == 2  # two check-ins so far, the last one counts
    assert any(k["aggregation"] == "last" and k["kind"] == "metric" for k in krs)
    assert sum(k["aggregation"] == "sum" for k in krs) >= 2
    ratios = [k for k in krs if k["aggregation"] == "ratio"]
    assert ratios
    assert all(k["progress"]["current_value"] is not None for k in ratios)
    with session_scope() as s:
        # One ratio divides the CRM's deals by the website's sessions: two sources.
        spread = [
            len(
                set(
                    s.scalars(
                        select(Mapping.data_source_id).where(Mapping.key_result_id == k["id"])
                    )
                )
            )
            for k in ratios
        ]
        assert 2 in spread
    before = _counts()

    second = _demo(bare)

    assert second.exit_code == 0, second.output
    assert "reusing" in second.output
    assert _counts() == before
    assert key in second.stdout  # the same key, read back from its file
    with session_scope() as s:
        reruns = list(s.scalars(select(SyncRun).order_by(SyncRun.id)))[len(DEMO_SOURCES) :]
        assert len(reruns) == len(DEMO_SOURCES)
        assert all(r.status == "succeeded" for r in reruns)
        # Nothing pending any more: the rerun fetches its incremental window, not the quarter:
        # with lookback 0, the demo's 2 settle days (08-14 and 08-15) are read again.
        assert {(r.trigger, r.window_from) for r in reruns} == {("cli", date(2026, 8, 14))}


def test_a_new_quarter_gets_its_own_cycle_on_the_same_sources(
    bare: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_today(monkeypatch, TODAY)
    assert _demo(bare).exit_code == 0
    first = _counts()
    freeze_today(monkeypatch, date(2026, 10, 20))

    result = _demo(bare)

    assert result.exit_code == 0, result.output
    after = _counts()
    assert after["Cycle"] == 2
    assert after["DataSource"] == first["DataSource"]
    assert after["Objective"] == 2 * first["Objective"]
    assert after["Mapping"] == 2 * first["Mapping"]
    with session_scope() as s:
        runs = list(s.scalars(select(SyncRun).order_by(SyncRun.id)))[len(DEMO_SOURCES) :]
        assert {(r.trigger, r.status) for r in runs} == {("backfill", "succeeded")}
    board = _dashboard((bare / ADMIN_KEY_FILE).read_text().strip(), date(2026, 10, 20))
    assert board["cycle"]["name"] == "Demo 2026-Q4"
    relative = next(
        k for o in board["objectives"] for k in o["key_results"] if k["target_change_pct"]
    )
    assert relative["progress"]["status"] != "no_baseline"


def test_demo_uses_the_configured_admin_key(bare: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_today(monkeypatch, TODAY)
    monkeypatch.setenv("KRSYNC_ADMIN_KEY", "my-own-admin-key-123")

    result = _demo(bare)

    assert result.exit_code == 0, result.output
    assert "my-own-admin-key-123" in result.stdout
    assert not (bare / ADMIN_KEY_FILE).exists()
    assert _dashboard("my-own-admin-key-123")["objectives"]


def test_demo_refuses_a_foreign_source_with_a_demo_name(
    bare: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_today(monkeypatch, TODAY)
    assert _demo(bare).exit_code == 0
    with session_scope() as s:
        src = s.scalar(select(DataSource).where(DataSource.name == "demo-crm"))
        assert src is not None
        src.connector = "hubspot"

    result = _demo(bare)

    assert result.exit_code == 1
    assert "demo-crm" in result.stderr
    assert "Traceback" not in result.output


def test_a_push_source_can_be_tried_in_the_demo(
    bare: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo keeps a secret key beside its admin key, so credentials can be stored."""
    freeze_today(monkeypatch, TODAY)
    first = _demo(bare)
    assert first.exit_code == 0, first.output
    secret_file = bare / SECRET_KEY_FILE
    secret_key = secret_file.read_text().strip()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert secret_key not in first.output  # the file is named, the key never shown
    assert SECRET_KEY_FILE in first.stdout
    admin = {"Authorization": f"Bearer {(bare / ADMIN_KEY_FILE).read_text().strip()}"}
    push_secret = "shared-with-the-warehouse-0123456789"

    from app.main import app

    with TestClient(app) as client:
        created = client.post(
            "/api/v1/data-sources",
            json={"name": "warehouse", "connector": "push", "credentials": {"secret": push_secret}},
            headers=admin,
        )
    assert created.status_code == 201, created.text
    assert created.json()["credentials_set"] is True
    with session_scope() as s:
        stored = s.scalar(
            select(DataSource.credentials_encrypted).where(DataSource.name == "warehouse")
        )
    assert stored
    assert push_secret not in stored

    # A later run, in a new shell: the key is read back from its file, so the secret still opens.
    monkeypatch.delenv("KRSYNC_SECRET_KEY")
    get_settings.cache_clear()
    second = _demo(bare)
    assert second.exit_code == 0, second.output
    assert secret_file.read_text().strip() == secret_key
    body = json.dumps([{"date": "2026-08-15", "metric": "orders", "value": 12}]).encode()
    stamp = str(int(clock.utcnow().timestamp()))  # the push's clock, frozen as the demo's
    digest = hmac.new(push_secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    with TestClient(app) as client:
        pushed = client.post(
            f"/api/v1/push/{created.json()['id']}",
            content=body,
            headers={
                "X-Krsync-Timestamp": stamp,
                "X-Krsync-Signature": f"sha256={digest.hexdigest()}",
                "Content-Type": "application/json",
            },
        )
    assert pushed.status_code == 202, pushed.text


def test_demo_uses_the_configured_secret_key(bare: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_today(monkeypatch, TODAY)
    monkeypatch.setenv("KRSYNC_SECRET_KEY", "my-own-fernet-key-is-not-checked-here")
    result = _demo(bare)
    assert result.exit_code == 0, result.output
    assert not (bare / SECRET_KEY_FILE).exists()
    assert os.environ["KRSYNC_SECRET_KEY"] == "my-own-fernet-key-is-not-checked-here"


def test_a_busy_port_fails_before_seeding(bare: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: served.append(kw))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = runner.invoke(cli, ["demo", "--port", str(port), "--data-dir", str(bare)])
        took = time.monotonic() - started
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: can't listen on 127.0.0.1:{port}: ")
    assert "another --port" in line
    assert "Traceback" not in result.output
    assert served == []
    assert not bare.exists()  # nothing seeded, no database made
    assert took < 5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_demo_serves_the_api_and_stops_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    krsync = Path(sys.executable).with_name("krsync")
    process = subprocess.Popen(
        [str(krsync), "demo", "--port", str(port), "--data-dir", str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the demo did not get ready within 60 s"
            time.sleep(0.2)
        key = (tmp_path / ADMIN_KEY_FILE).read_text().strip()
        response = httpx.get(
            f"{base}/api/v1/dashboard", headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
        assert response.status_code == 200, response.text
        board = response.json()
        assert len(board["objectives"]) == 5
        assert httpx.get(f"{base}/api/v1/dashboard", timeout=10).status_code == 401

        # The page the demo serves shows the API's figures: every bar carries its progress.
        with httpx.Client(base_url=base, timeout=10) as browser:
            login = browser.post("/login", data={"key": key})
            assert login.status_code in (200, 303), login.text
            page = browser.get("/")
        assert page.status_code == 200
        fill = r'class="bar-fill[^"]*" data-kr-id="(\d+)" data-progress="([^"]*)"'
        bars = dict(re.findall(fill, page.text))
        api = {
            str(kr["id"]): kr["progress"]["progress"]
            for obj in board["objectives"]
            for kr in obj["key_results"]
        }
        assert bars.keys() == api.keys()
        for kr_id, progress in api.items():
            shown = bars[kr_id]
            assert (float(shown) if shown else None) == progress, kr_id
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    assert process.returncode == 0, output
    assert re.search(r"scheduler\s+on", output), output
