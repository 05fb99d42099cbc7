"""Event evaluation benchmark: the hourly job's status evaluation over 1,000 key results.

    .venv/bin/python bench/evaluate.py [--objectives 250] [--runs 5]
        [--database-url postgresql://postgres@127.0.0.1:5432/krsync_bench_evaluate]

1. (Re)creates and migrates the database and seeds it as ``bench/api.py`` does: one cycle of
   2026, ``--objectives`` x 4 key results (``sum``, ``last`` scored on ``each`` of 3 groups,
   ``avg``, ``ratio``; 1,000 for 250 objectives), a year of daily observations each, the
   monthly reductions rebuilt, ``VACUUM ANALYZE``; and one signed webhook channel that wants
   every event, so that announcing is part of what is timed.
2. Freezes krsync's clock at 2026-11-15 12:00 UTC and runs ``evaluate_all`` (the function
   behind the scheduler's hourly job and ``krsync notify evaluate``) once: the first
   evaluation records every key result's status (``first run``).
3. Times ``--runs`` more evaluations with nothing changed, the daily case: every key result's
   progress computed in batched statements, compared with the recorded status, no event
   (``evaluation of N key results``, the median).
4. Rewrites every recorded status to another one and times one evaluation that announces all
   of them (``every status changed``): the worst case, one event per key result.

Prints ``evaluation of 1000 key results: X ms``; fails loudly if a key result was left out or
an event is missing or extra.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import create_engine, func, select, update

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.api import AS_OF, seed  # noqa: E402
from bench.common import BenchError, recreate_database  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/krsync_bench_evaluate"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--objectives", type=int, default=250)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    import os

    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("KRSYNC_SECRET_KEY", Fernet.generate_key().decode())
    os.environ["KRSYNC_TIMEZONE"] = "UTC"

    from app.core import clock
    from app.core.db import get_sessionmaker, reset_engine
    from app.core.migrate import upgrade
    from app.core.settings import normalize_database_url
    from app.core.vault import encrypt_credentials
    from app.models import KeyResultEventState, NotificationChannel, NotificationEvent
    from app.notify.evaluate import evaluate_all
    from app.notify.events import EVENT_TYPES

    url = normalize_database_url(args.database_url)
    if not url.startswith("postgresql"):
        raise BenchError("the target is PostgreSQL: pass a postgresql:// URL")
    recreate_database(url)
    upgrade(url)
    engine = create_engine(url)
    seeded = seed(engine, args.objectives, random.Random(7))
    engine.dispose()
    count = len(seeded.key_result_ids)
    print(f"seeded {count} key results, {seeded.observations} observations")
    reset_engine()
    with get_sessionmaker()() as s, s.begin():
        s.add(
            NotificationChannel(
                name="bench",
                kind="webhook",
                config={},
                secrets_encrypted=encrypt_credentials(
                    {"url": "http://127.0.0.1:9/bench", "signing_secret": "whsec_" + "A" * 43}
                ),
                events=list(EVENT_TYPES),
                enabled=True,
            )
        )

    moment = datetime(AS_OF.year, AS_OF.month, AS_OF.day, 12, tzinfo=UTC)
    clock.utcnow = lambda: moment  # type: ignore[assignment]

    def events() -> int:
        with get_sessionmaker()() as s:
            return int(s.scalar(select(func.count()).select_from(NotificationEvent)) or 0)

    started = time.perf_counter()
    first = evaluate_all()
    first_ms = (time.perf_counter() - started) * 1000
    if first.statuses.evaluated != count:
        raise BenchError(f"evaluated {first.statuses.evaluated} of {count} key results")
    print(f"first run (records {count} statuses): {first_ms:.0f} ms")
    baseline = events()

    timings = []
    for _ in range(args.runs):
        started = time.perf_counter()
        report = evaluate_all()
        timings.append((time.perf_counter() - started) * 1000)
        if report.statuses.evaluated != count or report.statuses.changed:
            raise BenchError(f"an unchanged evaluation reported {report.statuses}")
    if events() != baseline:
        raise BenchError("an evaluation with nothing changed wrote events")
    print("runs: " + " / ".join(f"{t:.0f}" for t in timings) + " ms")

    with get_sessionmaker()() as s, s.begin():
        # "no_baseline" is a status none of the seeded key results has: all of them change.
        s.execute(update(KeyResultEventState).values(status="no_baseline", changed_at=None))
    started = time.perf_counter()
    report = evaluate_all()
    changed_ms = (time.perf_counter() - started) * 1000
    if report.statuses.changed != count or events() - baseline < count:
        raise BenchError(f"every status changed, but {report.statuses.changed} were announced")
    print(f"every status changed ({count} events written): {changed_ms:.0f} ms")
    print(f"evaluation of {count} key results: {statistics.median(timings):.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
