"""Nightly sync benchmark: the real sync engine against a fake platform with a 50 ms latency.

    .venv/bin/python bench/sync.py [--repeat 3] [--days N] [--backfill] [--sources 20] [--krs 50]
        [--send-ahead 20] [--phases] [--profile N] [--no-reference] [--latency-ms 50]

The platform (bench/fakeapi.py, run as its own process so it never competes with the engine for
the GIL) is *a platform that can't batch metrics and pages by week*::

    GET /v1/metrics/{metric}/daily?from=YYYY-MM-DD&to=YYYY-MM-DD&page=N
    -> {"data": [{"date": "YYYY-MM-DD", "value": float}, ...], "next_page": N + 1 | null}

one metric per request, at most 7 days per page, values a pure function of (metric, date). Every
request waits 50 ms; more than 10 requests in flight for one bearer token (one source) is
answered 429 and counted as a violation. The connector (bench/benchconn.py, key ``bench``) fires
every page of every query at once (the page count follows from the window) and lets the engine's
per-source client (max_concurrency 10) bound what is in flight; it builds at most
``--send-ahead`` requests ahead of that bound, so 9,000 pending requests of a backfill don't all
sit in memory at once.

1. (Re)creates the database ``krsync_bench_sync`` and migrates it to head.
2. Seeds one 91-day cycle around the synced window, ``--sources`` data sources (connector
   ``bench``, a token each, ``lookback_days`` 3 and ``last_synced_day`` = yesterday - 1, so the
   incremental nightly window is the 5 days up to yesterday) and ``--krs`` key results per source,
   each with one mapping on a metric of its own. ``--days N`` widens the nightly window to N days
   (``lookback_days`` = N - 2); ``--backfill`` leaves every mapping ``backfill_pending`` so each
   run backfills the cycle so far (63 days) instead.
3. Per repeat: resets ``last_synced_day`` (and ``backfill_pending``) and the platform's counters,
   creates one ``schedule`` run per source, commits, and times
   ``asyncio.run(execute_runs(ids))``. Every run must succeed and sync the expected window; its
   ``api_calls`` must equal what the platform counted for its token and be at most the distinct
   (query, page) requests; no source may exceed 10 requests in flight; the stored observations
   must be exactly the platform's figures.
4. Two references make the same requests without the engine: bare httpx (one client and a
   semaphore of 10 per source) and bare asyncio streams (10 keep-alive connections per source):
   the floor of the HTTP stack, and the floor of Python and the platform on this machine.
5. Prints each repeat, the references, then ``label: value unit`` headline lines (median wall
   time and ratio, the time to the platform's first request, and the engine's wall time and
   CPU per call against the bare httpx reference of the same run). ``--phases`` times the
   engine's steps; ``--profile N`` runs cProfile.

What the ratio measures: the lower bound is what the platform itself imposes on the slowest
source, ``calls x latency / allowed concurrency``; the wall time adds everything else (reading
the plan, locks, the CPU that the engine, httpx and the database driver spend per request for
all sources on one event loop and one GIL, the write transaction). A ratio of 1.0 means the
engine costs nothing beyond the platform's own latency.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import gc
import inspect
import io
import json
import math
import os
import pstats
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, insert, make_url, select, update

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.core.db import get_sessionmaker, reset_engine  # noqa: E402
from app.core.migrate import upgrade  # noqa: E402
from app.core.secrets import SecretBox  # noqa: E402
from app.core.settings import normalize_database_url  # noqa: E402
from app.models import (  # noqa: E402
    Cycle,
    DataSource,
    KeyResult,
    Mapping,
    Objective,
    Observation,
    SyncRun,
)
from app.sync.engine import create_run, execute_runs  # noqa: E402
from bench.benchconn import (  # noqa: E402
    MAX_CONCURRENCY,
    PAGE_DAYS,
    BenchConnector,
    register,
)
from bench.common import BenchError, recreate_database  # noqa: E402
from bench.fakeapi import daily_value  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/krsync_bench_sync"
NIGHTLY_LOOKBACK = 3
CYCLE_DAYS = 91
CYCLE_DAYS_BEFORE = 62  # the cycle starts this many days before yesterday (if the window fits)
TARGET_RATIO = 1.2
TARGET_RSS_MB = 150.0
#: The engine against bare httpx in the same run (issue #18), and its start to the first request.
TARGET_WALL_VS_HTTPX = 1.3
TARGET_CPU_VS_HTTPX = 1.25
TARGET_FIRST_REQUEST_MS = 100.0


@dataclass
class Seeded:
    source_ids: list[int]
    tokens: dict[int, str]  # source id -> bearer token
    metrics: dict[int, str]  # mapping id -> metric
    cycle: tuple[date, date]
    last_synced_day: date
    seconds: float


def metric_name(source: int, kr: int) -> str:
    return f"s{source:02d}.kr{kr:03d}.signups"


def seed(engine: Engine, args: argparse.Namespace, base_url: str, yesterday: date) -> Seeded:
    """Core executemany with RETURNING, in one transaction."""
    started = time.perf_counter()
    box = SecretBox.from_keys(os.environ["KRSYNC_SECRET_KEY"])
    last_synced = yesterday - timedelta(days=1)
    cycle_start = min(
        yesterday - timedelta(days=CYCLE_DAYS_BEFORE), yesterday - timedelta(days=args.days)
    )
    cycle_end = max(cycle_start + timedelta(days=CYCLE_DAYS - 1), yesterday)
    tokens = [f"bench-token-{i:02d}-{os.urandom(6).hex()}" for i in range(args.sources)]
    with engine.begin() as conn:
        cycle_id = conn.execute(
            insert(Cycle).returning(Cycle.id),
            {"name": "Bench quarter", "start_date": cycle_start, "end_date": cycle_end},
        ).scalar_one()
        objective_ids = list(
            conn.execute(
                insert(Objective).returning(Objective.id, sort_by_parameter_order=True),
                [
                    {
                        "title": f"Grow channel {i:02d}",
                        "description": "Seeded by bench/sync.py",
                        "cycle_id": cycle_id,
                        "owner": f"owner{i}@example.com",
                        "level": "team",
                        "team": f"team-{i:02d}",
                    }
                    for i in range(args.sources)
                ],
            ).scalars()
        )
        kr_ids = list(
            conn.execute(
                insert(KeyResult).returning(KeyResult.id, sort_by_parameter_order=True),
                [
                    {
                        "objective_id": objective_ids[i],
                        "title": f"Reach {10_000 + j * 100:,} signups on channel {i:02d}",
                        "owner": f"owner{i}@example.com",
                        "unit": "signups",
                        "aggregation": "sum",
                        "direction": "increase",
                        "start_value": 0.0,
                        "target_value": 10_000.0 + j * 100,
                    }
                    for i in range(args.sources)
                    for j in range(args.krs)
                ],
            ).scalars()
        )
        source_ids = list(
            conn.execute(
                insert(DataSource).returning(DataSource.id, sort_by_parameter_order=True),
                [
                    {
                        "name": f"Bench source {i:02d}",
                        "connector": "bench",
                        "config": {"base_url": base_url},
                        "credentials_encrypted": box.encrypt_json({"token": tokens[i]}),
                        "timezone": "UTC",
                        "lookback_days": args.days - 2,
                        "last_synced_day": last_synced,
                        "enabled": True,
                        "state": {},
                    }
                    for i in range(args.sources)
                ],
            ).scalars()
        )
        mapping_rows = [
            {
                "key_result_id": kr_ids[i * args.krs + j],
                "data_source_id": source_ids[i],
                "metric": metric_name(i, j),
                "params": {},
                "filters": [],
                "role": "value",
                "group": "",
                "scale": 1.0,
                "backfill_pending": args.backfill,
            }
            for i in range(args.sources)
            for j in range(args.krs)
        ]
        mapping_ids = list(
            conn.execute(
                insert(Mapping).returning(Mapping.id, sort_by_parameter_order=True), mapping_rows
            ).scalars()
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    return Seeded(
        source_ids=source_ids,
        tokens=dict(zip(source_ids, tokens, strict=True)),
        metrics={m: row["metric"] for m, row in zip(mapping_ids, mapping_rows, strict=True)},
        cycle=(cycle_start, cycle_end),
        last_synced_day=last_synced,
        seconds=time.perf_counter() - started,
    )


def reset_state(seeded: Seeded, backfill: bool) -> None:
    """Put every source back where the nightly run found it, so repeats sync the same window."""
    with get_sessionmaker()() as session, session.begin():
        session.execute(
            update(DataSource)
            .where(DataSource.id.in_(seeded.source_ids))
            .values(last_synced_day=seeded.last_synced_day)
        )
        session.execute(
            update(Mapping)
            .where(Mapping.data_source_id.in_(seeded.source_ids))
            .values(backfill_pending=backfill)
        )


def create_runs(source_ids: list[int]) -> list[int]:
    with get_sessionmaker()() as session:
        run_ids = []
        for source_id in source_ids:
            source = session.get(DataSource, source_id)
            assert source is not None
            run_ids.append(create_run(session, source, trigger="schedule").id)
        session.commit()
    return run_ids


# --- phases (--phases) ---------------------------------------------------------------------------


class Phases:
    """Times the engine's steps by wrapping them in its module; the engine itself is untouched.

    ``_source_of``, ``_prepare`` and ``_commit`` run in the default thread pool; ``_fetch`` and
    the advisory lock's take and release run on the event loop (the lock blocks it).
    """

    STEPS = ("_source_of", "_prepare", "_fetch", "_commit")

    def __init__(self) -> None:
        self.spans: list[tuple[str, int, float, float]] = []  # (step, run or source id, from, to)

    def install(self) -> None:
        import app.sync.engine as eng

        spans = self.spans

        def key_of(args: tuple[Any, ...]) -> int:
            first = args[0]
            return int(getattr(first, "run_id", first))

        def wrap_sync(name: str, fn: Any) -> Any:
            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                t = time.monotonic()
                try:
                    return fn(*args, **kwargs)
                finally:
                    spans.append((name, key_of(args), t, time.monotonic()))

            return wrapper

        def wrap_async(name: str, fn: Any) -> Any:
            @functools.wraps(fn)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                t = time.monotonic()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    spans.append((name, key_of(args), t, time.monotonic()))

            return wrapper

        from app.sync.locks import SourceLock

        def timed_lock_step(label: str, fn: Any) -> Any:
            @functools.wraps(fn)
            def wrapper(lock: SourceLock) -> Any:
                t = time.monotonic()
                try:
                    return fn(lock)
                finally:
                    spans.append((label, id(lock) % 10_000, t, time.monotonic()))

            return wrapper

        SourceLock.acquire = timed_lock_step("lock take (thread)", SourceLock.acquire)  # type: ignore[method-assign]
        SourceLock.release = timed_lock_step("lock release (thread)", SourceLock.release)  # type: ignore[method-assign]

        for name in self.STEPS:
            fn = getattr(eng, name, None)
            if fn is None:  # the engine moved on: time what is still there
                print(f"--phases: app.sync.engine.{name} is gone, not timed")
                continue
            wrapped = wrap_async(name, fn) if inspect.iscoroutinefunction(fn) else None
            setattr(eng, name, wrapped or wrap_sync(name, fn))

    def report(self, started: float) -> None:
        """Per step: how many, median and max duration, and when the first began/last ended."""
        print()
        header = (
            f"{'step':<22} {'n':>3} {'median':>8} {'max':>8} {'sum':>8} {'first':>8} {'last':>8}"
        )
        print(header)
        print("-" * len(header))
        names = [*self.STEPS[:2], "lock take (loop)", *self.STEPS[2:], "lock release (loop)"]
        for name in names:
            mine = [(a, b) for n, _, a, b in self.spans if n == name]
            if not mine:
                continue
            took = [b - a for a, b in mine]
            print(
                f"{name:<22} {len(mine):>3} {statistics.median(took) * 1000:>8.1f} "
                f"{max(took) * 1000:>8.1f} {sum(took) * 1000:>8.1f} "
                f"{(min(a for a, _ in mine) - started) * 1000:>8.1f} "
                f"{(max(b for _, b in mine) - started) * 1000:>8.1f}"
            )
        fetch_end = {k: b for n, k, _, b in self.spans if n == "_fetch"}
        waits = [a - fetch_end[k] for n, k, a, _ in self.spans if n == "_commit" if k in fetch_end]
        if waits:
            print(
                f"fetch end -> commit start (thread pool queue + GIL): median "
                f"{statistics.median(waits) * 1000:.1f} ms, max {max(waits) * 1000:.1f} ms"
            )
        print(
            "(ms; first/last = when the first one began and the last one ended, from the start; "
            "the lock steps run in worker threads)"
        )
        self.spans.clear()


# --- the platform -------------------------------------------------------------------------------


def start_platform(port: int, latency_ms: float) -> tuple[subprocess.Popen[str], int]:
    command = [
        sys.executable,
        str(ROOT / "bench" / "fakeapi.py"),
        "--port",
        str(port),
        "--latency-ms",
        str(latency_ms),
        "--max-in-flight",
        str(MAX_CONCURRENCY),
    ]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    line = server.stdout.readline().strip()  # "ready <port>", or "" if it died
    if not line.startswith("ready "):
        stop_platform(server)
        raise BenchError(f"the fake platform did not start (said {line!r})")
    return server, int(line.split()[1])


def stop_platform(server: subprocess.Popen[str]) -> None:
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=5)


def platform_stats(base_url: str) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{base_url}/_stats", timeout=10.0)
    response.raise_for_status()
    tokens: dict[str, dict[str, Any]] = response.json()["tokens"]
    return tokens


def platform_reset(base_url: str) -> None:
    httpx.post(f"{base_url}/_reset", timeout=10.0).raise_for_status()


# --- one timed run ------------------------------------------------------------------------------


@dataclass
class Repeat:
    wall: float  # seconds
    calls: int
    minimum: int
    lower_bound: float  # seconds
    to_first_request: float  # start -> the platform's first request
    http_span: float  # the platform's first request -> its last answer
    after_last_answer: float  # the last answer -> asyncio.run returned
    slowest_source_http: float  # the longest first-request-to-last-answer span of one source
    peak_in_flight: int
    cpu: float  # user + system seconds of this process during the run
    retries: int  # SyncRun.details["retries"], summed
    run_seconds: list[float] = field(default_factory=list)  # SyncRun.details["seconds"]
    observations: int = 0

    @property
    def ratio(self) -> float:
        return self.wall / self.lower_bound


def window_days(args: argparse.Namespace, seeded: Seeded, yesterday: date) -> int:
    if args.backfill:
        return (yesterday - seeded.cycle[0]).days + 1
    return int(args.days)


def timed_run(
    args: argparse.Namespace,
    seeded: Seeded,
    base_url: str,
    yesterday: date,
    profiler: cProfile.Profile | None,
    phases: Phases | None,
) -> Repeat:
    reset_state(seeded, args.backfill)
    platform_reset(base_url)
    run_ids = create_runs(seeded.source_ids)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()  # CLOCK_MONOTONIC: the platform's process reads the same clock
    if profiler is not None:
        profiler.enable()
    try:
        asyncio.run(execute_runs(run_ids))
    except Exception as exc:
        raise BenchError(
            f"execute_runs raised {type(exc).__name__}: {exc} (with more than about 24 sources "
            "at once the engine exhausts its connection pool: see BENCHMARKS.md)"
        ) from exc
    finally:
        if profiler is not None:
            profiler.disable()
    finished = time.monotonic()
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)

    days = window_days(args, seeded, yesterday)
    per_source_minimum = args.krs * math.ceil(days / PAGE_DAYS)
    stats = platform_stats(base_url)
    with get_sessionmaker()() as session:
        runs = list(session.scalars(select(SyncRun).where(SyncRun.id.in_(run_ids))))
        failed = [f"run {r.id}: {r.status}: {r.error}" for r in runs if r.status != "succeeded"]
        if failed or len(runs) != len(run_ids):
            raise BenchError("not every run succeeded:\n  " + "\n  ".join(failed))
        calls = retries = 0
        for run in runs:
            token = seeded.tokens[run.data_source_id]
            seen = stats.get(token, {})
            if seen.get("violations", 0):
                raise BenchError(
                    f"source {run.data_source_id} had {seen['violations']} requests over "
                    f"{MAX_CONCURRENCY} in flight"
                )
            retries += int(run.details.get("retries", 0))
            if run.api_calls != seen.get("requests", 0):
                raise BenchError(
                    f"source {run.data_source_id}: SyncRun.api_calls = {run.api_calls} but the "
                    f"platform counted {seen.get('requests', 0)} (the run retried "
                    f"{run.details.get('retries', 0)} attempts: an attempt that timed out or "
                    "failed to connect is counted by the engine, not always by the platform)"
                )
            if run.api_calls > per_source_minimum:
                raise BenchError(
                    f"source {run.data_source_id} made {run.api_calls} calls where "
                    f"{per_source_minimum} distinct (query, page) requests would do"
                )
            window = (yesterday - timedelta(days=days - 1), yesterday)
            if (run.window_from, run.window_to) != window:
                raise BenchError(
                    f"run {run.id} synced {run.window_from}..{run.window_to}, not the "
                    f"{days} days up to {yesterday}"
                )
            if run.observations_written != args.krs * days:
                raise BenchError(
                    f"run {run.id} wrote {run.observations_written} observations, not "
                    f"{args.krs * days}"
                )
            calls += run.api_calls
        observations = check_values(session, run_ids, seeded)
    if observations != len(seeded.source_ids) * args.krs * days:
        raise BenchError(f"{observations} observations carry this repeat's runs")
    if phases is not None:
        phases.report(started)
    mine = [stats[seeded.tokens[s]] for s in seeded.source_ids]
    first = min(s["first_at"] for s in mine)
    last = max(s["last_at"] for s in mine)
    return Repeat(
        wall=finished - started,
        calls=calls,
        minimum=per_source_minimum * len(seeded.source_ids),
        lower_bound=max(r.api_calls for r in runs) * args.latency_ms / 1000 / MAX_CONCURRENCY,
        to_first_request=first - started,
        http_span=last - first,
        after_last_answer=finished - last,
        slowest_source_http=max(s["last_at"] - s["first_at"] for s in mine),
        peak_in_flight=max(s["peak_in_flight"] for s in mine),
        cpu=cpu,
        retries=retries,
        run_seconds=[float(r.details.get("seconds", 0.0)) for r in runs],
        observations=observations,
    )


def check_values(session: Any, run_ids: list[int], seeded: Seeded) -> int:
    """Every observation the runs wrote is the platform's figure for its metric and day."""
    rows = session.execute(
        select(Observation.mapping_id, Observation.date, Observation.value).where(
            Observation.sync_run_id.in_(run_ids)
        )
    ).all()
    for mapping_id, day, value in rows:
        expected = daily_value(seeded.metrics[mapping_id], day)
        if value != expected:
            raise BenchError(f"mapping {mapping_id} on {day}: stored {value}, platform {expected}")
    return len(rows)


@dataclass
class Reference:
    wall: float
    cpu: float
    calls: int


def measure_reference(
    label: str, everything: Callable[[], Awaitable[list[int]]], base_url: str, expected: int
) -> Reference:
    """Run a reference's requests once: its wall and CPU time and the calls the platform saw,
    after checking it kept to 10 in flight per source and read every value."""
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    values = asyncio.run(everything())
    wall = time.monotonic() - started
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    stats = platform_stats(base_url)
    if sum(s["violations"] for s in stats.values()):
        raise BenchError(f"the {label} reference went over 10 requests in flight for a source")
    if sum(values) != expected:
        raise BenchError(f"the {label} reference read {sum(values)} values")
    return Reference(
        wall=wall,
        cpu=(usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime),
        calls=sum(s["requests"] for s in stats.values()),
    )


def httpx_reference(
    args: argparse.Namespace, seeded: Seeded, base_url: str, yesterday: date, days: int
) -> Reference:
    """The same requests through bare httpx, no engine: the floor of the HTTP stack itself.

    One ``httpx.AsyncClient`` per source (10 connections) and, as in the engine, a semaphore of
    10 in front of it (httpcore's pool slows down with many requests queued inside it); every
    (metric, page) fired at once, JSON parsed; no plan, no lock, no retry layer, no write.
    """
    platform_reset(base_url)
    start = (yesterday - timedelta(days=days - 1)).isoformat()
    pages = math.ceil(days / PAGE_DAYS)
    metrics_by_source: dict[int, list[str]] = {}
    for i, source_id in enumerate(seeded.source_ids):
        metrics_by_source[source_id] = [metric_name(i, j) for j in range(args.krs)]

    async def one_source(source_id: int) -> int:
        async with httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {seeded.tokens[source_id]}"},
            limits=httpx.Limits(max_connections=MAX_CONCURRENCY),
            timeout=30.0,
        ) as client:
            slots = asyncio.Semaphore(MAX_CONCURRENCY)

            async def page(metric: str, n: int) -> int:
                async with slots:
                    response = await client.get(
                        f"/v1/metrics/{metric}/daily",
                        params={"from": start, "to": yesterday.isoformat(), "page": n},
                    )
                response.raise_for_status()
                return len(response.json()["data"])

            got = await asyncio.gather(
                *(page(m, n) for m in metrics_by_source[source_id] for n in range(1, pages + 1))
            )
            return sum(got)

    async def everything() -> list[int]:
        return await asyncio.gather(*(one_source(s) for s in seeded.source_ids))

    return measure_reference(
        "httpx", everything, base_url, len(seeded.source_ids) * args.krs * days
    )


def raw_reference(
    args: argparse.Namespace, seeded: Seeded, base_url: str, yesterday: date, days: int
) -> Reference:
    """The same requests over bare asyncio streams: what Python and the platform allow at all.

    Ten keep-alive connections per source, each sending its share of the (metric, page)
    requests one after another, hand-written HTTP/1.1, JSON parsed. It is the floor the
    lower bound is measured against, not something a connector should do.
    """
    platform_reset(base_url)
    port = int(base_url.rsplit(":", 1)[1])
    start = (yesterday - timedelta(days=days - 1)).isoformat()
    pages = math.ceil(days / PAGE_DAYS)

    async def one_source(i: int, source_id: int) -> int:
        todo = [
            f"/v1/metrics/{metric_name(i, j)}/daily?from={start}&to={yesterday}&page={n}"
            for j in range(args.krs)
            for n in range(1, pages + 1)
        ]
        head = f"host: 127.0.0.1\r\nauthorization: Bearer {seeded.tokens[source_id]}\r\n\r\n"

        async def connection() -> int:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            got = 0
            try:
                while todo:
                    writer.write(f"GET {todo.pop()} HTTP/1.1\r\n{head}".encode())
                    lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
                    if not lines[0].startswith(b"HTTP/1.1 200"):
                        raise BenchError(f"raw reference: {lines[0]!r}")
                    length = next(
                        int(line.split(b":")[1])
                        for line in lines
                        if line.lower().startswith(b"content-length:")
                    )
                    got += len(json.loads(await reader.readexactly(length))["data"])
            finally:
                writer.close()
            return got

        return sum(await asyncio.gather(*(connection() for _ in range(MAX_CONCURRENCY))))

    async def everything() -> list[int]:
        return await asyncio.gather(*(one_source(i, s) for i, s in enumerate(seeded.source_ids)))

    return measure_reference("raw", everything, base_url, len(seeded.source_ids) * args.krs * days)


HTTPX_REFERENCE = "bare httpx (no engine)"
REFERENCES: dict[str, Callable[..., Reference]] = {
    HTTPX_REFERENCE: httpx_reference,
    "bare asyncio streams (floor)": raw_reference,
}


# --- report -------------------------------------------------------------------------------------


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def report(
    repeats: list[Repeat],
    references: dict[str, list[Reference]],
    args: argparse.Namespace,
    days: int,
    rss: tuple[float, float],
) -> None:
    header = (
        f"{'repeat':>6} {'wall':>8} {'bound':>7} {'ratio':>6} {'calls':>6} {'->1st':>7} "
        f"{'http':>8} {'slowest':>8} {'tail':>7} {'cpu':>7} {'peak':>4} {'run max':>8}"
    )
    print()
    print(header)
    print("-" * len(header))
    for n, r in enumerate(repeats, start=1):
        print(
            f"{n:>6} {r.wall * 1000:>8.0f} {r.lower_bound * 1000:>7.0f} {r.ratio:>6.2f} "
            f"{r.calls:>6} {r.to_first_request * 1000:>7.0f} {r.http_span * 1000:>8.0f} "
            f"{r.slowest_source_http * 1000:>8.0f} {r.after_last_answer * 1000:>7.0f} "
            f"{r.cpu * 1000:>7.0f} {r.peak_in_flight:>4} {max(r.run_seconds) * 1000:>8.0f}"
        )
    print(
        "(ms; bound = slowest source's calls x latency / 10; ->1st = start to the platform's "
        "first request;\n http = first request to last answer, all sources; slowest = one "
        "source's own http span;\n tail = last answer to the end; cpu = this process's user+sys "
        "time; peak = most requests\n in flight for one source, as the platform saw it; run max "
        "= longest SyncRun.details.seconds)"
    )
    wall = statistics.median(r.wall for r in repeats)
    ratio = statistics.median(r.ratio for r in repeats)
    first = repeats[0]
    print()
    print(
        f"window: {days} days ({math.ceil(days / PAGE_DAYS)} page(s) per query), "
        f"{'backfill' if args.backfill else 'incremental nightly'}, {args.sources} sources x "
        f"{args.krs} queries, {args.latency_ms:g} ms per request, {MAX_CONCURRENCY} in flight "
        "per source"
    )
    cpu = statistics.median(r.cpu for r in repeats)
    print(
        f"engine process cpu: {cpu * 1000:.0f} ms median per sync "
        f"({cpu / first.calls * 1e6:.0f} us per call, DB work and threads included)"
    )
    for label, refs in references.items():
        ref_wall = statistics.median(r.wall for r in refs)
        ref_cpu = statistics.median(r.cpu for r in refs)
        print(
            f"reference, {label}: {ref_wall * 1000:.0f} ms wall, {ref_cpu * 1000:.0f} ms cpu "
            f"({ref_cpu / refs[0].calls * 1e6:.0f} us per call), ratio "
            f"{ref_wall / first.lower_bound:.2f}"
        )
    print(f"peak rss: {rss[0]:.0f} MB before the first sync, {rss[1]:.0f} MB after the last")
    verdicts = [
        ("ratio", ratio <= TARGET_RATIO, f"{ratio:.2f} (target <= {TARGET_RATIO})"),
        ("calls", first.calls <= first.minimum, f"{first.calls} <= {first.minimum}"),
        ("rss", rss[1] < TARGET_RSS_MB, f"{rss[1]:.0f} MB (< {TARGET_RSS_MB:.0f})"),
    ]
    first_request = statistics.median(r.to_first_request for r in repeats)
    verdicts.append(
        (
            "first request",
            first_request * 1000 <= TARGET_FIRST_REQUEST_MS,
            f"{first_request * 1000:.0f} ms (<= {TARGET_FIRST_REQUEST_MS:.0f})",
        )
    )
    httpx_refs = references.get(HTTPX_REFERENCE)
    wall_vs_httpx = cpu_vs_httpx = None
    if httpx_refs:
        wall_vs_httpx = wall / statistics.median(r.wall for r in httpx_refs)
        cpu_vs_httpx = statistics.median(r.cpu / r.calls for r in repeats) / statistics.median(
            r.cpu / r.calls for r in httpx_refs
        )
        verdicts += [
            (
                "wall vs httpx",
                wall_vs_httpx <= TARGET_WALL_VS_HTTPX,
                f"{wall_vs_httpx:.2f} (<= {TARGET_WALL_VS_HTTPX})",
            ),
            (
                "cpu vs httpx",
                cpu_vs_httpx <= TARGET_CPU_VS_HTTPX,
                f"{cpu_vs_httpx:.2f} (<= {TARGET_CPU_VS_HTTPX})",
            ),
        ]
    for name, ok, text in verdicts:
        print(f"target {name}: {'met' if ok else 'MISSED'}: {text}")
    print()
    print(f"nightly sync wall: {wall * 1000:.0f} ms")
    print(f"api calls: {first.calls} calls")
    print(f"minimum calls: {first.minimum} calls")
    print(f"lower bound: {first.lower_bound * 1000:.0f} ms")
    print(f"wall/lower-bound ratio: {ratio:.2f}")
    print(f"peak rss: {rss[1]:.0f} MB")
    print(f"time to first request: {first_request * 1000:.0f} ms")
    if wall_vs_httpx is not None and cpu_vs_httpx is not None:
        print(f"wall ratio (engine/httpx): {wall_vs_httpx:.2f} x")
        print(f"cpu per call ratio (engine/httpx): {cpu_vs_httpx:.2f} x")


def print_profile(profiler: cProfile.Profile, limit: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)
    print(out.getvalue())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", default=DEFAULT_URL, help="re-created on every run")
    parser.add_argument(
        "--sources",
        type=int,
        default=20,
        help="data sources synced at once (default 20; above ~24 the engine's pool runs dry)",
    )
    parser.add_argument("--krs", type=int, default=50, help="key results per source (default 50)")
    parser.add_argument(
        "--days",
        type=int,
        default=NIGHTLY_LOOKBACK + 2,
        help="days of the nightly window: last_synced_day (yesterday - 1) minus lookback_days "
        "(= days - 2) to yesterday; default 5, i.e. lookback_days 3",
    )
    parser.add_argument(
        "--backfill",
        action="store_true",
        help="leave every mapping backfill_pending: each run syncs the cycle so far",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (default 3)")
    parser.add_argument(
        "--send-ahead",
        type=int,
        default=BenchConnector.send_ahead,
        help="requests the connector builds ahead of the engine's 10 slots (default "
        f"{BenchConnector.send_ahead}; 0: build all of them at once and let them queue)",
    )
    parser.add_argument("--latency-ms", type=float, default=50.0, help="platform latency")
    parser.add_argument("--port", type=int, default=0, help="platform port (default: a free one)")
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="skip the references: the same requests through bare httpx, and over bare "
        "asyncio streams, without the engine",
    )
    parser.add_argument(
        "--phases",
        action="store_true",
        help="time the engine's steps (plan, lock, fetch, write) of every run and print them",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="cProfile the event-loop thread of every timed run and print the top N functions "
        "(inflates the timings)",
    )
    args = parser.parse_args(argv)
    for name in ("sources", "krs", "repeat"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.days < 2:
        parser.error("--days must be at least 2 (lookback_days = days - 2)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = normalize_database_url(args.database_url)
    print(f"database: {make_url(url).render_as_string(hide_password=True)}")
    recreate_database(url)
    upgrade(url)
    os.environ["DATABASE_URL"] = url
    os.environ["KRSYNC_ALLOW_PRIVATE_NETWORKS"] = "true"
    os.environ["KRSYNC_SECRET_KEY"] = SecretBox.generate_key()
    os.environ["KRSYNC_SCHEDULER_ENABLED"] = "false"
    reset_engine()
    register()
    BenchConnector.send_ahead = args.send_ahead

    server, port = start_platform(args.port, args.latency_ms)
    base_url = f"http://127.0.0.1:{port}"
    try:
        yesterday = datetime.now(UTC).date() - timedelta(days=1)  # the sources' timezone is UTC
        engine = create_engine(url)
        try:
            seeded = seed(engine, args, base_url, yesterday)
        finally:
            engine.dispose()
        days = window_days(args, seeded, yesterday)
        print(
            f"seeded: cycle {seeded.cycle[0]}..{seeded.cycle[1]}, {len(seeded.source_ids)} "
            f"sources x {args.krs} key results/mappings in {seeded.seconds:.1f}s"
        )
        print(f"platform: {base_url} (bench/fakeapi.py, own process, pid {server.pid})")
        print(f"cpus: {os.cpu_count()}, load average: {load_average()} (before the timed runs)")
        # As the server does once started (app.main freezes its startup heap; the scheduler's
        # syncs run there): a full collection would otherwise walk everything the imports, the
        # migration and the seeding left, and land in whichever run or reference is going.
        gc.collect()
        gc.freeze()
        rss_before = peak_rss_mb()
        profiler = cProfile.Profile() if args.profile else None
        phases = Phases() if args.phases else None
        if phases is not None:
            phases.install()
        repeats: list[Repeat] = []
        for n in range(args.repeat):
            if datetime.now(UTC).date() - timedelta(days=1) != yesterday:
                raise BenchError("the UTC day changed during the benchmark: run it again")
            repeats.append(timed_run(args, seeded, base_url, yesterday, profiler, phases))
            r = repeats[-1]
            print(
                f"repeat {n + 1}: {r.wall * 1000:.0f} ms wall, {r.calls} calls, "
                f"ratio {r.ratio:.2f}, {r.retries} retries, {r.observations} observations checked"
            )
        rss_after = peak_rss_mb()
        references: dict[str, list[Reference]] = {}
        if not args.no_reference:
            for _ in range(args.repeat):
                for label, measure in REFERENCES.items():
                    ref = measure(args, seeded, base_url, yesterday, days)
                    references.setdefault(label, []).append(ref)
        print(f"load average: {load_average()} (after the timed runs)")
    finally:
        stop_platform(server)
    report(repeats, references, args, days, (rss_before, rss_after))
    if profiler is not None:
        print_profile(profiler, args.profile)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        sys.exit(1)
