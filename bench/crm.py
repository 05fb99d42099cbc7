"""CRM benchmark: a quarter's daily won deals, by krsync's `hubspot` connector and by dlt.

    make bench-crm        (installs the `bench` extra, dlt, then runs this)
    .venv/bin/python bench/crm.py [--repeat 3] [--deals 20000] [--won-share 0.08]
        [--latency-ms 50] [--sweep 0.05,0.10,0.20,0.40]

The platform is bench/hubspotapi.py, run as its own process: HubSpot's CRM v3 deal search and
deal list with their page sizes (200 and 100), the search's 10,000-result cap, 5 searches a
second and 190 calls per 10 seconds, and a 50 ms latency on every call. It holds ``--deals``
deals created over 2026-Q3, ``--won-share`` of them closed won within the quarter.

The question, as a marketing key result asks it: how many deals were won on each day of the
quarter (``closedate`` in UTC, ``dealstage`` = ``closedwon``)?

- krsync: the `hubspot` connector's ``fetch`` of one ``deals.count`` mapping (``date_property``
  ``closedate``, filter ``dealstage eq closedwon``) over the quarter, on the HTTP client the sync
  engine builds for a source (retries, the 4 searches a second the connector asks for, the
  private-network guard opened for 127.0.0.1). It searches server-side and picks paging or one
  total a day, whichever costs fewer calls.
- dlt: what a user reaches for instead. dlt's ``rest_api`` source configured for HubSpot's deal
  list (bearer token, ``limit=100``, the two properties, cursor ``paging.next.after``), every
  record iterated and the won ones counted by day. dlt's own retries handle 429s.

Each client runs ``--repeat`` times against a reset server; both daily tallies must equal the
figures computed from the generated deals, or the benchmark fails. The calls are what the server
counted (429s included). ``--sweep`` reruns krsync alone against servers with other won shares:
dlt's calls don't depend on it (it pages every deal).

Prints each run, then ``label: value unit`` headline lines: calls of each, their ratio, median
wall times and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ["KRSYNC_ALLOW_PRIVATE_NETWORKS"] = "true"  # the platform listens on 127.0.0.1
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")  # nothing leaves this machine

from app.sync.connect import connector_from, open_connector  # noqa: E402
from bench.common import BenchError  # noqa: E402
from bench.hubspotapi import make_deals, quarter_end, won_by_day  # noqa: E402
from connectors.base import Filter, MetricQuery, Window  # noqa: E402
from connectors.hubspot.connector import HubSpotConnector  # noqa: E402

QUARTER = date(2026, 7, 1)
TOKEN = "pat-na1-bench-crm"


@dataclass
class Run:
    client: str
    calls: int
    rate_limited: int
    wall: float


@contextmanager
def platform(deals: int, won_share: float, latency_ms: float) -> Iterator[str]:
    """bench/hubspotapi.py in its own process, for as long as the block lasts: its URL."""
    command = [
        sys.executable,
        str(ROOT / "bench" / "hubspotapi.py"),
        f"--deals={deals}",
        f"--won-share={won_share}",
        f"--latency-ms={latency_ms}",
        f"--quarter={QUARTER.isoformat()}",
        f"--token={TOKEN}",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().split()
        if len(line) != 2 or line[0] != "ready":
            raise BenchError(f"the HubSpot-shaped server did not start: {line}")
        yield f"http://127.0.0.1:{line[1]}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def server_calls(url: str) -> tuple[int, int]:
    stats = httpx.get(f"{url}/_stats").json()
    return stats["search"] + stats["list"] + stats["other"], stats["rate_limited"]


def reset(url: str) -> None:
    httpx.post(f"{url}/_reset").raise_for_status()


async def krsync_fetch(url: str) -> dict[date, int]:
    cls = HubSpotConnector
    built = connector_from(cls, {"base_url": url}, {"access_token": TOKEN}, name="bench-crm")
    won = (Filter(field="dealstage", op="eq", value="closedwon"),)
    params = cls.validate_query("deals.count", {"date_property": "closedate"}, won, "sum")
    query = MetricQuery("won", "deals.count", params, won)
    last = quarter_end(QUARTER)
    async with open_connector(built, today=last + timedelta(days=1)) as connector:
        result = await connector.fetch([query], Window(QUARTER, last))
    if result.query_errors or result.warnings:
        raise BenchError(f"krsync's fetch reported {result.query_errors or result.warnings}")
    return {v.date: int(v.value) for v in result.values}


def dlt_fetch(url: str) -> dict[date, int]:
    from dlt.sources.rest_api import rest_api_resources

    config: Any = {
        "client": {"base_url": url, "auth": {"type": "bearer", "token": TOKEN}},
        "resources": [
            {
                "name": "deals",
                "endpoint": {
                    "path": "crm/v3/objects/deals",
                    "params": {"limit": 100, "properties": "closedate,dealstage"},
                    "data_selector": "results",
                    "paginator": {
                        "type": "cursor",
                        "cursor_path": "paging.next.after",
                        "cursor_param": "after",
                    },
                },
            }
        ],
    }
    (deals,) = rest_api_resources(config)
    last = quarter_end(QUARTER)
    counts: dict[date, int] = {}
    for record in deals:
        properties = record["properties"]
        if properties.get("dealstage") != "closedwon" or not properties.get("closedate"):
            continue
        day = datetime.fromisoformat(properties["closedate"]).astimezone(UTC).date()
        if QUARTER <= day <= last:
            counts[day] = counts.get(day, 0) + 1
    return counts


def measure(url: str, client: str, truth: dict[date, int]) -> Run:
    reset(url)
    started = time.perf_counter()
    figures = asyncio.run(krsync_fetch(url)) if client == "krsync" else dlt_fetch(url)
    wall = time.perf_counter() - started
    if figures != truth:
        wrong = sorted(d for d in truth.keys() | figures.keys() if truth.get(d) != figures.get(d))
        raise BenchError(f"{client} found other daily figures than the deals hold, on {wrong[:5]}")
    calls, limited = server_calls(url)
    run = Run(client, calls, limited, wall)
    print(
        f"  {client:<8} {calls:>4} calls ({limited} answered 429), {wall:6.2f} s, "
        f"{sum(figures.values())} won deals on {len(figures)} days",
        flush=True,
    )
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--deals", type=int, default=20_000)
    parser.add_argument("--won-share", type=float, default=0.08)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument(
        "--sweep",
        type=lambda text: [float(x) for x in text.split(",") if x],
        default=[],
        help="other won shares to run krsync against, e.g. 0.05,0.10,0.20,0.40",
    )
    args = parser.parse_args()
    try:
        import dlt
    except ImportError:
        raise SystemExit(
            "dlt is not installed: `make bench-crm` installs the `bench` extra"
        ) from None

    print(
        f"{args.deals} deals over {QUARTER:%Y}-Q3, {args.won_share:.0%} won, "
        f"{args.latency_ms:.0f} ms a call; dlt {dlt.__version__}",
        flush=True,
    )
    truth = won_by_day(make_deals(args.deals, args.won_share, QUARTER), QUARTER)
    runs: dict[str, list[Run]] = {"krsync": [], "dlt": []}
    with platform(args.deals, args.won_share, args.latency_ms) as url:
        for n in range(args.repeat):
            print(f"repeat {n + 1}", flush=True)
            for client in ("krsync", "dlt"):
                runs[client].append(measure(url, client, truth))

    sweep: list[tuple[float, Run]] = []
    for share in args.sweep:
        print(f"sweep: {share:.0%} won", flush=True)
        with platform(args.deals, share, args.latency_ms) as url:
            truth_then = won_by_day(make_deals(args.deals, share, QUARTER), QUARTER)
            sweep.append((share, measure(url, "krsync", truth_then)))

    krsync_calls = statistics.median(r.calls for r in runs["krsync"])
    dlt_calls = statistics.median(r.calls for r in runs["dlt"])
    krsync_wall = statistics.median(r.wall for r in runs["krsync"])
    dlt_wall = statistics.median(r.wall for r in runs["dlt"])
    for share, run in sweep:
        print(f"krsync calls at {share:.0%} won: {run.calls} calls")
        print(f"call ratio at {share:.0%} won: {dlt_calls / run.calls:.1f} x")
    print(f"krsync api calls: {krsync_calls:g} calls")
    print(f"dlt rest_api api calls: {dlt_calls:g} calls")
    print(f"call ratio: {dlt_calls / krsync_calls:.1f} x")
    print(f"krsync wall: {krsync_wall:.2f} s")
    print(f"dlt rest_api wall: {dlt_wall:.2f} s")
    print(f"wall ratio: {dlt_wall / krsync_wall:.1f} x")
    expected_dlt = math.ceil(args.deals / 100)
    if dlt_calls < expected_dlt:
        raise BenchError(f"dlt made {dlt_calls} calls, fewer than the {expected_dlt} pages")


if __name__ == "__main__":
    try:
        main()
    except BenchError as exc:
        raise SystemExit(f"bench/crm.py: {exc}") from None
