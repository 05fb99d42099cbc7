"""Notification delivery benchmark: the real dispatcher draining 10,000 pending events.

    .venv/bin/python bench/notify.py [--events 10000] [--channels 50] [--concurrency 20]
        [--latency-ms 50] [--database-url postgresql://postgres@127.0.0.1:5432/krsync_bench_notify]

1. (Re)creates the database (PostgreSQL: dropped and created; ``sqlite:///path``: the file is
   removed) and migrates it to head.
2. Starts a receiver in its own process (so it never competes with the dispatcher for the GIL):
   a keep-alive HTTP/1.1 server on 127.0.0.1 that answers every POST after ``--latency-ms``,
   counts what it got, the most requests it had in flight at once, each event's ``webhook-id``
   (a repeat is a duplicate) and each channel's order (the events carry their number).
3. Creates ``--channels`` signed ``webhook`` channels on it (URLs encrypted as the API stores
   them), each scoped to an owner of its own, and emits ``--events`` events through
   ``app.notify.events.emit``, round-robin over the owners, committed in batches: one delivery
   each, all pending.
4. Times ``dispatch_due(concurrency=...)``, the function behind ``krsync notify run`` and the
   scheduler's job, until nothing is due. Every delivery must be ``delivered`` in the table, the
   receiver must have counted each event exactly once, in order per channel, and never more
   than ``--concurrency`` requests in flight.
5. Prints ``delivery rate: X events/s`` and the floor the receiver sets:
   ``concurrency / latency`` (400 events/s for 20 requests of 50 ms).

Per-channel order means one request in flight per channel, so the concurrency comes from
several channels at once: with fewer channels than ``--concurrency`` the rate is bounded by
``channels / latency``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import BenchError, recreate_database  # noqa: E402

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/krsync_bench_notify"


# --- the receiver (its own process) -------------------------------------------------------------


def _receiver(port: int, latency: float, ready: Any) -> None:
    stats: dict[str, Any] = {"count": 0, "inflight": 0, "max_inflight": 0, "duplicates": 0}
    seen: set[str] = set()
    last: dict[str, int] = {}
    stats["out_of_order"] = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if method == "GET":
                    answer = json.dumps(stats).encode()
                else:
                    stats["inflight"] += 1
                    stats["max_inflight"] = max(stats["max_inflight"], stats["inflight"])
                    await asyncio.sleep(latency)
                    stats["inflight"] -= 1
                    stats["count"] += 1
                    msg_id = headers.get("webhook-id", "")
                    if msg_id in seen:
                        stats["duplicates"] += 1
                    seen.add(msg_id)
                    n = json.loads(body)["data"]["n"]
                    if n <= last.get(path, -1):
                        stats["out_of_order"] += 1
                    last[path] = n
                    answer = b""
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(answer)}\r\n\r\n".encode()
                    + answer
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- seeding and timing --------------------------------------------------------------------------


def _prepare_database(url: str) -> str:
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        recreate_database(url)
    os.environ["DATABASE_URL"] = url
    from app.core.db import reset_engine
    from app.core.migrate import upgrade

    reset_engine()
    upgrade(url)
    return url


def _seed(receiver_url: str, channels: int, events: int) -> None:
    from app.core.db import session_scope
    from app.core.vault import get_secret_box
    from app.models import NotificationChannel
    from app.notify.events import emit
    from app.notify.service import new_signing_secret

    box = get_secret_box()
    if box is None:
        raise BenchError("KRSYNC_SECRET_KEY is not set")
    with session_scope() as session:
        for k in range(channels):
            stored = {"url": f"{receiver_url}/hook/{k}", "signing_secret": new_signing_secret()}
            session.add(
                NotificationChannel(
                    name=f"bench {k}",
                    kind="webhook",
                    config={},
                    secrets_encrypted=box.encrypt_json(stored),
                    events=["key_result.status_changed"],
                    scope={"owner": f"owner-{k}"},
                    enabled=True,
                )
            )
    batch = 1000
    for start in range(0, events, batch):
        with session_scope() as session:
            for n in range(start, min(start + batch, events)):
                k = n % channels
                data = {
                    "key_result": {"id": n, "title": f"KR {n}", "owner": f"owner-{k}"},
                    "old_status": "on_track",
                    "new_status": "at_risk",
                    "progress": {"progress": 0.4, "current_value": 40, "target_value": 100},
                    "n": n // channels,
                }
                scope = {"owner": f"owner-{k}"}
                if emit(session, "key_result.status_changed", data, scope) is None:
                    raise BenchError("an event found no channel")


def _check(receiver_url: str, events: int, concurrency: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from app.core.db import session_scope
    from app.models import NotificationDelivery

    stats: dict[str, Any] = httpx.get(f"{receiver_url}/stats").json()
    with session_scope() as session:
        by_status = dict(
            session.execute(
                select(NotificationDelivery.status, func.count()).group_by(
                    NotificationDelivery.status
                )
            ).all()
        )
    if by_status != {"delivered": events}:
        raise BenchError(f"not every delivery is delivered: {by_status}")
    if stats["count"] != events or stats["duplicates"]:
        raise BenchError(f"the receiver counted {stats['count']}, {stats['duplicates']} twice")
    if stats["out_of_order"]:
        raise BenchError(f"{stats['out_of_order']} events arrived out of their channel's order")
    if stats["max_inflight"] > concurrency:
        raise BenchError(f"{stats['max_inflight']} requests in flight, over {concurrency}")
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--database-url", default=DEFAULT_DB)
    args = parser.parse_args()

    os.environ.setdefault("KRSYNC_SECRET_KEY", Fernet.generate_key().decode())
    os.environ["KRSYNC_ALLOW_PRIVATE_NETWORKS"] = "true"
    os.environ["KRSYNC_LOG_LEVEL"] = "WARNING"
    url = _prepare_database(args.database_url)

    port = _free_port()
    ready = multiprocessing.Event()
    receiver = multiprocessing.Process(
        target=_receiver, args=(port, args.latency_ms / 1000, ready), daemon=True
    )
    receiver.start()
    if not ready.wait(10):
        raise BenchError("the receiver did not start")
    receiver_url = f"http://127.0.0.1:{port}"
    try:
        started = time.perf_counter()
        _seed(receiver_url, args.channels, args.events)
        seeded = time.perf_counter() - started
        print(f"seeded {args.events} events over {args.channels} channels in {seeded:.1f} s")

        from app.notify.dispatch import dispatch_due

        started, cpu = time.perf_counter(), time.process_time()
        if os.environ.get("BENCH_PROFILE"):
            import cProfile

            with cProfile.Profile() as prof:
                report = dispatch_due(concurrency=args.concurrency)
            prof.dump_stats(os.environ["BENCH_PROFILE"])
        else:
            report = dispatch_due(concurrency=args.concurrency)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        stats = _check(receiver_url, args.events, args.concurrency)
    finally:
        receiver.terminate()
    if report.delivered != args.events:
        raise BenchError(f"the dispatcher reports {report.delivered} delivered")
    floor = min(args.concurrency, args.channels) / (args.latency_ms / 1000)
    database = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    print(
        f"{database}: {args.events} events to {args.channels} channels in {elapsed:.2f} s; "
        f"at most {stats['max_inflight']} requests in flight; receiver's ceiling {floor:.0f}/s"
    )
    print(f"dispatcher cpu per event: {cpu / args.events * 1e6:.0f} us")
    print(f"delivery rate: {args.events / elapsed:.0f} events/s")


if __name__ == "__main__":
    main()
