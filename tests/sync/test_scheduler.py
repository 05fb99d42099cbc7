"""The scheduler: one cron job per enabled source, one run per slot, one sync of a source at a time.

Runs on SQLite and, with KRSYNC_TEST_DATABASE_URL, on PostgreSQL, where the slot's unique
constraint and the advisory locks are what several replicas rely on.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sync_factories import freeze_today, make_kr, make_mapping, make_source, observations, runs

from app.core.db import session_scope
from app.core.settings import get_settings
from app.models import DataSource
from app.sync import scheduler as scheduler_module
from app.sync.engine import create_run, execute_run
from app.sync.scheduler import (
    EVALUATE_JOB,
    MISFIRE_GRACE_SECONDS,
    NOTIFY_JOB,
    NOTIFY_SECONDS,
    REFRESH_JOB,
    RUN_SCHEDULER_ENV,
    Scheduler,
    fire,
)
from connectors.base import FetchResult, MetricQuery, Window
from connectors.demo import DemoConnector

T = TypeVar("T")


@pytest.fixture
def schedulers(db_url: str) -> Iterator[list[Scheduler]]:
    """Started schedulers, paused so nothing fires by the wall clock; stopped at the end."""
    made: list[Scheduler] = []
    yield made
    for sched in made:
        sched.stop()


def _start(made: list[Scheduler]) -> Scheduler:
    sched = Scheduler()
    made.append(sched)
    sched.start(paused=True)
    return sched


def _jobs(sched: Scheduler) -> dict[str, Any]:
    """The leader's source jobs: the notification dispatcher runs on every replica, and the
    event evaluation has its own test."""
    return {
        job.id: job
        for job in sched.apscheduler.get_jobs()
        if job.id not in (NOTIFY_JOB, EVALUATE_JOB)
    }


def _update(source_id: int, **fields: Any) -> None:
    with session_scope() as s:
        src = s.get(DataSource, source_id)
        assert src is not None
        for name, value in fields.items():
            setattr(src, name, value)


def _together(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Runs the calls in threads released at the same instant, as replicas firing at once."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


def _slow_fetch(monkeypatch: pytest.MonkeyPatch, seconds: float = 0.5) -> None:
    original = DemoConnector.fetch

    async def slow(self: DemoConnector, queries: Sequence[MetricQuery], window: Window) -> Any:
        await asyncio.sleep(seconds)
        result: FetchResult = await original(self, queries, window)
        return result

    monkeypatch.setattr(DemoConnector, "fetch", slow)


# --- registering jobs --------------------------------------------------------------------------


def test_one_job_per_enabled_source_with_its_cron_in_its_timezone(
    schedulers: list[Scheduler], monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_today(monkeypatch, date(2026, 8, 16))
    paris = make_source("paris", schedule="30 6 * * *", timezone="Europe/Paris")
    ny = make_source("ny", schedule="0 7 * * 1-5", timezone="America/New_York")
    off = make_source("off", enabled=False)

    sched = _start(schedulers)
    jobs = _jobs(sched)
    assert set(jobs) == {REFRESH_JOB, f"source-{paris}", f"source-{ny}"}
    assert f"source-{off}" not in jobs
    job = jobs[f"source-{paris}"]
    assert str(job.trigger) == "cron[month='*', day='*', day_of_week='*', hour='6', minute='30']"
    assert job.trigger.timezone == ZoneInfo("Europe/Paris")
    local = job.next_run_time.astimezone(ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute) == (6, 30)
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (
        True,
        1,
        MISFIRE_GRACE_SECONDS,
    )
    assert job.func is fire
    assert job.args == (paris,)
    assert jobs[f"source-{ny}"].trigger.timezone == ZoneInfo("America/New_York")

    # a refresh picks up a changed schedule, a disabled, an enabled and a deleted source
    _update(paris, schedule="0 8 * * 1", timezone="Asia/Tokyo")
    _update(ny, enabled=False)
    _update(off, enabled=True)
    late = make_source("late", schedule="15 2 * * *")
    sched.refresh()
    jobs = _jobs(sched)
    assert set(jobs) == {REFRESH_JOB, f"source-{paris}", f"source-{off}", f"source-{late}"}
    job = jobs[f"source-{paris}"]
    assert job.trigger.timezone == ZoneInfo("Asia/Tokyo")
    local = job.next_run_time.astimezone(ZoneInfo("Asia/Tokyo"))
    assert (local.weekday(), local.hour, local.minute) == (0, 8, 0)

    with session_scope() as s:
        src = s.get(DataSource, late)
        assert src is not None
        s.delete(src)
    sched.refresh()
    assert set(_jobs(sched)) == {REFRESH_JOB, f"source-{paris}", f"source-{off}"}


def test_a_source_with_an_unusable_schedule_is_left_out_not_fatal(
    schedulers: list[Scheduler],
) -> None:
    bad = make_source("bad", schedule="0 3 * *")
    good = make_source("good")
    sched = _start(schedulers)
    assert set(_jobs(sched)) == {REFRESH_JOB, f"source-{good}"}
    _update(bad, schedule="0 4 * * *")
    sched.refresh()
    assert set(_jobs(sched)) == {REFRESH_JOB, f"source-{good}", f"source-{bad}"}


def test_a_firing_missed_within_the_grace_is_caught_up_at_start(
    schedulers: list[Scheduler], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deploy or a failover at 03:00 must not cost the night's sync."""
    freeze_today(monkeypatch, date(2026, 8, 16))  # 12:00 UTC
    missed = make_source("missed", schedule="30 11 * * *")
    long_ago = make_source("long-ago", schedule="0 3 * * *")
    jobs = _jobs(_start(schedulers))
    assert jobs[f"source-{missed}"].next_run_time == datetime(2026, 8, 16, 11, 30, tzinfo=UTC)
    assert jobs[f"source-{long_ago}"].next_run_time > datetime.now(UTC)


def test_only_one_scheduler_leads_and_another_takes_over_when_it_stops(
    schedulers: list[Scheduler],
) -> None:
    src = make_source()
    first = _start(schedulers)
    second = _start(schedulers)
    assert first.leading
    assert not second.leading
    assert set(_jobs(first)) == {REFRESH_JOB, f"source-{src}"}
    assert set(_jobs(second)) == {REFRESH_JOB}

    first.stop()
    second.refresh()
    assert second.leading
    assert set(_jobs(second)) == {REFRESH_JOB, f"source-{src}"}


def test_the_leader_alone_evaluates_events_hourly_in_krsync_timezone(
    schedulers: list[Scheduler], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two replicas evaluating at once would only find each other's announcements; the job
    follows leadership, and runs on the hour of KRSYNC_TIMEZONE (the digest's Monday 09:00)."""
    monkeypatch.setenv("KRSYNC_TIMEZONE", "Asia/Kolkata")  # a half-hour offset shows the zone
    get_settings.cache_clear()
    first, second = _start(schedulers), _start(schedulers)
    job = first.apscheduler.get_job(EVALUATE_JOB)
    assert job is not None
    assert job.max_instances == 1
    assert job.trigger.timezone == ZoneInfo("Asia/Kolkata")
    assert job.next_run_time.astimezone(ZoneInfo("Asia/Kolkata")).minute == 0
    assert job.next_run_time.astimezone(UTC).minute == 30
    assert second.apscheduler.get_job(EVALUATE_JOB) is None

    first.stop()
    second.refresh()
    assert second.apscheduler.get_job(EVALUATE_JOB) is not None


def test_every_replica_delivers_notifications(schedulers: list[Scheduler]) -> None:
    """Deliveries are leased before they are sent, so the follower dispatches too: a leader's
    failover never holds notifications up."""
    leader, follower = _start(schedulers), _start(schedulers)
    assert not follower.leading
    for sched in (leader, follower):
        job = sched.apscheduler.get_job(NOTIFY_JOB)
        assert job is not None
        assert job.trigger.interval.total_seconds() == NOTIFY_SECONDS
        assert job.max_instances == 1


# --- firing ------------------------------------------------------------------------------------


def test_firing_twice_in_one_slot_starts_one_run(
    schedulers: list[Scheduler], monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_today(monkeypatch, date(2026, 8, 16))
    kr = make_kr()
    src = make_source(schedule="0 3 * * *")
    make_mapping(kr, src, "sessions")
    job = _jobs(_start(schedulers))[f"source-{src}"]

    run_id = job.func(*job.args)
    assert run_id is not None
    assert job.func(*job.args) is None  # the same slot: skipped quietly
    [run] = runs(src)
    assert (run.id, run.trigger, run.slot) == (run_id, "schedule", "2026-08-16T03:00:00+00:00")
    assert run.status == "succeeded", run.error
    assert observations(kr)

    freeze_today(monkeypatch, date(2026, 8, 17))
    assert fire(src) is not None  # the next day is the next slot
    assert [r.slot for r in runs(src)] == [
        "2026-08-16T03:00:00+00:00",
        "2026-08-17T03:00:00+00:00",
    ]


def test_a_disabled_or_deleted_source_does_not_fire(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_today(monkeypatch, date(2026, 8, 16))
    src = make_source(enabled=False)
    assert fire(src) is None
    assert fire(src + 100) is None
    assert runs(src) == []


def test_replicas_firing_one_slot_at_once_start_exactly_one_run(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What keeps replicas apart is the slot's unique constraint, not leadership."""
    freeze_today(monkeypatch, date(2026, 8, 16))
    kr = make_kr()
    src = make_source()
    make_mapping(kr, src, "sessions")
    _slow_fetch(monkeypatch, 0.2)

    outcomes = _together([lambda: fire(src), lambda: fire(src), lambda: fire(src)])
    started = [o for o in outcomes if o is not None]
    assert len(started) == 1
    [run] = runs(src)
    assert run.id == started[0]
    assert run.status == "succeeded", run.error


def test_two_runs_of_one_source_at_once_one_syncs_the_other_is_skipped(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-source lock: an advisory lock on PostgreSQL, the process's mutex on SQLite."""
    freeze_today(monkeypatch, date(2026, 8, 16))
    kr = make_kr()
    src = make_source()
    make_mapping(kr, src, "sessions")
    _slow_fetch(monkeypatch, 0.5)
    with session_scope() as s:
        source = s.get(DataSource, src)
        assert source is not None
        # Scheduled runs, which skip a busy source (a run someone asked for waits its turn).
        made = [create_run(s, source, trigger="schedule", slot=f"slot-{i}") for i in (1, 2)]
        # Created at one instant, as by two replicas: neither is older than the other, so the
        # winner can't take the loser for a dead run (see the note on queued runs).
        moment = made[0].started_at
        for run in made:
            run.started_at = moment
        ids = [run.id for run in made]

    _together([lambda: execute_run(ids[0]), lambda: execute_run(ids[1])])
    done = sorted(runs(src), key=lambda r: r.status)
    assert [r.status for r in done] == ["failed", "succeeded"], [r.error for r in done]
    assert done[0].error == "skipped: another sync of this source was already running"
    assert done[1].observations_written == 46


def test_a_run_someone_asked_for_waits_for_a_busy_source_instead_of_skipping(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backfill queued while the nightly run holds the source runs right after it."""
    freeze_today(monkeypatch, date(2026, 8, 16))
    kr = make_kr()
    src = make_source()
    make_mapping(kr, src, "sessions")
    _slow_fetch(monkeypatch, 0.5)
    with session_scope() as s:
        source = s.get(DataSource, src)
        assert source is not None
        ids = [
            create_run(s, source, trigger="schedule").id,
            create_run(s, source, trigger="backfill").id,
        ]

    nightly = threading.Thread(target=execute_run, args=(ids[0],))
    nightly.start()
    time.sleep(0.2)  # the nightly run holds the source's lock now
    execute_run(ids[1])
    nightly.join()
    assert [r.status for r in runs(src)] == ["succeeded", "succeeded"], [r.error for r in runs(src)]


# --- freshness ---------------------------------------------------------------------------------


def test_a_source_without_success_for_two_intervals_makes_its_key_results_stale(
    client: TestClient,
) -> None:
    now = datetime.now(UTC)
    kr_old = make_kr(title="synced 3 days ago")
    old = make_source("old", schedule="0 3 * * *", last_success_at=now - timedelta(days=3))
    make_mapping(kr_old, old, "sessions")
    kr_new = make_kr(title="synced an hour ago")
    new = make_source("new", schedule="0 3 * * *", last_success_at=now - timedelta(hours=1))
    make_mapping(kr_new, new, "sessions")

    stale = client.get(f"/api/v1/key-results/{kr_old}").json()["progress"]
    fresh = client.get(f"/api/v1/key-results/{kr_new}").json()["progress"]
    assert stale["stale"] is True
    assert fresh["stale"] is False


# --- wiring ------------------------------------------------------------------------------------


class _Recorder:
    instances: list[_Recorder] = []  # noqa: RUF012

    def __init__(self) -> None:
        self.calls: list[str] = []
        _Recorder.instances.append(self)

    def start(self) -> None:
        self.calls.append("start")

    def stop(self) -> None:
        self.calls.append("stop")


@pytest.mark.parametrize(
    ("flag", "enabled", "expected"),
    [("1", "true", ["start", "stop"]), (None, "true", None), ("1", "false", None)],
)
def test_the_app_runs_a_scheduler_only_under_serve_and_when_enabled(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    flag: str | None,
    enabled: str,
    expected: list[str] | None,
) -> None:
    from app.core.settings import get_settings
    from app.main import app

    _Recorder.instances = []
    monkeypatch.setattr(scheduler_module, "Scheduler", _Recorder)
    if flag is None:
        monkeypatch.delenv(RUN_SCHEDULER_ENV, raising=False)
    else:
        monkeypatch.setenv(RUN_SCHEDULER_ENV, flag)
    monkeypatch.setenv("KRSYNC_SCHEDULER_ENABLED", enabled)
    get_settings.cache_clear()
    with TestClient(app) as test_client:
        assert test_client.get("/healthz").status_code == 200
    get_settings.cache_clear()
    if expected is None:
        assert _Recorder.instances == []
    else:
        [recorder] = _Recorder.instances
        assert recorder.calls == expected


def test_sync_runs_record_their_slot_only_when_scheduled(db_url: str) -> None:
    src = make_source()
    with session_scope() as s:
        source = s.get(DataSource, src)
        assert source is not None
        create_run(s, source, trigger="cli")
        create_run(s, source, trigger="cli")  # NULL slots never collide
    assert [r.slot for r in runs(src)] == [None, None]
