"""The sync engine: one run per data source, fetched in few calls, written all-or-nothing.

A run is created (`create_run`, status `running`) by whoever asks for it, then executed
(`execute_run`) with its own sessions: a first transaction reads the plan, the platform is
asked without holding any transaction open, and a second transaction writes every figure and
the run's outcome together. A crash between them leaves the last good values untouched; the run
is marked `failed` when a server next starts (`app.sync.orphans`) or by the next run of the source.

This module is the run's lifecycle only: the connector and its client come from
`app.sync.connect.open_connector`, what a failure says from `app.sync.errors`, the runs' history
from `app.sync.history`; checks and previews, which fetch without a run, are `app.sources.check`
and `app.sources.preview`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast

import stamina
from sqlalchemy import CursorResult, Update, bindparam, or_, select, update
from sqlalchemy.orm import Session

from app.core import metrics
from app.core.clock import today_in, utcnow
from app.core.db import among_bound, get_engine, get_sessionmaker
from app.core.http import (
    HttpStats,
    warm_ssl_context,
)
from app.core.process import this_process
from app.core.redact import redact, redact_json
from app.core.settings import get_settings
from app.core.values import BOUND_TEXT, storable
from app.models import Cycle, DataSource, KeyResult, Mapping, Objective, SyncRun, revision
from app.sync.connect import SourceConnector, connector_for, http_stats, open_connector
from app.sync.errors import classify, is_auth_failure
from app.sync.locks import LOCK_WAIT_SECONDS, QUEUED_TOO_LONG, SourceLock
from app.sync.orphans import INTERRUPTED
from app.sync.plan import Plan, plan_run
from app.sync.source_health import RunFinished, record
from app.sync.store import Row, clear_window, replace_history, upsert
from connectors.base import (
    Connector,
    DailyValue,
    FetchResult,
    MetricQuery,
    RateLimited,
    Window,
)

log = logging.getLogger("krsync.sync")


#: How long a run may spend waiting out rate limits before it gives up until the next run.
RATE_LIMIT_BUDGET = 900.0
RATE_LIMIT_ATTEMPTS = 5
#: When a platform says "too many requests" without saying how long to wait.
RATE_LIMIT_FALLBACK_WAIT = 30.0
TRIGGERS = ("schedule", "manual", "backfill", "cli")
LOCK_POLL_SECONDS = 0.5
#: Runs executing at once in one process; each holds a pooled connection for its lock (the
#: pool is sized for it). Fewer than a nightly's sources, and the last ones wait for the first.
MAX_PARALLEL_RUNS = 24
#: Runs of one `execute_runs` reading their plans at once. Every step before the fetch is a trip
#: through the thread pool; with all runs at each step together, the first request waits for
#: every run's plan. Two at a time, the first sources fetch while the others read theirs.
PREPARING_AT_ONCE = 2


@dataclass
class Prepared:
    run_id: int
    source_id: int
    source_name: str
    #: Validated once, in the first transaction; the client is built from it outside any.
    connector: SourceConnector
    plan: Plan
    today: date
    warnings: list[str] = field(default_factory=list)
    #: The client's counts, kept here too so a run that fails mid-fetch still reports them.
    stats: HttpStats = field(default_factory=HttpStats)


@dataclass
class Fetched:
    values: list[tuple[DailyValue, date | None]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    query_errors: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    #: (window, query ids) answered completely: their stored days in the window are replaced.
    complete: list[tuple[Window, set[str]]] = field(default_factory=list)
    stats: HttpStats = field(default_factory=HttpStats)
    fetch_calls: int = 0


# --- creating and executing runs -----------------------------------------------------------------


def create_run(
    session: Session,
    source: DataSource,
    *,
    trigger: str,
    window: tuple[date, date] | None = None,
    slot: str | None = None,
) -> SyncRun:
    """A `running` SyncRun the caller commits before calling `execute_run` with its id."""
    run = SyncRun(
        data_source_id=source.id,
        trigger=trigger,
        status="running",
        window_from=window[0] if window else None,
        window_to=window[1] if window else None,
        slot=slot,
        details={"requested": window is not None},
    )
    session.add(run)
    session.flush()
    return run


def execute_run(run_id: int) -> None:
    """Blocking entry for background tasks and the CLI; never raises."""
    asyncio.run(execute_run_async(run_id))


async def execute_runs(run_ids: Sequence[int]) -> None:
    """Runs of different sources side by side: a slow or failing one holds up no other.

    Each run holds a pooled connection for its lock, so at most MAX_PARALLEL_RUNS run at once
    (below the pool's size); the rest start as those finish.
    """
    warm_ssl_context()  # ready by the first client, built while the runs read their plans
    gate = asyncio.Semaphore(MAX_PARALLEL_RUNS)
    preparing = asyncio.Semaphore(PREPARING_AT_ONCE)

    async def one(run_id: int) -> None:
        async with gate:
            await preparing.acquire()
            left = False

            def prepared() -> None:
                nonlocal left
                if not left:
                    left = True
                    preparing.release()

            try:
                await execute_run_async(run_id, on_prepared=prepared)
            finally:
                prepared()

    await asyncio.gather(*(one(r) for r in run_ids), return_exceptions=True)


async def execute_run_async(run_id: int, on_prepared: Callable[[], None] | None = None) -> None:
    """``on_prepared`` is called once the run has its plan (or waits for its source's lock),
    before it asks the platform."""
    started = time.monotonic()
    found = await asyncio.to_thread(_source_of, run_id)
    if found is None:
        return
    source_id, trigger = found
    async with _source_lock(source_id, trigger, on_prepared) as taken:
        if not taken:
            await asyncio.to_thread(
                _finish_failed,
                run_id,
                "skipped: another sync of this source was already running",
                counts=False,  # the source did nothing wrong: its health stays as it is
            )
            return
        prepared: Prepared | None = None
        try:
            prepared = await asyncio.to_thread(_prepare, run_id)
            if on_prepared is not None:
                on_prepared()
            if prepared is None:
                return
            fetched = await _fetch(prepared)
            await asyncio.to_thread(_commit, prepared, fetched, time.monotonic() - started)
        except Exception as exc:
            message = classify(exc)
            extra: dict[str, Any] = {"source_id": source_id, "run_id": run_id}
            if prepared is not None:
                extra["source"] = prepared.source_name
            log.warning("sync failed: %s", message, extra=extra)
            await asyncio.to_thread(
                _finish_failed,
                run_id,
                message,
                seconds=time.monotonic() - started,
                stats=prepared.stats if prepared is not None else None,
                auth_error=message if is_auth_failure(exc) else None,
                credentials=prepared.connector.raw if prepared is not None else None,
            )


@contextlib.asynccontextmanager
async def _source_lock(
    source_id: int, trigger: str, on_wait: Callable[[], None] | None = None
) -> AsyncIterator[bool]:
    """A scheduled run skips a busy source; one someone asked for waits its turn.

    A backfill queued right after another run started would otherwise be skipped, and the
    mapping that asked for it would stay unfilled until the next scheduled run. ``on_wait``
    is called before each wait (a waiting run gives up its turn to prepare).
    """
    deadline = time.monotonic() + (0 if trigger == "schedule" else LOCK_WAIT_SECONDS)
    while True:
        lock = SourceLock(get_engine(), source_id)
        # The lock's round trips run in a thread: on the loop they would stall every source.
        taken = await asyncio.to_thread(lock.acquire)
        if taken or time.monotonic() >= deadline:
            try:
                yield taken
            finally:
                await asyncio.to_thread(lock.release)
            return
        if on_wait is not None:
            on_wait()
        await asyncio.sleep(LOCK_POLL_SECONDS)


#: The other runs of the source that `_prepare` finds interrupted (see there).
_INTERRUPTED = (
    update(SyncRun)
    .where(
        SyncRun.data_source_id == bindparam("source_id"),
        SyncRun.status == "running",
        SyncRun.id != bindparam("run_id"),
        or_(
            SyncRun.prepared_at.is_not(None),
            SyncRun.started_at < bindparam("queued_since", type_=SyncRun.started_at.type),
        ),
    )
    .values(status="failed", finished_at=bindparam("now"), error=INTERRUPTED)
)
#: What `_source_of` reads of a run.
_RUN_STATE = select(SyncRun.data_source_id, SyncRun.trigger, SyncRun.status).where(
    SyncRun.id == bindparam("run_id")
)
#: A run and its source, read together (the source by the run's own foreign key); no row
#: when the run is gone (deleting a source deletes its runs).
_RUN_WITH_SOURCE = (
    select(SyncRun, DataSource)
    .join(DataSource, DataSource.id == SyncRun.data_source_id)
    .where(SyncRun.id == bindparam("run_id"))
)


@functools.cache
def _settled(dialect: str) -> Update:
    """The backfills a run settled, the mapping ids bound at execution (``ids``)."""
    return (
        update(Mapping)
        .where(among_bound(dialect, Mapping.id, "ids"))
        .values(backfill_pending=False)
    )


def _source_of(run_id: int) -> tuple[int, str] | None:
    """The run's source and trigger, in one read: every trip through the thread pool waits
    behind the other runs' steps. One statement outside a transaction (no BEGIN and ROLLBACK
    around it, a database round trip each)."""
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        found = conn.execute(_RUN_STATE, {"run_id": run_id}).one_or_none()
    if found is None or found.status != "running":
        return None
    return found.data_source_id, found.trigger or "schedule"


@dataclass(frozen=True, slots=True)
class _MappingRow:
    id: int
    metric: str
    params: dict[str, Any]
    filters: list[Any]
    role: str
    group: str
    scale: float
    backfill_pending: bool


@dataclass(frozen=True, slots=True)
class _KeyResultRow:
    id: int
    aggregation: str
    start_value: float | None
    target_change_pct: float | None


@dataclass(frozen=True, slots=True)
class _CycleRow:
    start_date: date
    end_date: date


#: The columns of a source's mappings, key results and cycles that its plan reads.
_PLAN_ROWS = (
    select(
        Mapping.id,
        Mapping.metric,
        Mapping.params,
        Mapping.filters,
        Mapping.role,
        Mapping.group,
        Mapping.scale,
        Mapping.backfill_pending,
        KeyResult.id,
        KeyResult.aggregation,
        KeyResult.start_value,
        KeyResult.target_change_pct,
        Cycle.start_date,
        Cycle.end_date,
    )
    .join(KeyResult, KeyResult.id == Mapping.key_result_id)
    .join(Objective, Objective.id == KeyResult.objective_id)
    .join(Cycle, Cycle.id == Objective.cycle_id)
    .where(Mapping.data_source_id == bindparam("source_id"))
    .order_by(Mapping.id)
)


def _load_rows(
    session: Session, source_id: int
) -> list[tuple[_MappingRow, _KeyResultRow, _CycleRow]]:
    """The plan's columns as plain rows: the plan keeps none of them, and loading 50 mappings
    with their key results and cycle as ORM objects cost about 2 ms of a run's CPU."""
    return [
        (_MappingRow(*row[:8]), _KeyResultRow(*row[8:12]), _CycleRow(*row[12:]))
        for row in session.execute(_PLAN_ROWS, {"source_id": source_id})
    ]


def _prepare(run_id: int) -> Prepared | None:
    with get_sessionmaker()() as session, session.begin():
        found = session.execute(_RUN_WITH_SOURCE, {"run_id": run_id}).one_or_none()
        if found is None or found[0].status != "running":
            return None
        run, source = found
        # We hold the source's lock, so another run of it that got as far as preparing died with
        # its process; one still queued for the lock is left to run, unless it waited too long.
        # On the session's connection: no object of the session is among those rows.
        interrupted = session.connection().execute(
            _INTERRUPTED,
            {
                "source_id": run.data_source_id,
                "run_id": run.id,
                "queued_since": utcnow() - QUEUED_TOO_LONG,
                "now": utcnow(),
            },
        )
        # Their process died before it could count them; they count here, without a duration.
        for _ in range(cast(CursorResult[Any], interrupted).rowcount or 0):
            metrics.record_sync(source.connector, "failed", None)
        run.started_at = run.prepared_at = utcnow()
        run.owner = str(this_process())  # whoever created it, the process preparing it runs it
        built = connector_for(source)
        today = today_in(source.timezone)
        requested = (
            (run.window_from, run.window_to)
            if run.window_from is not None and run.window_to is not None
            else None
        )
        with session.no_autoflush:  # the run's row is written once, at the commit
            rows = _load_rows(session, source.id)
        plan = plan_run(built.cls, source, rows, today=today, requested=requested)
        if plan.daily_window is not None and plan.daily:
            run.window_from, run.window_to = plan.daily_window.start, plan.daily_window.end
        elif plan.snapshot:
            run.window_from = run.window_to = today
        return Prepared(
            run_id=run.id,
            source_id=source.id,
            source_name=source.name,
            connector=built,
            plan=plan,
            today=today,
            warnings=list(plan.warnings),
        )


def windows_of(cls: type[Connector[Any, Any]], window: Window) -> list[Window]:
    """The window in the pieces the platform answers in one call."""
    return window.split(cls.max_window_days) if cls.max_window_days else [window]


async def fetch_within_budget(
    connector: Connector[Any, Any],
    queries: Sequence[MetricQuery],
    window: Window,
    deadline: float,
) -> FetchResult:
    """Wait out a platform's rate limit as it asks, but never past the run's budget."""

    def wait(exc: Exception) -> bool | float:
        if not isinstance(exc, RateLimited):
            return False
        delay = exc.retry_after if exc.retry_after is not None else RATE_LIMIT_FALLBACK_WAIT
        return delay if delay <= deadline - time.monotonic() else False

    async for attempt in stamina.retry_context(
        on=wait,
        attempts=RATE_LIMIT_ATTEMPTS,
        timeout=None,  # bounded by the deadline the hook enforces
        wait_initial=1.0,
        wait_max=60.0,
    ):
        with attempt:
            return await connector.fetch(queries, window)
    raise AssertionError("unreachable: stamina returns or re-raises")


async def _fetch(p: Prepared) -> Fetched:
    fetched = Fetched()
    if p.plan.empty:
        return fetched
    cls = p.connector.cls
    deadline = time.monotonic() + RATE_LIMIT_BUDGET
    async with open_connector(p.connector, today=p.today) as connector:
        p.stats = http_stats(connector)
        batches: list[tuple[Sequence[MetricQuery], Window, date | None]] = []
        if p.plan.daily and p.plan.daily_window is not None:
            windows = windows_of(cls, p.plan.daily_window)
            batches += [(p.plan.daily, w, None) for w in windows]
        if p.plan.snapshot:
            # A snapshot is the figure now; it is recorded on the source's today.
            batches.append((p.plan.snapshot, Window(p.today, p.today), p.today))
        for queries, window, redate in batches:
            result = await fetch_within_budget(connector, queries, window, deadline)
            fetched.fetch_calls += 1
            fetched.values += [(v, redate) for v in result.values]
            fetched.warnings += result.warnings
            fetched.query_errors.update(result.query_errors)
            fetched.details.update(result.details)
            fetched.notices += [n for n in result.notices if n not in fetched.notices]
            if result.complete and redate is None:
                # An answer with nothing at all for a query looks the same as a platform that
                # stopped showing data (a permission lost, an outage answering 200): it clears
                # nothing. Any figure in the window shows the answer was real.
                answered = {v.query_id for v in result.values}
                fetched.complete.append((window, set(result.complete) & answered))
        fetched.stats = http_stats(connector)
    return fetched


def _commit(p: Prepared, f: Fetched, seconds: float) -> None:
    """Every figure and the run's outcome in one transaction: all of it or none of it."""
    # A connector may quote a platform's answer in a warning, and a platform may echo a secret.
    warnings = p.warnings + [redact(w) for w in f.warnings]
    rows: list[Row] = []
    dropped = 0
    for value, redate in f.values:
        target = p.plan.targets.get(value.query_id)
        if target is None or value.query_id in f.query_errors:
            continue
        if not (storable(value.value) and storable(value.value * target.scale)):
            dropped += 1
            continue
        rows.append(
            Row(
                key_result_id=target.key_result_id,
                mapping_id=target.mapping_id,
                group=target.group if value.group is None else value.group,
                role=target.role,
                date=redate or value.date,
                value=float(value.value),
            )
        )
    if dropped:
        warnings.append(
            f"{dropped} value(s) were left out: not finite, or beyond {BOUND_TEXT} "
            "as fetched or times the mapping's scale"
        )
    for query_id, message in f.query_errors.items():
        warnings.append(redact(f"mapping {query_id}: {message}"))
    failed_mappings = {int(q) for q in f.query_errors}
    with get_sessionmaker()() as session, session.begin():
        found = session.execute(_RUN_WITH_SOURCE, {"run_id": p.run_id}).one_or_none()
        if found is None:
            return  # deleted while we fetched: nothing to write to
        run, source = found
        replace_history(
            session,
            (
                t.mapping_id
                for t in p.plan.targets.values()
                if t.replace_history and t.mapping_id not in failed_mappings
            ),
        )
        for window, query_ids in f.complete:
            clear_window(
                session,
                (
                    p.plan.targets[q].mapping_id
                    for q in query_ids
                    if q in p.plan.targets and q not in f.query_errors
                ),
                window.start,
                window.end,
            )
        written = upsert(session, rows, p.run_id)
        ok_ids = [
            t.mapping_id
            for t in p.plan.targets.values()
            if t.settles_backfill and t.mapping_id not in failed_mappings
        ]
        if ok_ids:
            # No figure moves (nothing for the months to mark). On the session's connection: the
            # ORM's bulk update would look for the mappings among the session's objects first.
            connection = session.connection()
            connection.execute(_settled(connection.dialect.name), {"ids": ok_ids})
            revision.changed(session)
        partial = bool(f.query_errors)
        run.status = "partial" if partial else "succeeded"
        run.finished_at = utcnow()
        run.api_calls = f.stats.requests
        run.observations_written = written
        run.warnings = warnings
        run.details = {
            **(run.details or {}),
            "fetch_calls": f.fetch_calls,
            "queries": len(p.plan.targets),
            "retries": f.stats.retries,
            "rate_limited": f.stats.rate_limited,
            "seconds": round(seconds, 3),
        }
        if f.details:
            run.details["platform"] = redact_json(f.details)
        if f.fetch_calls:  # a run with nothing to fetch heard nothing new from the platform
            source.state = {**(source.state or {}), "notices": [redact(n) for n in f.notices]}
        if p.plan.incremental_end is not None and not run.details.get("requested"):
            source.last_synced_day = max(
                p.plan.incremental_end, source.last_synced_day or p.plan.incremental_end
            )
        source.last_success_at = run.finished_at
        # The health transition and the events it and the new figures raise, in the run's
        # transaction: committed with the figures or not at all.
        change = record(
            source,
            RunFinished(
                status="partial" if partial else "succeeded",
                at=run.finished_at,
                warned=bool(warnings),
                credentials=p.connector.raw,
            ),
            now=run.finished_at,
            pause_after=get_settings().pause_after_failures,
        )
        from app.notify.evaluate import key_results_changed, source_health_changed

        source_health_changed(session, source, change)
        key_results_changed(session, (t.key_result_id for t in p.plan.targets.values()))
        status, connector = run.status, source.connector
    log.info(
        "sync %s: %d observations, %d API calls",
        status,
        written,
        f.stats.requests,
        extra={"source_id": p.source_id, "run_id": p.run_id, "source": p.source_name},
    )
    metrics.record_sync(
        connector,
        status,
        seconds,
        f.stats.requests,
        f.stats.retries,
        f.stats.rate_limited,
        written,
    )


def _finish_failed(
    run_id: int,
    message: str,
    *,
    seconds: float | None = None,
    stats: HttpStats | None = None,
    auth_error: str | None = None,
    credentials: dict[str, Any] | None = None,
    counts: bool = True,
) -> None:
    """Mark a run failed; ``seconds`` None (a skipped run) keeps it out of the durations.

    The source's health records the failure in the same transaction (``counts`` False for a
    run that never reached the platform because another sync held the source): its freshness
    (``last_success_at``, ``last_synced_day``) stays where the last good run left it.
    """
    with get_sessionmaker()() as session, session.begin():
        run = session.get(SyncRun, run_id)
        if run is None or run.status != "running":
            return
        run.status = "failed"
        run.error = message
        run.finished_at = utcnow()
        stats = stats if stats is not None else HttpStats()
        # A failed run spent calls too: they count against the platform's quota.
        run.api_calls = stats.requests
        run.details = {
            **(run.details or {}),
            "retries": stats.retries,
            "rate_limited": stats.rate_limited,
        }
        source = session.get(DataSource, run.data_source_id)
        connector = source.connector if source is not None else "unknown"
        if source is not None and counts:
            # The health transition and its `source.*` event, in the run's transaction.
            change = record(
                source,
                RunFinished(
                    status="failed",
                    at=run.finished_at,
                    auth_error=auth_error,
                    credentials=credentials,
                ),
                now=run.finished_at,
                pause_after=get_settings().pause_after_failures,
            )
            from app.notify.evaluate import source_health_changed

            source_health_changed(session, source, change, error=message)
    metrics.record_sync(
        connector, "failed", seconds, stats.requests, stats.retries, stats.rate_limited
    )


def sync_now(
    session: Session, source: DataSource, *, trigger: str, window: tuple[date, date] | None = None
) -> int:
    """Create a run, commit it, execute it; for the CLI and tests. Returns the run id."""
    run = create_run(session, source, trigger=trigger, window=window)
    session.commit()
    execute_run(run.id)
    return run.id
