"""At start-up, runs left `running` by a process that died are marked failed at once.

A process killed mid-sync (kill -9, an OOM kill, a host restart) can't record its run's end,
and the next run of the same source marks it interrupted, which may be a day later. A starting
server marks them now, but only those no live process owns: several replicas may share
PostgreSQL, and `krsync sync` may run beside a server. A run counts as orphaned when:

- its owner ran on this machine, in this pid namespace, and that pid is gone or is now
  another process (`app.core.process`); on SQLite, also when the owner ran before the last boot;
- on PostgreSQL, it got as far as holding its source's advisory lock and nobody holds that lock
  now (a dead client's session, and its lock, end with its connection);
- it is still queued for the lock, by an owner this process can't check, after longer than any
  run waits for it.

Anything else is left to the engine's own safeguard: the next run of the source.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import SQLAlchemyError

from app.core import clock, metrics
from app.core.db import get_engine, get_sessionmaker
from app.core.process import ProcessId, is_alive
from app.models import DataSource, SyncRun
from app.sync.locks import QUEUED_TOO_LONG, advisory_lock

log = logging.getLogger("krsync.sync")

INTERRUPTED = "interrupted: the process running this sync stopped before it finished"


def fail_orphaned_runs() -> int:
    """Marks failed every running run that no live process owns; how many it marked."""
    engine = get_engine()
    with get_sessionmaker()() as session:
        running = session.execute(
            select(
                SyncRun.id,
                SyncRun.data_source_id,
                SyncRun.owner,
                SyncRun.prepared_at.is_not(None).label("prepared"),
                (SyncRun.started_at < clock.utcnow() - QUEUED_TOO_LONG).label("queued_too_long"),
            )
            .where(SyncRun.status == "running")
            .order_by(SyncRun.id)
        ).all()
    failed = 0
    for run in running:
        owner = ProcessId.parse(run.owner)
        alive = is_alive(owner, one_machine=engine.dialect.name == "sqlite") if owner else None
        if alive is False or (alive is None and not run.prepared and run.queued_too_long):
            failed += _fail(run.id, prepared_only=False)
        elif alive is None and run.prepared and engine.dialect.name == "postgresql":
            # Holding the source's lock proves no process is syncing it now, and a prepared run
            # held that lock until it recorded its end. (A scheduled run firing in this instant
            # finds the lock taken and is skipped, as when any other run holds it.)
            with advisory_lock(engine, run.data_source_id) as free:
                if free:
                    failed += _fail(run.id, prepared_only=True)
    if failed:
        log.warning("marked %d sync run(s) failed: their process stopped mid-run", failed)
    return failed


def fail_orphaned_runs_at_start() -> None:
    """The start-up hook: a database that is down or not migrated yet must not stop a server."""
    try:
        fail_orphaned_runs()
    except SQLAlchemyError as exc:
        log.warning("interrupted sync runs not checked at start-up: %s", type(exc).__name__)


def _fail(run_id: int, *, prepared_only: bool) -> int:
    """1 if this process marked the run (another replica starting at once may have), else 0."""
    with get_sessionmaker()() as session, session.begin():
        where = [SyncRun.id == run_id, SyncRun.status == "running"]
        if prepared_only:
            where.append(SyncRun.prepared_at.is_not(None))
        marked = session.execute(
            update(SyncRun)
            .where(*where)
            .values(status="failed", finished_at=clock.utcnow(), error=INTERRUPTED)
        )
        if not cast(CursorResult[Any], marked).rowcount:
            return 0
        connector = session.scalar(
            select(DataSource.connector)
            .join(SyncRun, SyncRun.data_source_id == DataSource.id)
            .where(SyncRun.id == run_id)
        )
    # Its process died before it could count it; it counts here, without a duration.
    metrics.record_sync(connector or "unknown", "failed", None)
    return 1
