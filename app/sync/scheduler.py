"""The scheduler of `krsync serve`: every enabled source fires on its own cron, in its own timezone.

A source the sync engine paused after KRSYNC_PAUSE_AFTER_FAILURES failed runs in a row
(`app.sync.source_health`) gets no job until an admin resumes it.

Several replicas may run it. Two things keep them from stepping on each other:

- **Leadership.** A replica registers source jobs only while it holds the scheduler's advisory
  lock (PostgreSQL: a session lock on a connection it keeps open; SQLite: the process's mutex).
  The others try to take it at every refresh, so a dead leader is replaced within a minute, and
  the new leader catches up a slot missed within the misfire grace.
- **The slot.** A scheduled run records the fire time it belongs to, and (data_source_id, slot)
  is unique. That constraint is the guarantee: whatever happens to leadership (a network blip
  drops the leader's lock while it still believes it leads; two processes share a SQLite file),
  the replica whose insert of the slot's row wins runs it, and every other one skips it.

The per-source advisory lock that `execute_run` takes keeps one sync of a source at a time,
whatever started it (the schedule, the API, `krsync sync`).

The engine is imported where a job needs it: the app imports this module for its lifespan, and
the engine pulls in the HTTP layer and every connector, which serving the API never needs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from app.core import clock
from app.core.cron import cron_trigger, previous_fire_time
from app.core.db import get_engine, get_sessionmaker
from app.core.settings import get_settings
from app.models import DataSource
from app.sync.locks import NAMESPACE, SCHEDULER_LOCK, advisory_lock
from app.sync.orphans import fail_orphaned_runs_at_start

log = logging.getLogger("krsync.scheduler")

#: Set by `krsync serve`: the app starts a scheduler only then, never under tests or another host.
RUN_SCHEDULER_ENV = "KRSYNC_RUN_SCHEDULER"
REFRESH_SECONDS = 60
MISFIRE_GRACE_SECONDS = 3600
REFRESH_JOB = "refresh"
#: The outbox's dispatcher (app.notify.dispatch): every replica runs it, since a delivery is
#: leased before it is sent, so a leader's failover never holds notifications up.
NOTIFY_JOB = "notify"
NOTIFY_SECONDS = 5
#: How long one run of the job goes on claiming deliveries (those under way finish), so that it
#: ends before the next one is due: a backlog drains across runs.
NOTIFY_RUN_SECONDS = 4
#: The event evaluation (app.notify.evaluate): what time moves (expected progress, credentials
#: ending, reminders, the Monday digest). Hourly on the hour rather than daily, so a failover or
#: a deploy costs an hour at most and the digest goes at 09:00 sharp; the leader alone runs it,
#: and what it announces is recorded, so running it again says nothing twice.
EVALUATE_JOB = "evaluate"
#: One job per source: missed firings collapse into one, and a slow sync never overlaps itself.
JOB_OPTIONS: dict[str, Any] = {
    "coalesce": True,
    "max_instances": 1,
    "misfire_grace_time": MISFIRE_GRACE_SECONDS,
}


def job_id(source_id: int) -> str:
    return f"source-{source_id}"


def slot_of(fire_time: datetime) -> str:
    """The same instant names the same slot on every replica, whatever their local timezone."""
    return fire_time.astimezone(UTC).isoformat()


def fire(source_id: int, now: datetime | None = None) -> int | None:
    """Claims the slot of the source's latest firing, then syncs; the run id, or None if skipped."""
    from app.sync.engine import execute_run

    now = now or clock.utcnow()
    try:
        run_id = _claim(source_id, now)
    except SQLAlchemyError as exc:
        # The statement and its parameters stay out of the log; the next firing tries again.
        log.warning("scheduled sync of source %s not started: %s", source_id, type(exc).__name__)
        return None
    except (ValueError, LookupError) as exc:
        log.warning("scheduled sync of source %s not started: bad schedule: %s", source_id, exc)
        return None
    if run_id is not None:
        log.info("scheduled sync of source %s started", source_id, extra={"run_id": run_id})
        execute_run(run_id)
    return run_id


def dispatch_notifications() -> None:
    """Sends the outbox's due deliveries for a few seconds; the next run picks up the rest."""
    from app.notify.dispatch import dispatch_due

    try:
        report = dispatch_due(run_for=timedelta(seconds=NOTIFY_RUN_SECONDS))
    except SQLAlchemyError as exc:
        log.warning("notification dispatch failed: %s", type(exc).__name__)
        return
    if report.attempts:
        log.info(
            "notifications: %s delivered, %s to retry, %s failed",
            report.delivered,
            report.retrying,
            report.failed,
        )


def evaluate_events() -> None:
    """The hourly evaluation of events; logs and waits for the next hour on a database error."""
    from app.notify.evaluate import evaluate_all

    try:
        report = evaluate_all()
    except SQLAlchemyError as exc:
        log.warning("event evaluation failed: %s", type(exc).__name__)
        return
    log.info(
        "events evaluated: %s key results in %.0f ms, %s status change(s), %s reminder(s)%s",
        report.statuses.evaluated,
        report.seconds * 1000,
        report.statuses.changed,
        report.reminders,
        ", weekly digest sent" if report.digest else "",
    )


def _claim(source_id: int, now: datetime) -> int | None:
    from app.sync.engine import create_run

    with get_sessionmaker()() as session:
        source = session.get(DataSource, source_id)
        if source is None or not source.enabled or source.paused_at is not None:
            return None  # deleted, disabled or paused since the last refresh
        fire_time = previous_fire_time(cron_trigger(source.schedule, source.timezone), now)
        if fire_time is None:
            return None
        slot = slot_of(fire_time)
        try:
            run = create_run(session, source, trigger="schedule", slot=slot)
            session.commit()
        except IntegrityError:
            session.rollback()
            log.debug("slot %s of source %s was taken by another replica", slot, source_id)
            return None
        return run.id


class _Leadership:
    """The scheduler's advisory lock, held for as long as this replica leads."""

    def __init__(self) -> None:
        self._conn: Connection | None = None  # PostgreSQL: the session that holds the lock
        self._local: ExitStack | None = None  # SQLite: the process's mutex

    def hold(self) -> bool:
        """Whether this replica leads now; takes the lock when it is free."""
        engine = get_engine()
        if engine.dialect.name != "postgresql":
            if self._local is None:
                stack = ExitStack()
                if stack.enter_context(advisory_lock(engine, SCHEDULER_LOCK)):
                    self._local = stack
                else:
                    stack.close()
            return self._local is not None
        if self._conn is not None:
            try:
                # A session lock lives as long as its session: a live connection still holds it.
                self._conn.execute(select(1))
                self._conn.commit()
                return True
            except DBAPIError:
                log.warning("lost the connection holding the scheduler lock; stepping down")
                self._close()
        conn = engine.connect()
        try:
            taken = bool(conn.scalar(select(func.pg_try_advisory_lock(NAMESPACE, SCHEDULER_LOCK))))
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if taken:
            self._conn = conn
        else:
            conn.close()
        return taken

    def release(self) -> None:
        if self._local is not None:
            self._local.close()
            self._local = None
        if self._conn is not None:
            try:
                self._conn.scalar(select(func.pg_advisory_unlock(NAMESPACE, SCHEDULER_LOCK)))
                self._conn.commit()
            except DBAPIError:
                pass  # the session is gone, and its lock with it
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()  # never hand a session that held a lock back to the pool
            finally:
                self._conn.close()
                self._conn = None


class Scheduler:
    """APScheduler's BackgroundScheduler with one cron job per enabled source, kept in step."""

    def __init__(self) -> None:
        self.apscheduler = BackgroundScheduler(timezone=UTC)
        # Two lines a minute for the refresh job is noise; a sync logs its own outcome.
        logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
        self._leadership = _Leadership()
        self._leading = False
        self._registered: dict[int, tuple[str, str]] = {}
        self._invalid: dict[int, tuple[str, str]] = {}
        self._guard = threading.Lock()

    @property
    def leading(self) -> bool:
        return self._leading

    def start(self, *, paused: bool = False) -> None:
        """Registers the sources now, then refreshes every minute; delivers notifications every
        few seconds."""
        self.apscheduler.start(paused=paused)
        self.refresh()
        self._every(REFRESH_SECONDS, self.refresh, REFRESH_JOB, "refresh source schedules")
        self._every(NOTIFY_SECONDS, dispatch_notifications, NOTIFY_JOB, "deliver notifications")

    def _every(self, seconds: int, job: Callable[[], object], job_id: str, name: str) -> None:
        """A housekeeping job: one run at a time, a missed one run once when it can."""
        self.apscheduler.add_job(
            job,
            IntervalTrigger(seconds=seconds),
            id=job_id,
            name=name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=seconds,
            replace_existing=True,
        )

    def stop(self) -> None:
        """Starts nothing more; a sync under way finishes in its thread (or, if the process is
        killed first, is marked interrupted when a server starts or the source next syncs)."""
        if self.apscheduler.running:
            self.apscheduler.shutdown(wait=False)
        with self._guard:
            self._leadership.release()
            self._leading = False
            self._registered.clear()

    def refresh(self) -> None:
        """Takes or confirms leadership and brings the jobs in line with the sources."""
        with self._guard:
            try:
                self._refresh()
            except SQLAlchemyError as exc:
                # The database is away: keep the jobs we have; the next refresh tries again.
                log.warning("scheduler refresh failed: %s", type(exc).__name__)

    def _refresh(self) -> None:
        was_leading, self._leading = self._leading, self._leadership.hold()
        if not self._leading:
            if was_leading:
                log.warning("this replica no longer leads the scheduler")
                self._evaluation(False)
            for source_id in list(self._registered):
                self._remove(source_id)
            return
        if not was_leading:
            log.info("this replica leads the scheduler")
            self._evaluation(True)
        with get_sessionmaker()() as session:
            rows = session.execute(
                select(DataSource.id, DataSource.name, DataSource.schedule, DataSource.timezone)
                # A paused source (too many failed runs in a row) waits for a resume.
                .where(DataSource.enabled.is_(True), DataSource.paused_at.is_(None))
                .order_by(DataSource.id)
            ).all()
        now = clock.utcnow()
        wanted = {row.id for row in rows}
        for source_id in list(self._registered):
            if source_id not in wanted:
                self._remove(source_id)
        for row in rows:
            self._register(row.id, row.name, (row.schedule, row.timezone), now, not was_leading)
        for source_id in list(self._invalid):
            if source_id not in wanted:
                del self._invalid[source_id]

    def _evaluation(self, leading: bool) -> None:
        """The event evaluation is the leader's job: the others would find nothing new."""
        if not leading:
            try:
                self.apscheduler.remove_job(EVALUATE_JOB)
            except JobLookupError:
                pass
            return
        self.apscheduler.add_job(
            evaluate_events,
            CronTrigger(minute=0, timezone=get_settings().timezone),
            id=EVALUATE_JOB,
            name="evaluate events",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
            replace_existing=True,
        )

    def _register(
        self, source_id: int, name: str, key: tuple[str, str], now: datetime, catch_up: bool
    ) -> None:
        if self._registered.get(source_id) == key or self._invalid.get(source_id) == key:
            return
        try:
            trigger = cron_trigger(*key)
        except (ValueError, LookupError) as exc:
            log.warning("source %r has an unusable schedule %r (%s): not scheduled", name, key, exc)
            self._remove(source_id)
            self._invalid[source_id] = key
            return
        self._invalid.pop(source_id, None)
        if source_id in self._registered:
            self.apscheduler.reschedule_job(job_id(source_id), trigger=trigger)
            self._registered[source_id] = key
            log.info("source %r now syncs on %r (%s)", name, *key)
            return
        options: dict[str, Any] = {}
        if catch_up:
            # A deploy or a failover at fire time must not cost a night's sync: a firing missed
            # within the grace runs now (and is skipped if its slot was already taken).
            last = previous_fire_time(trigger, now)
            if last is not None and now - last <= timedelta(seconds=MISFIRE_GRACE_SECONDS):
                options["next_run_time"] = last
        self.apscheduler.add_job(
            fire,
            trigger,
            args=[source_id],
            id=job_id(source_id),
            name=f"sync {name}",
            replace_existing=True,
            **JOB_OPTIONS,
            **options,
        )
        self._registered[source_id] = key

    def _remove(self, source_id: int) -> None:
        if self._registered.pop(source_id, None) is not None:
            try:
                self.apscheduler.remove_job(job_id(source_id))
            except JobLookupError:
                pass


@asynccontextmanager
async def lifespan(_: Any) -> AsyncIterator[None]:
    """Fails the runs a dead process left running, in every server (`app.sync.orphans`), then
    runs the scheduler under `krsync serve` only, so test clients and other hosts get none."""
    await asyncio.to_thread(fail_orphaned_runs_at_start)
    scheduler: Scheduler | None = None
    if os.environ.get(RUN_SCHEDULER_ENV) == "1" and get_settings().scheduler_enabled:
        scheduler = Scheduler()
        await asyncio.to_thread(scheduler.start)
    try:
        yield
    finally:
        if scheduler is not None:
            await asyncio.to_thread(scheduler.stop)
