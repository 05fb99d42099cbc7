"""Planning a mapping against a table: its columns found by name, its filters made into tests.

A plan fails per query (a column the file lacks), so one bad mapping doesn't stop the others.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.base import FilterOp, MetricQuery
from connectors.csv_source.models import CsvParams
from connectors.csv_source.reading import Table

#: Bad rows listed one by one in the warnings; the rest are counted.
MAX_LISTED_BAD_ROWS = 20


# --- queries -------------------------------------------------------------------------------------


def _text(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class _Condition:
    index: int
    op: FilterOp
    values: frozenset[str]

    def passes(self, cells: list[str]) -> bool:
        cell = cells[self.index].strip() if self.index < len(cells) else ""
        if self.op in ("eq", "in"):
            return cell in self.values
        if self.op in ("neq", "not_in"):
            return cell not in self.values
        return any(v in cell for v in self.values)  # contains


@dataclass(frozen=True)
class _Plan:
    query: MetricQuery
    date_index: int
    value_index: int
    group_index: int | None
    conditions: tuple[_Condition, ...]


class _ColumnError(Exception):
    def __init__(self, part: str, message: str) -> None:
        super().__init__(message)
        self.part = part
        self.message = message


def _plan(query: MetricQuery, table: Table) -> _Plan:
    params = query.params
    assert isinstance(params, CsvParams)

    def index(part: str, name: str) -> int:
        found = table.column(name)
        if found is None:
            raise _ColumnError(part, table.missing("column", name))
        return found

    conditions = tuple(
        _Condition(
            index(f"filters[{i}].field", flt.field),
            flt.op,
            frozenset(_text(v).strip() for v in flt.values),
        )
        for i, flt in enumerate(query.filters)
    )
    return _Plan(
        query,
        index("params.date_column", params.date_column),
        index("params.value_column", params.value_column),
        None if params.group_column is None else index("params.group_column", params.group_column),
        conditions,
    )


def _bad_rows_warnings(bad: dict[int, str]) -> list[str]:
    lines = sorted(bad)
    listed = [f"line {n}: {bad[n]}" for n in lines[:MAX_LISTED_BAD_ROWS]]
    if len(lines) > MAX_LISTED_BAD_ROWS:
        listed.append(f"and {len(lines) - MAX_LISTED_BAD_ROWS} more rows that can't be read")
    return listed
