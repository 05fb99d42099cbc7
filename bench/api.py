"""API latency benchmark: a seeded PostgreSQL database, a real uvicorn server, a concurrent client.

    .venv/bin/python bench/api.py [--requests 400] [--concurrency 8]

1. (Re)creates the benchmark database and migrates it to head.
2. Seeds one cycle (2026-01-01..2026-12-31) with 60 objectives x 4 key results, each fed by
   365 days of check-in style observations (mapping_id NULL): a `sum` KR, a `last` KR scored on
   `each` of 3 groups, an `avg` KR and a `ratio` KR (numerator and denominator rows).
3. Starts `uvicorn app.main:app` (1 worker) and waits for /readyz.
4. Warms up, then times `GET /api/v1/dashboard` and `GET /api/v1/key-results/{id}` as of
   2026-11-15 with `--concurrency` parallel clients; every answer must be a 200 and the dashboard
   must hold every objective. Then uncached reads one at a time: dashboards and key results
   each for a new day, and the browser pages `/key-results/{id}` (the four of one objective in
   turn) and `/sources/{id}` (a source seeded with a year of nightly runs), which no cache serves.
5. Prints a table and ends with `label: value unit` headline lines.

The server is stopped on the way out, error or not; the database is left for inspection (the
next run re-creates it).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, insert, make_url, text

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.core.migrate import upgrade  # noqa: E402
from app.core.settings import normalize_database_url  # noqa: E402
from app.models import Cycle, DataSource, KeyResult, Objective, SyncRun, months  # noqa: E402
from bench.common import BenchError, recreate_database  # noqa: E402
from bench.loadclient import LoadClient, Reply  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/krsync_bench"
CYCLE_START = date(2026, 1, 1)
CYCLE_END = date(2026, 12, 31)
AS_OF = date(2026, 11, 15)
KRS_PER_OBJECTIVE = 4
PLATFORMS = ("linkedin", "instagram", "x")
TEAMS = ("growth", "brand", "content", "demand-gen", "social", "lifecycle")


@dataclass
class Seeded:
    cycle_id: int
    objective_ids: list[int]
    key_result_ids: list[int]
    observations: int
    seconds: float
    source_id: int


def _kr_rows(objective_id: int, i: int, rng: random.Random) -> list[dict[str, Any]]:
    """Four key results of one objective; the shapes marketing OKRs typically take."""
    leads_per_day = 30 + (i % 7) * 5
    return [
        {
            "objective_id": objective_id,
            "title": f"Generate {leads_per_day * 365:,} marketing-qualified leads",
            "owner": f"owner{i}@example.com",
            "unit": "leads",
            "aggregation": "sum",
            "direction": "increase",
            "start_value": 0.0,
            # 0.85..1.25 of the expected yearly total: a mix of on-track, at-risk and off-track.
            "target_value": round(leads_per_day * 365 * rng.uniform(0.85, 1.25)),
            "weight": 2.0,
        },
        {
            "objective_id": objective_id,
            "title": "Reach 14,000 followers on each social platform",
            "owner": f"owner{i}@example.com",
            "unit": "followers",
            "aggregation": "last",
            "group_rule": "each",
            "direction": "increase",
            "start_value": 10_000.0,
            "target_value": 14_000.0,
        },
        {
            "objective_id": objective_id,
            "title": "Raise average daily sessions from 1,200 to 1,500",
            "owner": f"owner{i}@example.com",
            "unit": "sessions",
            "aggregation": "avg",
            "direction": "increase",
            "start_value": 1_200.0,
            "target_value": 1_500.0,
        },
        {
            "objective_id": objective_id,
            "title": "Convert at least 6% of leads into customers",
            "owner": f"owner{i}@example.com",
            "unit": "ratio",
            "aggregation": "ratio",
            "direction": "at_least",
            "target_value": 0.06,
        },
    ]


def _observation_rows(
    kr_ids: list[int], i: int, rng: random.Random, recorded_at: datetime
) -> list[tuple[int, str, str, date, float, datetime]]:
    """(key_result_id, group, role, date, value, recorded_at) for every day of the cycle."""
    sum_kr, each_kr, avg_kr, ratio_kr = kr_ids
    leads_per_day = 30 + (i % 7) * 5
    followers = {p: rng.uniform(9_600, 10_400) for p in PLATFORMS}
    growth = {p: rng.uniform(6.0, 16.0) for p in PLATFORMS}
    sessions_slope = rng.uniform(0.3, 1.2)
    rows: list[tuple[int, str, str, date, float, datetime]] = []
    days = (CYCLE_END - CYCLE_START).days + 1
    for n in range(days):
        day = CYCLE_START + timedelta(days=n)
        season = 0.6 if day.weekday() >= 5 else 1.1  # weekends are quiet
        leads = max(0.0, round(rng.gauss(leads_per_day * season, leads_per_day * 0.2)))
        rows.append((sum_kr, "", "value", day, leads, recorded_at))
        for p in PLATFORMS:
            followers[p] += growth[p] + rng.gauss(0, 4)
            rows.append((each_kr, p, "value", day, round(followers[p]), recorded_at))
        sessions = 1_150 + sessions_slope * n + rng.gauss(0, 60)
        rows.append((avg_kr, "", "value", day, round(sessions), recorded_at))
        denominator = max(1.0, round(rng.gauss(200 * season, 25)))
        numerator = round(denominator * rng.uniform(0.035, 0.08))
        rows.append((ratio_kr, "", "numerator", day, numerator, recorded_at))
        rows.append((ratio_kr, "", "denominator", day, denominator, recorded_at))
    return rows


def seed(engine: Engine, objectives: int, rng: random.Random) -> Seeded:
    """Core executemany for the definitions, COPY for the observations."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    with engine.begin() as conn:
        cycle_id = conn.execute(
            insert(Cycle).returning(Cycle.id),
            {"name": "2026", "start_date": CYCLE_START, "end_date": CYCLE_END},
        ).scalar_one()
        obj_rows = [
            {
                "title": f"Objective {i + 1}: grow {TEAMS[i % len(TEAMS)]} pipeline",
                "description": "Seeded by bench/api.py",
                "cycle_id": cycle_id,
                "owner": f"owner{i}@example.com",
                "level": "company" if i < 6 else "team",
                "team": TEAMS[i % len(TEAMS)],
            }
            for i in range(objectives)
        ]
        objective_ids = list(
            conn.execute(
                insert(Objective).returning(Objective.id, sort_by_parameter_order=True), obj_rows
            ).scalars()
        )
        kr_rows = [row for i, oid in enumerate(objective_ids) for row in _kr_rows(oid, i, rng)]
        # executemany needs the same keys in every row.
        keys = {k for row in kr_rows for k in row}
        kr_rows = [{k: row.get(k) for k in keys} for row in kr_rows]
        for row in kr_rows:
            row["group_rule"] = row["group_rule"] or "combine"
            row["weight"] = row["weight"] or 1.0
        key_result_ids = list(
            conn.execute(
                insert(KeyResult).returning(KeyResult.id, sort_by_parameter_order=True), kr_rows
            ).scalars()
        )
        observations = 0
        raw = conn.connection.driver_connection
        assert raw is not None
        with (
            raw.cursor() as cursor,
            cursor.copy(
                'COPY observations (key_result_id, "group", role, date, value, recorded_at) '
                "FROM STDIN"
            ) as copy,
        ):
            for i in range(objectives):
                ids = key_result_ids[i * KRS_PER_OBJECTIVE : (i + 1) * KRS_PER_OBJECTIVE]
                for obs in _observation_rows(ids, i, rng, now):
                    copy.write_row(obs)
                    observations += 1
        # COPY goes round the Session, whose hooks keep the monthly reductions: made here.
        months.rebuild(conn)
        source_id = _seed_source(conn, now)
    # What autovacuum would have done on a database that has been running for a while.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    return Seeded(
        cycle_id,
        objective_ids,
        key_result_ids,
        observations,
        time.perf_counter() - started,
        source_id,
    )


def _seed_source(conn: Any, now: datetime) -> int:
    """A HubSpot source with a year of nightly runs behind it, for the source page."""
    source_id: int = conn.execute(
        insert(DataSource).returning(DataSource.id),
        {
            "name": "HubSpot (bench)",
            "connector": "hubspot",
            "config": {},
            "state": {},
            "schedule": "0 3 * * *",
            "timezone": "Europe/Paris",
            "lookback_days": 7,
            "last_synced_day": now.date() - timedelta(days=1),
            "last_success_at": now,
        },
    ).scalar_one()
    runs = []
    for n in range(365):
        started = now - timedelta(days=n, hours=1)
        day = started.date() - timedelta(days=1)
        failed = n % 30 == 7
        runs.append(
            {
                "data_source_id": source_id,
                "trigger": "schedule",
                "status": "failed" if failed else "succeeded",
                "window_from": day - timedelta(days=6),
                "window_to": day,
                "started_at": started,
                "finished_at": started + timedelta(seconds=40),
                "api_calls": 120,
                "observations_written": 0 if failed else 280,
                "warnings": ["deals.count: 2 days restated"] if n % 9 == 0 else [],
                "details": {},
                "error": "HTTP 429 from api.hubapi.com after 5 attempts" if failed else None,
                "owner": None,
                "created_at": started,
                "updated_at": started,
            }
        )
    conn.execute(insert(SyncRun), runs)
    return source_id


# --- server -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    url: str, port: int, admin_key: str, sql_echo: bool, workers: int = 1
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "KRSYNC_ADMIN_KEY": admin_key,
        "KRSYNC_SCHEDULER_ENABLED": "false",
        "KRSYNC_SQL_ECHO": "true" if sql_echo else "false",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env)


def wait_ready(base_url: str, server: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchError(f"the server exited with code {server.returncode} before it was ready")
        try:
            response = httpx.get(f"{base_url}/readyz", timeout=2.0)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.TransportError as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise BenchError(f"/readyz not 200 after {timeout:.0f}s (last: {last})")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=5)


# --- measurement --------------------------------------------------------------------------------


@dataclass
class Result:
    label: str
    latencies: list[float]  # seconds, sorted
    wall: float
    concurrency: int

    def percentile(self, p: float) -> float:
        """Nearest rank: the smallest value with at least p% of the samples at or below it."""
        rank = max(1, math.ceil(p / 100 * len(self.latencies)))
        return self.latencies[rank - 1]

    @property
    def median_ms(self) -> float:
        return self.percentile(50) * 1000

    @property
    def p99_ms(self) -> float:
        return self.percentile(99) * 1000

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall


Check = Callable[[Reply], None]


async def run_load(
    client: LoadClient, label: str, path: str, total: int, concurrency: int, check: Check
) -> Result:
    """`concurrency` workers share one queue of `total` requests; each one is timed alone."""
    remaining = iter(range(total))
    latencies: list[float] = []

    async def worker() -> None:
        for _ in remaining:  # one iterator shared by every worker: each request once
            t0 = time.perf_counter()
            response = await client.get(path)
            latencies.append(time.perf_counter() - t0)
            check(response)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    return Result(label, sorted(latencies), wall, concurrency)


def expect_ok(response: Reply) -> None:
    if response.status_code != 200:
        raise BenchError(
            f"GET {response.url} answered {response.status_code}: {response.text[:500]}"
        )


def dashboard_checker(objectives: int) -> Check:
    """Validate the JSON in full once per distinct body size; identical bodies skip the parse."""
    seen_sizes: set[int] = set()

    def check(response: Reply) -> None:
        expect_ok(response)
        size = len(response.content)
        if size in seen_sizes:
            return
        body = response.json()
        found = body.get("objectives", [])
        if len(found) != objectives:
            raise BenchError(f"the dashboard holds {len(found)} objectives, not {objectives}")
        for obj in found:
            if obj.get("progress") is None or len(obj.get("key_results", [])) != 4:
                raise BenchError(f"objective {obj.get('id')} lacks progress or key results")
            for kr in obj["key_results"]:
                progress = kr.get("progress")
                if progress is None or progress["status"] in ("no_data", "no_baseline"):
                    raise BenchError(f"key result {kr['id']} has no progress: {progress}")
        seen_sizes.add(size)

    return check


def key_result_checker(kr_id: int) -> Check:
    seen_sizes: set[int] = set()

    def check(response: Reply) -> None:
        expect_ok(response)
        size = len(response.content)
        if size in seen_sizes:
            return
        body = response.json()
        if body.get("id") != kr_id or body.get("progress") is None:
            raise BenchError(f"key result {kr_id} read lacks its progress: {body}")
        seen_sizes.add(size)

    return check


async def measure(
    base_url: str, admin_key: str, args: argparse.Namespace, seeded: Seeded
) -> list[Result]:
    kr_id = seeded.key_result_ids[0]
    dashboard = f"/api/v1/dashboard?as_of={AS_OF.isoformat()}"
    key_result = f"/api/v1/key-results/{kr_id}?as_of={AS_OF.isoformat()}"
    check_dashboard = dashboard_checker(len(seeded.objective_ids))
    check_kr = key_result_checker(kr_id)
    async with LoadClient(
        base_url, {"Authorization": f"Bearer {admin_key}"}, args.concurrency
    ) as client:
        # Warm-up: connections, the SQL compilation cache, PostgreSQL's buffers and plans.
        await run_load(client, "warm-up", dashboard, args.warmup, args.concurrency, check_dashboard)
        await run_load(client, "warm-up", key_result, args.warmup * 5, args.concurrency, check_kr)
        results = [
            await run_load(
                client, "dashboard", dashboard, args.requests, args.concurrency, check_dashboard
            ),
            await run_load(
                client, "key-result", key_result, args.kr_requests, args.concurrency, check_kr
            ),
        ]
        results.append(await cold_dashboards(client, args.cold, check_dashboard))
        results.append(await cold_key_results(client, kr_id, args.cold, check_kr))
        # The browser pages are never cached: each read below computes the page anew. The key
        # results of one objective in turn, one of each aggregation the bench seeds.
        kr_pages = [f"/key-results/{k}" for k in seeded.key_result_ids[:KRS_PER_OBJECTIVE]]
        source_page = [f"/sources/{seeded.source_id}"]
        for label, paths in (("kr page", kr_pages), ("source page", source_page)):
            await cold_pages(client, "warm-up", paths, args.warmup, check_page)
            results.append(await cold_pages(client, label, paths, args.cold, check_page))
        if not args.no_floor:
            # The stack's floor: auth, a session and one primary-key read, no progress maths.
            floor = f"/api/v1/cycles/{seeded.cycle_id}"
            await run_load(client, "warm-up", floor, args.warmup * 5, args.concurrency, expect_ok)
            results.append(
                await run_load(
                    client, "cycle (ref)", floor, args.kr_requests, args.concurrency, expect_ok
                )
            )
    return results


async def cold_dashboards(client: LoadClient, n: int, check: Check) -> Result:
    """One at a time, each for a different day: every answer is computed, none is cached.

    The hot figures above are what dashboards see between writes (the progress cache answers);
    these are what the first reader after a nightly sync waits for.
    """
    latencies: list[float] = []
    started = time.perf_counter()
    for i in range(n):
        day = AS_OF - timedelta(days=i + 1)
        t = time.perf_counter()
        response = await client.get(f"/api/v1/dashboard?as_of={day.isoformat()}")
        latencies.append(time.perf_counter() - t)
        check(response)
    return Result("dash (cold)", sorted(latencies), time.perf_counter() - started, 1)


async def cold_key_results(client: LoadClient, kr_id: int, n: int, check: Check) -> Result:
    """A key-result page right after a check-in: one at a time, each day new, none cached."""
    latencies: list[float] = []
    started = time.perf_counter()
    for i in range(n):
        day = AS_OF - timedelta(days=i + 1)
        t = time.perf_counter()
        response = await client.get(f"/api/v1/key-results/{kr_id}?as_of={day.isoformat()}")
        latencies.append(time.perf_counter() - t)
        check(response)
    return Result("kr (cold)", sorted(latencies), time.perf_counter() - started, 1)


def check_page(response: Reply) -> None:
    """A 200 with the page's HTML, not a sign-in redirect or a refusal page."""
    expect_ok(response)
    if b"<html" not in response.content[:300] or b"No such" in response.content:
        raise BenchError(f"GET {response.url} is not the page: {response.text[:300]}")


async def cold_pages(
    client: LoadClient, label: str, paths: list[str], n: int, check: Check
) -> Result:
    """One at a time, taking `paths` in turn: what a person waits for after a write."""
    latencies: list[float] = []
    started = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        response = await client.get(paths[i % len(paths)])
        latencies.append(time.perf_counter() - t)
        check(response)
    return Result(label, sorted(latencies), time.perf_counter() - started, 1)


# --- report -------------------------------------------------------------------------------------


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def report(results: list[Result], seeded: Seeded) -> None:
    header = (
        f"{'endpoint':<12} {'requests':>8} {'conc':>4} {'min':>8} {'median':>8} {'p90':>8} "
        f"{'p99':>8} {'max':>8} {'req/s':>8}"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.label:<12} {len(r.latencies):>8} {r.concurrency:>4} "
            f"{r.latencies[0] * 1000:>8.1f} {r.median_ms:>8.1f} {r.percentile(90) * 1000:>8.1f} "
            f"{r.p99_ms:>8.1f} {r.latencies[-1] * 1000:>8.1f} {r.throughput:>8.1f}"
        )
    print("(latencies in ms; percentiles by nearest rank; 'cycle (ref)' is the stack's floor)")
    print()
    by_label = {r.label: r for r in results}
    for label in ("dashboard", "key-result"):
        print(f"{label} median: {by_label[label].median_ms:.1f} ms")
        print(f"{label} p99: {by_label[label].p99_ms:.1f} ms")
    print(f"dashboard cold median: {by_label['dash (cold)'].median_ms:.1f} ms")
    print(f"dashboard cold p99: {by_label['dash (cold)'].p99_ms:.1f} ms")
    print(f"key-result cold median: {by_label['kr (cold)'].median_ms:.1f} ms")
    print(f"key-result cold p99: {by_label['kr (cold)'].p99_ms:.1f} ms")
    for label in ("kr page", "source page"):
        print(f"{label} cold median: {by_label[label].median_ms:.1f} ms")
        print(f"{label} cold p99: {by_label[label].p99_ms:.1f} ms")
    for label in ("dashboard", "key-result"):
        print(f"{label} throughput: {by_label[label].throughput:.1f} req/s")
    print(f"observations: {seeded.observations} rows")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", default=DEFAULT_URL, help="re-created on every run")
    parser.add_argument(
        "--requests", type=int, default=400, help="timed dashboard requests (default 400)"
    )
    parser.add_argument(
        "--kr-requests",
        type=int,
        default=None,
        help="timed key-result requests (default 5 x --requests)",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="parallel clients (default 8)")
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes (default 1)"
    )
    parser.add_argument(
        "--cold",
        type=int,
        default=15,
        help="uncached dashboard and key-result reads, one at a time (default 15)",
    )
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument(
        "--warmup", type=int, default=16, help="dashboard warm-up requests (x5 for key results)"
    )
    parser.add_argument(
        "--no-floor",
        action="store_true",
        help="skip the reference row (GET /api/v1/cycles/{id}: the stack's floor)",
    )
    parser.add_argument("--objectives", type=int, default=60, help="objectives to seed")
    parser.add_argument("--seed", type=int, default=20261115, help="random seed of the data")
    parser.add_argument(
        "--sql-echo", action="store_true", help="run the server with KRSYNC_SQL_ECHO=true"
    )
    args = parser.parse_args(argv)
    if args.kr_requests is None:
        args.kr_requests = 5 * args.requests
    for name in ("requests", "kr_requests", "concurrency", "objectives"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = normalize_database_url(args.database_url)
    print(f"database: {make_url(url).render_as_string(hide_password=True)}")
    recreate_database(url)
    upgrade(url)
    engine = create_engine(url)
    try:
        seeded = seed(engine, args.objectives, random.Random(args.seed))
        with engine.connect() as conn:
            total = conn.scalar(text("SELECT count(*) FROM observations"))
    finally:
        engine.dispose()
    if total != seeded.observations:
        raise BenchError(f"wrote {seeded.observations} observations but the table holds {total}")
    print(
        f"seeded: {len(seeded.objective_ids)} objectives, {len(seeded.key_result_ids)} key "
        f"results, {seeded.observations} observations in {seeded.seconds:.1f}s"
    )

    port = args.port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    admin_key = secrets.token_urlsafe(32)
    server = start_server(url, port, admin_key, args.sql_echo, args.workers)
    try:
        wait_ready(base_url, server)
        print(f"server: {base_url} (uvicorn, {args.workers} worker(s)), as_of={AS_OF.isoformat()}")
        print(f"cpus: {os.cpu_count()}, load average: {load_average()} (before the timed runs)")
        # The seeding left this process a large heap: frozen, a full collection in the client
        # can't stall eight requests at once and be counted as the server's latency.
        gc.collect()
        gc.freeze()
        results = asyncio.run(measure(base_url, admin_key, args, seeded))
    finally:
        stop_server(server)
    report(results, seeded)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        sys.exit(1)
