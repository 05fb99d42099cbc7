"""CSV connector speed: a 50,000-row file read, filtered and summed per day.

    .venv/bin/python bench/csv_rows.py [--rows 50000] [--runs 5]

Writes a semicolon-separated file with European dates and decimal commas (the messy case the
connector exists for: dialect and date order sniffed, every number parsed), then times
``CsvConnector.fetch`` of one query filtered to one channel and grouped by it, through the
engine's HTTP client (unused for a local file). The target: under a second for 50,000 rows.

Prints the median of ``--runs`` fetches as ``csv 50000 rows: X ms``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _write(path: Path, rows: int) -> Path:
    start = date(2020, 1, 1)
    lines = ["date;channel;value"]
    for i in range(rows):
        day = start + timedelta(days=i // 20)
        lines.append(f"{day:%d.%m.%Y};{'Email' if i % 2 else 'Web'};{i % 97},5")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def _fetch_seconds(rows: int) -> float:
    from app.core.http import build_client
    from connectors.base import Filter, MetricQuery, Window
    from connectors.csv_source.connector import CsvConnector

    flt = Filter.model_validate({"field": "channel", "op": "eq", "value": "Email"})
    params = CsvConnector.validate_query("value", {"group_column": "channel"}, [flt], "sum")
    window = Window(date(2020, 1, 1), date(2020, 1, 1) + timedelta(days=rows // 20 - 1))
    async with build_client(source_name="csv-bench") as client:
        csv = CsvConnector(
            CsvConnector.config_model.model_validate({"path": "big.csv"}),
            CsvConnector.credentials_model(),
            client,
        )
        began = time.perf_counter()
        result = await csv.fetch([MetricQuery("1", "value", params, (flt,))], window)
        elapsed = time.perf_counter() - began
    if len(result.values) != rows // 20:
        raise SystemExit(f"expected a value a day, got {len(result.values)}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as files:
        os.environ["KRSYNC_FILES_DIR"] = files
        _write(Path(files) / "big.csv", args.rows)
        times = [asyncio.run(_fetch_seconds(args.rows)) for _ in range(args.runs)]
    print(f"runs: {', '.join(f'{t * 1000:.0f}' for t in times)} ms")
    print(f"csv {args.rows} rows: {statistics.median(times) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
