"""A file's bytes made a table: encoding, delimiter, numbers and dates as real exports write them.

Pure functions over bytes and text (the connector fetches them), so every guess the package
docstring promises can be tested on a string.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime

from connectors.base import ConnectorConfigError

DELIMITERS = ",;\t"


# --- reading -------------------------------------------------------------------------------------


@dataclass
class Table:
    """A CSV file read into its header and its non-blank rows, with their line numbers."""

    header: list[str]
    rows: list[tuple[int, list[str]]]
    delimiter: str
    warnings: list[str] = field(default_factory=list)

    def column(self, name: str) -> int | None:
        """The index of a column: its exact name, else the one name matching without case."""
        try:
            return self.header.index(name.strip())
        except ValueError:
            folded = [
                i for i, h in enumerate(self.header) if h.casefold() == name.strip().casefold()
            ]
            return folded[0] if len(folded) == 1 else None

    def missing(self, what: str, name: str) -> str:
        found = ", ".join(f"`{h}`" for h in self.header if h) or "none"
        return f"the file has no {what} `{name}`; its columns are: {found}"


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
    warnings: list[str] = []
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
    return Table(header, rows, delim, warnings)


_NUMBER = {
    ".": re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"),
    ",": re.compile(r"[+-]?(?:\d+(?:,\d*)?|,\d+)(?:[eE][+-]?\d+)?"),
}
_GROUPED = {
    ".": re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?"),
    ",": re.compile(r"[+-]?\d{1,3}(?:\.\d{3})+(?:,\d*)?"),
}
_DIGIT_GAP = re.compile(r"(?<=\d)[ \u00a0\u202f'](?=\d)")


def parse_number(text: str, decimal: str) -> float | None:
    """A figure written with ``decimal`` as its decimal mark, or None when it isn't one."""
    s = text.strip()
    if _NUMBER[decimal].fullmatch(s) is None:
        s = _DIGIT_GAP.sub("", s)
        if _NUMBER[decimal].fullmatch(s) is None:
            if _GROUPED[decimal].fullmatch(s) is None:
                return None
            s = s.replace("." if decimal == "," else ",", "")
    return float(s.replace(",", ".") if decimal == "," else s)


_DATE = re.compile(r"(\d{1,4})([-/.])(\d{1,2})\2(\d{1,4})(?:[ T].*)?")


class DateReader:
    """Parses one date column, deciding once for the whole file how slash dates are ordered."""

    def __init__(self, values: set[str], date_format: str | None) -> None:
        self.date_format = date_format
        self.month_first = False
        self.warning: str | None = None
        day_first_proof = month_first_proof = ambiguous = False
        for value in values:
            m = _DATE.fullmatch(value)
            if m is None or m[2] != "/" or len(m[1]) == 4:
                continue
            first, second = int(m[1]), int(m[3])
            day_first_proof |= first > 12
            month_first_proof |= second > 12
            ambiguous |= first <= 12 and second <= 12 and first != second
        if date_format is None and month_first_proof and not day_first_proof:
            self.month_first = True
        elif date_format is None and ambiguous and not day_first_proof:
            self.warning = (
                "dates such as 03/04/2026 were read day first (3 April); set `date_format` to "
                "`%m/%d/%Y` if they are month first"
            )

    def parse(self, value: str) -> date | str:
        """The date, or the reason it isn't one."""
        if self.date_format is not None:
            try:
                return datetime.strptime(value, self.date_format).date()  # noqa: DTZ007 - a day
            except ValueError:
                pass
        m = _DATE.fullmatch(value)
        if m is None:
            return f"`{value}` is not a date" if value else "no date"
        a, sep, b, c = m[1], m[2], m[3], m[4]
        if len(a) == 4:
            year, month, day = int(a), int(b), int(c)
        elif len(c) == 4:
            year, month, day = int(c), int(b), int(a)
            if sep == "/" and self.month_first:
                month, day = day, month
        else:
            return f"`{value}` is not a date: use a four-digit year"
        try:
            return date(year, month, day)
        except ValueError:
            return f"`{value}` is not a date"
