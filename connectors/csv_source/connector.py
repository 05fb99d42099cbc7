"""The ``csv`` connector: the hooks, a mapping planned against the file's columns, the per-day
sums, and getting the bytes from a file or URL.

A plan fails per query (a column the file lacks), so one bad mapping doesn't stop the others.
Everything that touches the file system or ``self.http`` lives here; reading is imported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from connectors.base import (
    CheckResult,
    Connector,
    ConnectorConfigError,
    FetchResult,
    FilterOp,
    MappingError,
    MetricQuery,
    MetricSpec,
    Window,
    status_failure,
)
from connectors.csv_source.models import CsvConfig, CsvCredentials, CsvParams
from connectors.csv_source.reading import DateReader, Table, decode, parse_number, parse_table
from connectors.errors import Classifier
from connectors.files import file_in_files_dir
from connectors.series import BLANK_GROUP, Sums, listed, passes

#: The largest file read, local or downloaded (bytes).
MAX_BYTES = 200 * 1024 * 1024

_TEXT_OPS: frozenset[FilterOp] = frozenset({"eq", "neq", "in", "not_in", "contains"})

_ERRORS = Classifier(
    "the CSV host",
    {
        (401, 403): "the URL refused access ({status}): make the file public, e.g. publish the "
        "Google Sheet to the web (File > Share > Publish to web, as CSV) and use that link",
        (404, 410): "no file at the URL ({status}): check the link",
        "retriable": "{platform} is having trouble: {said}",
        "config": "{platform} refused the request: {said}",
    },
)


class CsvConnector(Connector[CsvConfig, CsvCredentials]):
    """One metric, ``value``: a column of a CSV summed per day (and per group)."""

    key = "csv"
    name = "CSV file or URL"
    category = "generic"
    config_model = CsvConfig
    credentials_model = CsvCredentials
    metrics = (
        MetricSpec(
            name="value",
            description="A column of the file, summed over the rows of each day",
            unit="value",
            params_model=CsvParams,
            filters={"*": _TEXT_OPS},
        ),
    )

    async def check(self) -> CheckResult:
        table = await self._load()
        columns = [h for h in table.header if h]
        return CheckResult(
            f"Read {len(table.rows)} rows with columns: " + ", ".join(columns),
            details={"columns": columns, "delimiter": table.delimiter, "rows": len(table.rows)},
        )

    async def validate_mapping_online(self, query: MetricQuery) -> None:
        _plan(query, await self._load())

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        table = await self._load()
        return await asyncio.to_thread(self._compute, table, queries, window)

    def _compute(self, table: Table, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult(warnings=list(table.warnings))
        plans: list[_Plan] = []
        for query in queries:
            try:
                plans.append(_plan(query, table))
            except MappingError as exc:
                result.query_errors[query.id] = exc.message
        if queries and not plans:
            raise ConnectorConfigError(next(iter(result.query_errors.values())))

        readers: dict[int, DateReader] = {}
        bad: dict[int, str] = {}
        decimal = self.config.decimal or ("," if table.delimiter == ";" else ".")
        width = len(table.header)
        for plan in plans:
            reader = readers.get(plan.date_index)
            if reader is None:
                seen = {
                    c[plan.date_index].strip() for _, c in table.rows if plan.date_index < len(c)
                }
                reader = readers[plan.date_index] = DateReader(seen, self.config.date_format)
                if reader.warning:
                    result.warnings.append(reader.warning)
            dates: dict[str, date | str] = {}
            needed = max(plan.date_index, plan.value_index, plan.group_index or 0)
            value_column = table.header[plan.value_index]
            sums = Sums()
            for line, cells in table.rows:
                if len(cells) == 1 and cells[0].startswith("\0"):
                    bad[line] = f"unreadable: {cells[0][1:]}"
                    continue
                if needed >= len(cells):
                    bad[line] = f"{len(cells)} fields where the header has {width}"
                    continue
                if not all(c.passes(cells) for c in plan.conditions):
                    continue
                raw_value = cells[plan.value_index].strip()
                raw_date = cells[plan.date_index].strip()
                if not raw_value and not raw_date:
                    continue
                day = dates.get(raw_date)
                if day is None:
                    day = dates[raw_date] = reader.parse(raw_date)
                if isinstance(day, str):
                    bad[line] = day
                    continue
                if day not in window or not raw_value:
                    continue
                value = parse_number(raw_value, decimal)
                if value is None:
                    bad[line] = f"`{value_column}` is not a number: `{raw_value}`"
                    continue
                group = None
                if plan.group_index is not None:
                    group = cells[plan.group_index].strip() or BLANK_GROUP
                sums.add(day, value, group)
            result.values += sums.values(plan.query.id)
        result.warnings += listed([f"line {n}: {bad[n]}" for n in sorted(bad)], "rows")
        return result

    # --- getting the bytes -----------------------------------------------------------------------

    async def _load(self) -> Table:
        if self.config.url is not None:
            data = await self._download(self.config.url)
        else:
            data = await asyncio.to_thread(self._read_local, self.config.path or "")
        text, warnings = decode(data)
        head = text[:512].lstrip().lower()
        if head.startswith(("<!doctype html", "<html")):
            raise ConnectorConfigError(
                "the URL answered with a web page, not CSV: publish the sheet to the web as "
                "CSV (the link ends in output=csv), or make the file public"
            )
        table = await asyncio.to_thread(parse_table, text, self.config.delimiter)
        table.warnings[:0] = warnings
        return table

    def _read_local(self, given: str) -> bytes:
        resolved = file_in_files_dir(given, otherwise=", or give a `url`")
        try:
            if resolved.stat().st_size > MAX_BYTES:
                raise ConnectorConfigError(f"`{given}` is larger than {MAX_BYTES >> 20} MB")
            return resolved.read_bytes()
        except OSError as exc:
            raise ConnectorConfigError(f"`{given}` can't be read: {exc.strerror}") from None

    async def _download(self, url: str) -> bytes:
        response = await self.http.get(url)
        if not response.is_success:
            said, wait = status_failure(self.http, response)
            raise _ERRORS(response, self.http.redact, said=said, wait=wait) from None
        if len(response.content) > MAX_BYTES:
            raise ConnectorConfigError(f"the file is larger than {MAX_BYTES >> 20} MB")
        return response.content


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
        return passes(
            cells[self.index].strip() if self.index < len(cells) else "", self.op, self.values
        )


@dataclass(frozen=True)
class _Plan:
    query: MetricQuery
    date_index: int
    value_index: int
    group_index: int | None
    conditions: tuple[_Condition, ...]


def _plan(query: MetricQuery, table: Table) -> _Plan:
    """The columns a query reads, found by name; a missing one is a ``MappingError``."""
    params = query.params
    assert isinstance(params, CsvParams)

    def index(part: str, name: str) -> int:
        found = table.column(name)
        if found is None:
            raise MappingError(part, table.missing("column", name))
        return found

    conditions = tuple(
        _Condition(
            index(f"filters[{i}].field", flt.field),
            flt.op,
            frozenset(_text(v).strip() for v in flt.values),
        )
        for i, flt in enumerate(query.filters)
    )
    group = params.group_column
    return _Plan(
        query,
        index("params.date_column", params.date_column),
        index("params.value_column", params.value_column),
        None if group is None else index("params.group_column", group),
        conditions,
    )
