"""Reading the pages: records found by JSONPath, their days and figures summed per (day, group).

Pure functions over parsed JSON, so they are shared by ``fetch`` and mapping validation and can be
reasoned about without a response in hand.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from connectors.base import DailyValue, MetricQuery, Window, as_number
from connectors.paginate import compile_path
from connectors.rest_json.models import RestJsonParams

#: Bad records listed one by one in the warnings; the rest are counted.
MAX_LISTED_BAD_RECORDS = 20
#: The group label of a record without a group.
BLANK_GROUP = "(blank)"


# --- reading records -----------------------------------------------------------------------------


def find_records(body: Any, path: str) -> list[Any]:
    """The records at ``path``: the one list it names, or every node it matches."""
    found = compile_path(path).findall(body)
    if len(found) == 1 and isinstance(found[0], list):
        return list(found[0])
    return list(found)


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_day(raw: Any, date_format: str | None) -> date | str:
    """The day, or the reason it isn't one."""
    if raw is None:
        return "no date"
    text = str(raw).strip()
    if date_format is not None:
        try:
            return datetime.strptime(text, date_format).date()  # noqa: DTZ007 - a day
        except ValueError:
            return f"`{text[:40]}` does not match `{date_format}`"
    if _ISO_DAY.match(text):
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            pass
    return f"`{text[:40]}` is not an ISO date: set `date_format`"


def _first(path: str, record: Any) -> Any:
    found = compile_path(path).findall(record)
    return found[0] if found else None


def extract(
    query: MetricQuery, pages: list[Any], window: Window
) -> tuple[list[DailyValue], list[str]]:
    params = query.params
    assert isinstance(params, RestJsonParams)
    sums: dict[tuple[date, str | None], float] = {}
    bad: list[str] = []
    index = 0
    for body in pages:
        for record in find_records(body, params.records):
            at = index
            index += 1
            day = parse_day(_first(params.date, record), params.date_format)
            if isinstance(day, str):
                bad.append(f"record {at}: {day}")
                continue
            if day not in window:
                continue
            raw = _first(params.value, record)
            value = as_number(raw)
            if value is None:
                what = "no value" if raw is None else f"`{str(raw)[:40]}` is not a number"
                bad.append(f"record {at}: {what} at `{params.value}`")
                continue
            group = None
            if params.group is not None:
                label = _first(params.group, record)
                group = BLANK_GROUP if label is None or label == "" else str(label)
            sums[day, group] = sums.get((day, group), 0.0) + value
    values = [
        DailyValue(query.id, day, total, group)
        for (day, group), total in sorted(sums.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
    ]
    warnings = bad[:MAX_LISTED_BAD_RECORDS]
    if len(bad) > MAX_LISTED_BAD_RECORDS:
        warnings.append(f"and {len(bad) - MAX_LISTED_BAD_RECORDS} more records that can't be read")
    return values, warnings
