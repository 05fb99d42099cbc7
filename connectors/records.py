"""Records into daily values, for a connector that reads records itself: the rows of a file, the
JSON records of an endpoint, the items of a list call (dlt's ``rest_api`` says "this endpoint's
records, this field as the date, this one as the figure"; here a connector says it in a
:class:`Fields`).

A connector knows where a record keeps its day, its figure and its group; :func:`tally` does the
rest alike for every connector: it keeps the records that pass, reads each distinct day once,
drops days outside the window, adds the figures up per (day, group) and notes, per record, why
one can't be read, so a bad record costs a warning (:func:`reported`) and never the run::

    def figure(raw: Any) -> float | str:
        number = as_number(raw)
        return f"`{raw}` is not a number" if number is None else number

    fields = Fields(first, day="$.day", value="$.signups", group="$.country")
    bad: dict[int, str] = {}
    result.values += tally(
        query.id, enumerate(records), fields, window, bad,
        read_day=partial(parse_day, date_format=None), read_value=figure,
    )
    result.warnings += reported(bad, "record", "records")

The readers platforms' and people's ways of writing call for, each one reason-returning (a
``str`` says why the text is no day or no figure, and becomes the record's warning):

- days: :func:`parse_day` reads ISO days or a strptime format, as APIs send them;
  :class:`DateReader` reads the dates people type in sheets (dotted, dashed, and slash dates
  whose order the whole file decides);
- figures: :func:`~connectors.base.as_number` for JSON; :func:`parse_number` for text written
  with a decimal comma or point and thousands separators, :func:`text_figure` for a cell of it;
- fields of JSON records: :func:`find_records` and :func:`~connectors.paginate.first`, at
  JSONPaths a mapping gives as :data:`~connectors.models.JsonPath` (checked when it is saved);
- filters: :class:`Filters` tests a mapping's filters on a record's text, for platforms that
  can't filter themselves.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from connectors.base import DailyValue, Filter, FilterOp, MetricSpec, Window
from connectors.paginate import compile_path
from connectors.series import BLANK_GROUP, Sums, iso_day, listed, passes

R = TypeVar("R")
L = TypeVar("L")
W = TypeVar("W", bound=Hashable)

#: A day read from a record, or why there is none.
Day = date | str
#: A figure read from a record, why it isn't one, or None when the record has no figure to add.
Figure = float | str | None


def group_label(raw: Any) -> str:
    """A record's group as its label: an empty one is :data:`~connectors.series.BLANK_GROUP`."""
    return BLANK_GROUP if raw is None or raw == "" else str(raw)


@dataclass(frozen=True)
class Fields(Generic[R, L]):
    """Where a record keeps its day, its figure and its group (a column, a JSONPath, a key), as
    a mapping names them, and which records count."""

    #: A record's field at a place, as written: ``first`` for JSON records, a cell for rows.
    get: Callable[[R, L], Any]
    day: L
    value: L
    #: None: the figures make one series; else :attr:`label` names each record's group.
    group: L | None = None
    #: Whether a record counts (the mapping's :class:`Filters`): one left out is no warning.
    keep: Callable[[R], bool] | None = None
    #: A group's label from what the record holds there, None for no group at all (where a
    #: platform's empty group means the record's figure belongs to no group, as SQL's NULL).
    label: Callable[[Any], str | None] = group_label


def value_metric(description: str, params: type[BaseModel], **fields: Any) -> tuple[MetricSpec]:
    """The one metric of a connector whose user says where the figures are (a column, a JSON
    field, a query): ``value``, in the user's own unit; ``fields`` are the rest of its
    :class:`~connectors.base.MetricSpec` (``filters``...)."""
    spec = MetricSpec(
        name="value", description=description, unit="value", params_model=params, **fields
    )
    return (spec,)


def tally(
    query_id: str,
    records: Iterable[tuple[W, R]],
    fields: Fields[R, L],
    window: Window,
    bad: dict[W, str],
    *,
    read_day: Callable[[Any], Day],
    read_value: Callable[[Any], Figure],
) -> list[DailyValue]:
    """The records' figures summed per (day, group) in the window, as ``query_id`` 's values.

    ``records`` pair each record with where it is (a line, an index): a record whose day or
    figure can't be read is set in ``bad`` at that place with the reason, and skipped. A day is
    read before the figure, which is read only for a day in the window; a day written as text
    is read once however many records share it.
    """
    sums = Sums()
    days: dict[str, Day] = {}
    get, group = fields.get, fields.group
    for at, record in records:
        if fields.keep is not None and not fields.keep(record):
            continue
        raw = get(record, fields.day)
        if type(raw) is str:
            day = days.get(raw)
            if day is None:
                day = days[raw] = read_day(raw)
        else:
            day = read_day(raw)
        if isinstance(day, str):
            bad[at] = day
            continue
        if day not in window:
            continue
        value = read_value(get(record, fields.value))
        if value is None:
            continue
        if isinstance(value, str):
            bad[at] = value
            continue
        sums.add(day, value, None if group is None else fields.label(get(record, group)))
    return sums.values(query_id)


def reported(bad: Mapping[int, str], where: str, what: str) -> list[str]:
    """The run's warnings about the records :func:`tally` couldn't read, in their order, as
    ``{where} N: reason`` (``line 7: …``, ``record 3: …``)."""
    return listed([f"{where} {n}: {bad[n]}" for n in sorted(bad)], what)


def filter_text(value: object) -> str:
    """A filter's value as the text a record holds: ``true`` for a JSON true, ``3`` for 3.0."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


#: A mapping's filters as a key, the same in any order: (field, op, its values' texts) sorted.
FilterKey = tuple[tuple[str, str, tuple[str, ...]], ...]


def filter_key(filters: Iterable[Filter]) -> FilterKey:
    """The key of a mapping's filters, for a connector that asks once for the mappings whose
    filters are the same (one report, one request): their order, a repeated value or a value's
    type (``1.0`` for ``1``, ``True`` for ``true``) doesn't make them differ."""
    keys = {(f.field, f.op, tuple(sorted({filter_text(v) for v in f.values}))) for f in filters}
    return tuple(sorted(keys))


#: The ops :class:`Filters` tests a record's text with.
TEXT_OPS: frozenset[FilterOp] = frozenset({"eq", "neq", "in", "not_in", "contains"})


class Filters(Generic[R, L]):
    """A mapping's filters (:data:`TEXT_OPS`), tested by the connector on each record's text,
    for platforms that can't filter (a file, an endpoint). ``place(part, name)`` finds the
    field a filter names, raising :class:`~connectors.base.MappingError` at ``part`` for one the
    records lack, so a mapping naming one fails when its filters are built; ``text(record,
    place)`` reads it."""

    def __init__(
        self,
        filters: Sequence[Filter],
        place: Callable[[str, str], L],
        text: Callable[[R, L], str],
    ) -> None:
        self.text = text
        self.tests = tuple(
            (
                place(f"filters[{i}].field", f.field),
                f.op,
                frozenset(filter_text(v).strip() for v in f.values),
            )
            for i, f in enumerate(filters)
        )

    def __call__(self, record: R) -> bool:
        return all(passes(self.text(record, at), op, values) for at, op, values in self.tests)


def _strptime_day(text: str, date_format: str) -> date | None:
    try:
        return datetime.strptime(text, date_format).date()  # noqa: DTZ007 - a day, no instant
    except ValueError:
        return None


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_day(raw: Any, date_format: str | None) -> Day:
    """An API's day: in ``date_format`` when given, else ISO (with or without a time after it)."""
    if raw is None:
        return "no date"
    text = str(raw).strip()
    if date_format is not None:
        day = _strptime_day(text, date_format)
        return day if day is not None else f"`{text[:40]}` does not match `{date_format}`"
    day = iso_day(text) if _ISO_DAY.match(text) else None
    return day if day is not None else f"`{text[:40]}` is not an ISO date: set `date_format`"


_DATE = re.compile(r"(\d{1,4})([-/.])(\d{1,2})\2(\d{1,4})(?:[ T].*)?")


class DateReader:
    """Reads the dates people type, one column (or field) at a time, deciding once for all its
    ``values`` how slash dates are ordered: ``date_format`` when given and matching; ISO
    ``YYYY-MM-DD`` (also with ``/`` or ``.``, and with a time after it); ``DD.MM.YYYY`` and
    ``DD-MM-YYYY``; ``DD/MM/YYYY``, or ``MM/DD/YYYY`` only when the values prove it (a second
    part above 12 and no first part above 12). Values whose slash dates are all ambiguous are
    read day first, and :attr:`warning` says how to get month first."""

    def __init__(self, values: Iterable[str], date_format: str | None) -> None:
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

    def parse(self, value: str) -> Day:
        """The date, or the reason it isn't one."""
        if self.date_format is not None:
            day = _strptime_day(value, self.date_format)
            if day is not None:
                return day
        m = _DATE.fullmatch(value)
        if m is None:
            return f"`{value}` is not a date" if value else "no date"
        a, sep, b, c = m[1], m[2], m[3], m[4]
        if len(a) == 4:
            year, month, day_of_month = int(a), int(b), int(c)
        elif len(c) == 4:
            year, month, day_of_month = int(c), int(b), int(a)
            if sep == "/" and self.month_first:
                month, day_of_month = day_of_month, month
        else:
            return f"`{value}` is not a date: use a four-digit year"
        try:
            return date(year, month, day_of_month)
        except ValueError:
            return f"`{value}` is not a date"


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
    """A figure written with ``decimal`` (``.`` or ``,``) as its decimal mark, or None when it
    isn't one. Thousands separators are taken where they are unambiguous (``1.234,5`` with a
    decimal comma, ``1,234.5`` with a decimal point), as are spaces, no-break spaces and ``'``
    between digits."""
    s = text.strip()
    if _NUMBER[decimal].fullmatch(s) is None:
        s = _DIGIT_GAP.sub("", s)
        if _NUMBER[decimal].fullmatch(s) is None:
            if _GROUPED[decimal].fullmatch(s) is None:
                return None
            s = s.replace("." if decimal == "," else ",", "")
    return float(s.replace(",", ".") if decimal == "," else s)


def text_figure(raw: str, decimal: str, name: str) -> Figure:
    """The figure in a text cell of the field ``name``: none in an empty one (a row not filled
    yet adds nothing), else :func:`parse_number`'s, or why it isn't one."""
    if not raw:
        return None
    value = parse_number(raw, decimal)
    return f"`{name}` is not a number: `{raw}`" if value is None else value


def find_records(body: Any, path: str) -> list[Any]:
    """The records at ``path``: the one list it names, or every node it matches."""
    found = compile_path(path).findall(body)
    return list(found[0] if len(found) == 1 and isinstance(found[0], list) else found)
