"""SOQL as krsync writes it: escaped literals, filter conditions, the aggregate statement,
and the reading of its rows back into daily values.

Kept apart from the HTTP code so the one place where mapping text meets SOQL can be read (and
tested) on its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from connectors.base import DailyValue, Filter, MetricQuery, Window, as_number
from connectors.salesforce.models import FIELD_PATH, SalesforceSumParams

#: Rows a grouped (aggregate) query may answer. Such an answer can't be paged ("queries that
#: include a GROUP BY clause can't use the query locator to get more results",
#: https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_group_by_considerations.htm);
#: past 2,000 rows Salesforce refuses it with EXCEEDED_ID_LIMIT.
GROUP_LIMIT = 2000
#: Local days a datetime statement may group beyond its window: its UTC bounds reach a day
#: before and after it, and a user's zone (UTC-12 to UTC+14) moves each a day further.
DATETIME_PADDING_DAYS = 4
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2})")
_COMPARE = {"eq": "=", "neq": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


def soql_string(value: str, *, like: bool = False) -> str:
    """A quoted SOQL string literal: every quote, backslash and control character escaped."""
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif like and char in "%_":
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "'" + "".join(out) + "'"


def soql_literal(value: str | float | int | bool) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("a filter value must be a finite number")
        return format(Decimal(repr(value)), "f")
    if ISO_DATE.fullmatch(value) or ISO_DATETIME.fullmatch(value):
        return value  # SOQL date literals are unquoted; the patterns admit nothing else
    return soql_string(value)


def soql_condition(flt: Filter) -> str:
    """One WHERE condition; the field was checked as an API name when the mapping was saved."""
    if not FIELD_PATH.fullmatch(flt.field):
        raise ValueError(f"`{flt.field[:60]}` is not a Salesforce field name")
    if flt.op in ("in", "not_in"):
        values = ", ".join(soql_literal(v) for v in flt.values)
        return f"{flt.field} {'IN' if flt.op == 'in' else 'NOT IN'} ({values})"
    value = flt.values[0]
    if flt.op == "contains":
        return f"{flt.field} LIKE '%{soql_string(str(value), like=True)[1:-1]}%'"
    return f"{flt.field} {_COMPARE[flt.op]} {soql_literal(value)}"


@dataclass(frozen=True)
class Statement:
    """What queries may share: one SELECT per object, date field and set of conditions."""

    sobject: str
    date_field: str
    datetime: bool
    conditions: tuple[str, ...]

    @property
    def max_days(self) -> int:
        """Days one query may span with its groups (one a day) within :data:`GROUP_LIMIT`."""
        return GROUP_LIMIT - (DATETIME_PADDING_DAYS if self.datetime else 0)

    def soql(self, window: Window, count: bool, sums: Sequence[str]) -> str:
        day = f"DAY_ONLY(convertTimezone({self.date_field}))" if self.datetime else self.date_field
        select = [f"{day} d"] + (["COUNT(Id) n"] if count else [])
        select += [f"SUM({field}) s{i}" for i, field in enumerate(sums)]
        if self.datetime:
            # UTC bounds a day wider on each side hold every local day of the window in any
            # time zone (UTC-12 to UTC+14); the days outside it are dropped from the answer.
            low = f"{(window.start - timedelta(days=1)).isoformat()}T00:00:00Z"
            high = f"{(window.end + timedelta(days=2)).isoformat()}T00:00:00Z"
            bounds = [f"{self.date_field} >= {low}", f"{self.date_field} < {high}"]
        else:
            bounds = [
                f"{self.date_field} >= {window.start.isoformat()}",
                f"{self.date_field} <= {window.end.isoformat()}",
            ]
        where = " AND ".join(bounds + [f"({c})" for c in self.conditions])
        return f"SELECT {', '.join(select)} FROM {self.sobject} WHERE {where} GROUP BY {day}"


def _values(
    group: Sequence[MetricQuery],
    sums: Sequence[str],
    records: Sequence[Any],
    window: Window,
    warnings: list[str],
) -> list[DailyValue]:
    alias = {field: f"s{i}" for i, field in enumerate(sums)}
    values: list[DailyValue] = []
    for record in records:
        if not isinstance(record, dict):
            continue
        raw = record.get("d")
        try:
            day = date.fromisoformat(str(raw)[:10])
        except ValueError:
            warnings.append(f"Salesforce sent a row dated `{str(raw)[:40]}`: skipped")
            continue
        if day not in window:
            continue
        for query in group:
            params = query.params
            key = alias[params.field] if isinstance(params, SalesforceSumParams) else "n"
            cell = record.get(key)
            # SUM over records whose field is blank is null: those records add nothing.
            value = 0.0 if cell is None and key != "n" else as_number(cell)
            if value is None:
                warnings.append(f"{query.metric} on {day}: `{str(cell)[:40]}` is not a number")
                continue
            values.append(DailyValue(query.id, day, value))
    return values
