"""A server starting up fails, at once, the runs a dead process left `running`, and only those.

Several replicas may share PostgreSQL and `krsync sync` may run beside a server, so a run whose
owner still lives (or can't be checked) stays as it is; the next run of its source remains the
safeguard for those.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sync_factories import make_kr, make_mapping, make_source, runs

from app.core import metrics, process
from app.core.clock import utcnow
from app.core.db import get_engine, reset_engine, session_scope
from app.core.process import ProcessId, is_alive, this_process
from app.models import SyncRun
from app.sync.locks import advisory_lock
from app.sync.orphans import INTERRUPTED, fail_orphaned_runs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def live_pid() -> Iterator[int]:
    """Another process of this machine that stays alive for the test."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield child.pid
    finally:
        child.kill()
        child.wait()


@pytest.fixture
def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def owner_of(pid: int) -> ProcessId:
    me = this_process()
    return ProcessId(me.host, pid, process._start_of(pid) or "", me.place)


def failed_count(connector: str = "demo") -> float:
    sample = metrics.registry.get_sample_value(
        "krsync_sync_runs_total", {"connector": connector, "status": "failed"}
    )
    return sample or 0.0


def add_run(source_id: int, owner: ProcessId | str | None, *, prepared: bool, age: int = 0) -> int:
    started = utcnow() - timedelta(seconds=age)
    with session_scope() as s:
        run = SyncRun(
            data_source_id=source_id,
            trigger="cli",
            status="running",
            started_at=started,
            prepared_at=started if prepared else None,
            owner=str(owner),
        )
        s.add(run)
        s.flush()
        if owner is None:  # a run from before owners were recorded (None takes the default)
            s.execute(update(SyncRun).where(SyncRun.id == run.id).values(owner=None))
        return run.id


def start_app() -> None:
    """What `krsync serve`, `krsync demo` and any ASGI server do first: the app's lifespan."""
    from app.main import app

    with TestClient(app):
        pass


# --- who owns a run ------------------------------------------------------------------------------


def test_a_process_id_reads_back_and_junk_reads_as_unknown() -> None:
    me = this_process()
    assert ProcessId.parse(str(me)) == me
    assert str(me).startswith(f"{me.host}:{os.getpid()}:")
    for junk in (None, "", "host", "host:pid:1@x", "host:12", ":12:1@x"):
        assert ProcessId.parse(junk) is None


def test_liveness_by_pid_and_start_time(live_pid: int, dead_pid: int) -> None:
    me = this_process()
    assert me.start, "this test needs Linux's /proc"
    assert me.place
    assert is_alive(me) is True
    assert is_alive(owner_of(live_pid)) is True
    assert is_alive(owner_of(dead_pid)) is False
    # The pid lives, but it was started after the owner: a reused pid, not the owner.
    assert is_alive(replace(owner_of(live_pid), start="1")) is False
    # Another machine or another container: this process can't look its pids up.
    assert is_alive(replace(owner_of(dead_pid), host="elsewhere")) is None
    assert is_alive(replace(owner_of(dead_pid), place=f"{me.boot}/1")) is None
    # On SQLite every process sharing the file runs on this machine: another boot is over.
    rebooted = replace(owner_of(live_pid), place=f"0123456789ab/{me.place.partition('/')[2]}")
    assert is_alive(rebooted) is None
    assert is_alive(rebooted, one_machine=True) is False


# --- at start-up ---------------------------------------------------------------------------------


def test_start_up_fails_the_runs_no_live_process_owns(
    db_url: str, live_pid: int, dead_pid: int
) -> None:
    src = make_source()
    postgres = get_engine().dialect.name == "postgresql"
    elsewhere = replace(owner_of(dead_pid), host="another-replica")
    orphaned = {
        "dead owner": add_run(src, owner_of(dead_pid), prepared=True),
        "dead owner, still queued": add_run(src, owner_of(dead_pid), prepared=False),
        "pid reused": add_run(src, replace(owner_of(live_pid), start="1"), prepared=True),
        "queued elsewhere for too long": add_run(src, elsewhere, prepared=False, age=3600),
    }
    alive = {
        "live owner": add_run(src, owner_of(live_pid), prepared=True),
        "live owner, queued for long": add_run(src, owner_of(live_pid), prepared=False, age=3600),
        "this process": add_run(src, this_process(), prepared=True),
        "queued elsewhere": add_run(src, elsewhere, prepared=False),
    }
    # Prepared elsewhere: PostgreSQL tells by the source's advisory lock, which nobody holds;
    # on SQLite the lock is a mutex in each process, so only the next run of the source can tell.
    unknown = {
        "prepared elsewhere": add_run(src, elsewhere, prepared=True),
        "no owner recorded": add_run(src, None, prepared=True),
    }
    (orphaned if postgres else alive).update(unknown)
    before = failed_count()

    start_app()

    status = {r.id: r for r in runs(src)}
    for name, run_id in orphaned.items():
        run = status[run_id]
        assert (run.status, run.error) == ("failed", INTERRUPTED), name
        assert run.finished_at is not None, name
    for name, run_id in alive.items():
        assert status[run_id].status == "running", name
        assert status[run_id].error is None, name
    # Their processes died before they could count them: they count now, once.
    assert failed_count() - before == len(orphaned)
    assert fail_orphaned_runs() == 0


def test_a_run_whose_source_lock_is_held_stays_running(db_url: str, dead_pid: int) -> None:
    """On PostgreSQL a replica syncing the source holds its lock: its run is not touched."""
    src = make_source()
    run_id = add_run(src, replace(owner_of(dead_pid), host="another-replica"), prepared=True)
    with advisory_lock(get_engine(), src) as taken:
        assert taken
        assert fail_orphaned_runs() == 0
    [run] = runs(src)
    assert (run.id, run.status) == (run_id, "running")


def test_a_database_not_ready_does_not_stop_the_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    reset_engine()
    try:
        start_app()
    finally:
        reset_engine()
    assert "interrupted sync runs not checked at start-up: OperationalError" in caplog.text


HANGING_CHILD = """
import asyncio
import sys

from connectors.demo import DemoConnector


async def hang(self, queries, window):
    print("fetching", flush=True)
    await asyncio.sleep(3600)


DemoConnector.fetch = hang

from app.core.db import session_scope
from app.models import DataSource
from app.sync.engine import sync_now

with session_scope() as s:
    sync_now(s, s.get(DataSource, int(sys.argv[1])), trigger="cli")
"""


def test_a_run_killed_mid_fetch_is_failed_when_the_server_starts(db_url: str) -> None:
    src = make_source()
    make_mapping(make_kr(), src, "sessions")
    child = subprocess.Popen(
        [sys.executable, "-c", HANGING_CHILD, str(src)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if line != b"fetching\n":
            child.kill()
            pytest.fail(f"the child never fetched: {line!r} {child.communicate()[1].decode()}")
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()
    [run] = runs(src)
    assert run.status == "running"
    assert run.prepared_at is not None
    me = this_process()
    owner = ProcessId.parse(run.owner)
    assert owner is not None
    assert (owner.host, owner.pid, owner.place) == (this_process().host, child.pid, me.place)

    start_app()

    with session_scope() as s:
        dead = s.scalar(select(SyncRun).where(SyncRun.id == run.id))
        assert dead is not None
        assert (dead.status, dead.error) == ("failed", INTERRUPTED)
