"""The records toolkit (connectors/records.py): records read into daily values alike whatever a
record is (a row of cells, a JSON object), with a reason for each record that can't be read."""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import Any

import pytest

from connectors.base import DailyValue, Filter, MappingError, Window, as_number
from connectors.paginate import first
from connectors.records import (
    DateReader,
    Fields,
    Filters,
    find_records,
    group_label,
    parse_day,
    parse_number,
    reported,
    tally,
    text_figure,
)
from connectors.series import BLANK_GROUP, MAX_LISTED

WINDOW = Window(date(2026, 7, 1), date(2026, 7, 3))


def _figure(raw: Any) -> float | str:
    number = as_number(raw)
    return "no value" if number is None else number


def _tally(records: list[Any], fields: Fields[Any, str]) -> tuple[list[DailyValue], dict[int, str]]:
    bad: dict[int, str] = {}
    values = tally(
        "q",
        enumerate(records),
        fields,
        WINDOW,
        bad,
        read_day=partial(parse_day, date_format=None),
        read_value=_figure,
    )
    return values, bad


def test_json_records_are_summed_per_day_and_group_in_the_window() -> None:
    records = [
        {"day": "2026-07-01", "n": 2, "c": "FR"},
        {"day": "2026-07-01", "n": "3", "c": "FR"},
        {"day": "2026-07-02T10:00:00", "n": 1, "c": ""},
        {"day": "2026-06-30", "n": "not read: outside the window"},
        {"day": "2026-07-02", "n": 4},
    ]
    values, bad = _tally(records, Fields(first, "$.day", "$.n", "$.c"))
    assert values == [
        DailyValue("q", date(2026, 7, 1), 5.0, "FR"),
        DailyValue("q", date(2026, 7, 2), 5.0, BLANK_GROUP),
    ]
    assert bad == {}


def test_a_record_that_cant_be_read_is_noted_where_it_is_and_skipped() -> None:
    records = [
        {"day": "2026-07-01", "n": 1},
        {"day": "yesterday", "n": 1},
        {"n": 1},
        {"day": "2026-07-01", "n": "twelve"},
        {"day": "2026-07-01", "n": 2},
    ]
    values, bad = _tally(records, Fields(first, "$.day", "$.n"))
    assert values == [DailyValue("q", date(2026, 7, 1), 3.0)]
    assert bad == {
        1: "`yesterday` is not an ISO date: set `date_format`",
        2: "no date",
        3: "no value",
    }
    assert reported(bad, "record", "records") == [
        "record 1: `yesterday` is not an ISO date: set `date_format`",
        "record 2: no date",
        "record 3: no value",
    ]


def test_a_figure_read_as_none_adds_nothing_and_warns_nothing() -> None:
    rows = [["2026-07-01", ""], ["2026-07-01", "2,5"]]
    bad: dict[int, str] = {}
    values = tally(
        "q",
        enumerate(rows),
        Fields(lambda cells, i: cells[i], 0, 1),
        WINDOW,
        bad,
        read_day=DateReader([], None).parse,
        read_value=partial(text_figure, decimal=",", name="value"),
    )
    assert values == [DailyValue("q", date(2026, 7, 1), 2.5)]
    assert bad == {}


def test_each_distinct_day_text_is_read_once() -> None:
    read: list[Any] = []

    def read_day(raw: Any) -> date | str:
        read.append(raw)
        return parse_day(raw, None)

    records = [{"d": "2026-07-01", "n": 1}] * 3 + [{"d": "2026-07-02", "n": 1}]
    tally(
        "q",
        enumerate(records),
        Fields(first, "$.d", "$.n"),
        WINDOW,
        {},
        read_day=read_day,
        read_value=_figure,
    )
    assert read == ["2026-07-01", "2026-07-02"]


def test_filters_keep_records_by_their_text_and_refuse_an_unknown_field() -> None:
    header = ["channel", "n"]

    def place(part: str, name: str) -> int:
        if name not in header:
            raise MappingError(part, f"no column `{name}`")
        return header.index(name)

    def text(cells: list[str], i: int) -> str:
        return cells[i].strip()

    ones = Filters(
        [Filter.model_validate({"field": "n", "op": "in", "value": [1.0, 2]})], place, text
    )
    assert ones(["Email", "1"])
    assert not ones(["Email", "1.0"])
    yes = Filters([Filter.model_validate({"field": "n", "op": "eq", "value": True})], place, text)
    assert yes(["Email", " true "])
    with pytest.raises(MappingError) as caught:
        Filters([Filter.model_validate({"field": "x", "op": "eq", "value": "a"})], place, text)
    assert caught.value.part == "filters[0].field"


def test_a_record_left_out_by_its_filters_costs_no_warning() -> None:
    records = [{"d": "bad", "n": 1, "k": "no"}, {"d": "2026-07-01", "n": 1, "k": "yes"}]
    keep = Filters(
        [Filter.model_validate({"field": "$.k", "op": "eq", "value": "yes"})], lambda _, n: n, first
    )
    values, bad = _tally(records, Fields(first, "$.d", "$.n", keep=keep))
    assert values == [DailyValue("q", date(2026, 7, 1), 1.0)]
    assert bad == {}


def test_api_days_are_iso_or_the_format_given() -> None:
    assert parse_day("2026-07-01", None) == date(2026, 7, 1)
    assert parse_day(" 2026-07-01T23:00:00Z ", None) == date(2026, 7, 1)
    assert parse_day("01/07/2026", None) == "`01/07/2026` is not an ISO date: set `date_format`"
    assert parse_day("2026-13-01", None) == "`2026-13-01` is not an ISO date: set `date_format`"
    assert parse_day("01/07/2026", "%d/%m/%Y") == date(2026, 7, 1)
    assert parse_day("2026-07-01", "%d/%m/%Y") == "`2026-07-01` does not match `%d/%m/%Y`"
    assert parse_day(None, None) == "no date"


def test_typed_dates_take_their_slash_order_from_all_the_values() -> None:
    us = DateReader(["07/13/2026", "07/01/2026"], None)
    assert us.parse("07/01/2026") == date(2026, 7, 1)
    assert us.warning is None
    ambiguous = DateReader(["03/04/2026"], None)
    assert ambiguous.parse("03/04/2026") == date(2026, 4, 3)
    assert ambiguous.warning is not None
    assert "%m/%d/%Y" in ambiguous.warning
    reader = DateReader([], None)
    assert reader.parse("01.07.2026") == date(2026, 7, 1)
    assert reader.parse("2026/07/01 10:00") == date(2026, 7, 1)
    assert reader.parse("01.07.26") == "`01.07.26` is not a date: use a four-digit year"
    assert reader.parse("31.02.2026") == "`31.02.2026` is not a date"
    assert reader.parse("") == "no date"
    assert DateReader([], "%Y%m%d").parse("20260701") == date(2026, 7, 1)


def test_figures_in_text_and_in_cells() -> None:
    assert parse_number("1.234,5", ",") == 1234.5
    assert parse_number("1,234.5", ".") == 1234.5
    assert parse_number("1 234", ".") == 1234.0
    assert parse_number("12 apples", ".") is None
    assert text_figure("", ".", "value") is None
    assert text_figure("0", ".", "value") == 0.0
    assert text_figure("n/a", ".", "Umsatz") == "`Umsatz` is not a number: `n/a`"


def test_json_fields_and_records_by_jsonpath() -> None:
    body = {"data": {"items": [{"a": {"b": 1}}, {"a": {}}]}}
    assert find_records(body, "data.items") == body["data"]["items"]
    assert find_records(body, "$.data.items[*].a") == [{"b": 1}, {}]
    assert first({"a": {"b": 1}}, "$.a.b") == 1
    assert first({"a": {}}, "$.a.b") is None


def test_groups_and_the_warnings_listed() -> None:
    assert group_label(None) == group_label("") == BLANK_GROUP
    assert group_label(0) == "0"
    bad = dict.fromkeys(range(MAX_LISTED + 3), "no date")
    warnings = reported(bad, "line", "rows")
    assert warnings[0] == "line 0: no date"
    assert warnings[-1] == "and 3 more rows that can't be read"
