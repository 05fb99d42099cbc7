"""The rows a query returned made daily values: dates, numbers and groups as drivers hand them.

Pure functions over plain tuples, so the row rules can be tested without a database.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from connectors.base import DailyValue, Window

# --- rows ------------------------------------------------------------------------------------


def parse_rows(
    query_id: str, rows: Sequence[tuple[Any, ...]], window: Window
) -> tuple[list[DailyValue], list[str]]:
    """Daily values from ``date, value[, group]`` rows; duplicates of a day and group are summed."""
    totals: dict[tuple[date, str | None], float] = {}
    warnings: list[str] = []
    for number, row in enumerate(rows, start=1):
        if len(row) < 2:
            warnings.append(
                f"row {number}: expected `date, value[, group]` columns, got {len(row)}"
            )
            continue
        day = _as_date(row[0])
        if day is None:
            warnings.append(f"row {number}: {row[0]!r} is not a date; row skipped")
            continue
        if day not in window:
            continue
        if row[1] is None:
            continue
        value = _as_float(row[1])
        if value is None:
            warnings.append(f"row {number}: value {row[1]!r} is not a number; row skipped")
            continue
        group = None if len(row) < 3 or row[2] is None else str(row[2])
        totals[(day, group)] = totals.get((day, group), 0.0) + value
    values = [DailyValue(query_id, d, v, g) for (d, g), v in totals.items()]
    return values, warnings


def _as_date(raw: Any) -> date | None:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        s = raw.strip()
        try:
            return date.fromisoformat(s)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(s).date()
        except ValueError:
            return None
    return None


def _as_float(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float | Decimal):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            return None
    else:
        return None
    return value if math.isfinite(value) else None
