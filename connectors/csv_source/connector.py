"""Daily figures from a CSV file: a local file inside ``KRSYNC_FILES_DIR``, or a URL.

A "publish to web" Google Sheet CSV link (``…/pub?output=csv``) works as it is, as does any
other public CSV URL; it is fetched through the engine's HTTP client like every other call.

Reading is forgiving about the shapes real exports come in, and strict about what it guesses:

- **Encoding**: UTF-8 with or without a BOM, UTF-16 with a BOM (Excel's "Unicode text"); any
  other bytes are read as Windows-1252, with a warning.
- **Delimiter**: ``config.delimiter``, else sniffed among ``,``, ``;`` and tab.
- **Decimal mark**: ``config.decimal``, else ``,`` when the delimiter is ``;`` and ``.`` otherwise.
  Thousands separators are tolerated where they are unambiguous (``1.234,5`` with a decimal comma,
  ``1,234.5`` with a decimal point), as are spaces, no-break spaces and ``'`` between digits.
- **Dates**, tried in this order: ``config.date_format`` (a ``strptime`` format) when given;
  ISO ``YYYY-MM-DD`` (also with ``/`` or ``.``, and with a time after it); ``DD.MM.YYYY`` and
  ``DD-MM-YYYY``; ``DD/MM/YYYY``, or ``MM/DD/YYYY`` only when the file proves it (a second part
  above 12 and no first part above 12). A file whose slash dates are all ambiguous is read
  day-first, with a warning saying how to get month-first.
- **Rows**: blank lines and rows with only empty cells are skipped, as are rows with an empty
  value (a sheet's formula rows not filled yet). Rows dated outside the window are ignored. A row
  that can't be read (a bad date, a value that isn't a number, too few fields) is reported in
  the run's warnings as ``line N: reason`` and the rest of the file is kept.

Rows that pass the mapping's filters (on any column's text) are summed per (day, group). A
mapping naming a column the file lacks fails alone. Reading bytes and text is pure functions, so
every guess above can be tested on a string.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from pydantic import Field, field_validator, model_validator

from connectors.base import (
    CheckResult,
    Connector,
    ConnectorConfigError,
    FetchResult,
    MappingError,
    MetricQuery,
    MetricSpec,
    Window,
)
from connectors.errors import Classifier, raise_failure
from connectors.files import file_in_files_dir
from connectors.models import HttpAddress, Params, Strict, StrptimeFormat, has_password
from connectors.records import TEXT_OPS, DateReader, Fields, Filters, reported, tally, text_figure


class CsvConfig(Strict):
    url: HttpAddress | None = Field(
        None,
        description="An http(s) URL of the CSV, e.g. a Google Sheet's 'publish to web' CSV link.",
    )
    path: str | None = Field(
        None,
        description="A file inside KRSYNC_FILES_DIR (relative to it, or absolute inside it).",
    )
    delimiter: Literal[",", ";", "\t", "|"] | None = Field(
        None, description="The field separator; sniffed among `,`, `;` and tab when unset."
    )
    decimal: Literal[",", "."] | None = Field(
        None, description="The decimal mark; `,` when the delimiter is `;`, else `.`, when unset."
    )
    date_format: StrptimeFormat | None = Field(
        None,
        description="A strptime format such as `%d/%m/%Y`, tried before the built-in formats.",
    )

    @field_validator("url")
    @classmethod
    def _public(cls, value: str | None) -> str | None:
        # The config is stored and shown in clear, and a CSV source holds no credentials.
        if value is not None and has_password(value):
            raise ValueError(
                "`url` must not contain a password: a CSV source reads public links only and "
                "takes no credentials"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> CsvConfig:
        if (self.url is None) == (self.path is None):
            raise ValueError("give either `url` or `path`")
        return self


class CsvCredentials(Strict):
    """A CSV source needs no secret (a URL must be public); stray fields are refused."""


class CsvParams(Params):
    date_column: str = Field("date", min_length=1, description="The column holding the day.")
    value_column: str = Field("value", min_length=1, description="The column holding the figure.")
    group_column: str | None = Field(
        None, min_length=1, description="A column whose text splits the figure into groups."
    )


DELIMITERS = ",;\t"


@dataclass
class Table:
    """A CSV file read into its header and its non-blank rows, with their line numbers."""

    header: list[str]
    rows: list[tuple[int, list[str]]]
    delimiter: str
    warnings: list[str] = field(default_factory=list)

    def column(self, name: str) -> int | None:
        """The index of a column: its exact name, else the one name matching without case."""
        name = name.strip()
        if name in self.header:
            return self.header.index(name)
        folded = [i for i, h in enumerate(self.header) if h.casefold() == name.casefold()]
        return folded[0] if len(folded) == 1 else None


def decode(data: bytes) -> tuple[str, list[str]]:
    """The text of a file and what was guessed about its encoding."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), []
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), [
            "the file is not UTF-8: it was read as Windows-1252; export it as UTF-8 if "
            "letters look wrong"
        ]


def detect_delimiter(text: str) -> str:
    lines = [line for line in text[:65536].splitlines() if line.strip()][:20]
    header = lines[0] if lines else ""
    counts = {d: header.count(d) for d in DELIMITERS}
    try:
        sniffed = csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        sniffed = ""
    if sniffed and (counts.get(sniffed, 0) or not any(counts.values())):
        return sniffed
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def parse_table(text: str, delimiter: str | None) -> Table:
    delim = delimiter or detect_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if header is None:
                raise ConnectorConfigError(f"the CSV header can't be read: {exc}") from None
            rows.append((reader.line_num, [f"\0{exc}"]))
            continue
        if not any(c.strip() for c in cells):
            continue
        if header is None:
            header = [c.strip() for c in cells]
        else:
            rows.append((reader.line_num, cells))
    if header is None:
        raise ConnectorConfigError("the file is empty: it has no header line")
    return Table(header, rows, delim)


#: The largest file read, local or downloaded (bytes).
MAX_BYTES = 200 * 1024 * 1024

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
    metrics = (
        MetricSpec(
            name="value",
            description="A column of the file, summed over the rows of each day",
            unit="value",
            params_model=CsvParams,
            filters={"*": TEXT_OPS},
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
        plans: list[tuple[MetricQuery, _Fields]] = []
        for query in queries:
            try:
                plans.append((query, _plan(query, table)))
            except MappingError as exc:
                result.query_errors[query.id] = exc.message
        if queries and not plans:
            raise ConnectorConfigError(next(iter(result.query_errors.values())))

        readers = {  # one a date column, in the order the plans name them
            i: DateReader(
                {c[i].strip() for _, c in table.rows if i < len(c)}, self.config.date_format
            )
            for i in dict.fromkeys(fields.day for _, fields in plans)
        }
        result.warnings += [r.warning for r in readers.values() if r.warning]
        bad: dict[int, str] = {}
        decimal = self.config.decimal or ("," if table.delimiter == ";" else ".")
        for query, fields in plans:
            result.values += tally(
                query.id,
                _whole_rows(table, fields, bad),
                fields,
                window,
                bad,
                read_day=readers[fields.day].parse,
                read_value=partial(text_figure, decimal=decimal, name=table.header[fields.value]),
            )
        result.warnings += reported(bad, "line", "rows")
        return result

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
        raise_failure(_ERRORS, self.http, response)
        if len(response.content) > MAX_BYTES:
            raise ConnectorConfigError(f"the file is larger than {MAX_BYTES >> 20} MB")
        return response.content


_Fields = Fields[list[str], int]


def _cell(cells: list[str], index: int) -> str:
    return cells[index].strip() if index < len(cells) else ""


def _whole_rows(
    table: Table, fields: _Fields, bad: dict[int, str]
) -> Iterator[tuple[int, list[str]]]:
    """The rows holding every column a query reads; the others are set in ``bad``. Rows with
    neither a date nor a value (a sheet's formula rows not filled yet) are skipped."""
    needed = max(fields.day, fields.value, fields.group or 0)
    for line, cells in table.rows:
        if len(cells) == 1 and cells[0].startswith("\0"):
            bad[line] = f"unreadable: {cells[0][1:]}"
        elif needed >= len(cells):
            bad[line] = f"{len(cells)} fields where the header has {len(table.header)}"
        elif cells[fields.value].strip() or cells[fields.day].strip():
            yield line, cells


def _plan(query: MetricQuery, table: Table) -> _Fields:
    """The columns a query reads, found by name; a missing one is a ``MappingError``."""
    params = query.params
    assert isinstance(params, CsvParams)

    def index(part: str, name: str) -> int:
        found = table.column(name)
        if found is None:
            columns = ", ".join(f"`{h}`" for h in table.header if h) or "none"
            raise MappingError(part, f"the file has no column `{name}`; its columns are: {columns}")
        return found

    keep = Filters(query.filters, index, _cell)
    group = params.group_column
    return Fields(
        _cell,
        index("params.date_column", params.date_column),
        index("params.value_column", params.value_column),
        None if group is None else index("params.group_column", group),
        keep,
    )
