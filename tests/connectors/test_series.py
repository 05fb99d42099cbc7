"""The reading helpers of the toolkit (connectors/series.py, ``Classifier.json``): days in a zone,
sums per (day, group), the warnings about unreadable records, and an answer read or refused."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import httpx
import pytest

from connectors import series
from connectors.base import (
    ConnectorAuthError,
    DailyValue,
    FetchResult,
    MetricQuery,
    NoParams,
    RetriableError,
    Window,
    limit_headers,
)
from connectors.errors import Classifier

PARIS = ZoneInfo("Europe/Paris")
WINDOW = Window(date(2026, 7, 1), date(2026, 7, 3))


def _query(qid: str, metric: str = "m") -> MetricQuery:
    return MetricQuery(qid, metric, NoParams())


def test_days_are_read_in_the_zone_asked() -> None:
    assert series.iso_day("2026-07-01 00:00:00") == date(2026, 7, 1)
    assert series.iso_day("yesterday") is None
    # 23:30 UTC on 30 June is already 1 July in Paris; an instant without offset is UTC.
    assert series.local_day("2026-06-30T23:30:00+00:00", PARIS) == date(2026, 7, 1)
    assert series.local_day("2026-06-30T23:30:00", PARIS) == date(2026, 7, 1)
    assert series.local_day("", PARIS) is None
    assert series.midnight(date(2026, 7, 1), PARIS).isoformat() == "2026-07-01T00:00:00+02:00"
    assert series.zone_name("Europe/Paris") == "Europe/Paris"
    assert series.zone_name("Mars/Olympus") is None


def test_sums_are_per_day_and_group_in_order() -> None:
    sums = series.Sums()
    sums.add(date(2026, 7, 2), 1.0, "b")
    sums.add(date(2026, 7, 1), 2.0)
    sums.add(date(2026, 7, 2), 3.0, "a")
    sums.add(date(2026, 7, 2), 4.0, "b")
    assert sums.values("q") == [
        DailyValue("q", date(2026, 7, 1), 2.0),
        DailyValue("q", date(2026, 7, 2), 3.0, "a"),
        DailyValue("q", date(2026, 7, 2), 5.0, "b"),
    ]


def test_daily_keeps_the_window_and_snapshot_dates_on_its_end() -> None:
    days = {date(2026, 7, 4): 1.0, date(2026, 7, 2): 2.0}
    assert series.daily("q", days, WINDOW) == [DailyValue("q", date(2026, 7, 2), 2.0)]
    assert series.snapshot([_query("a"), _query("b")], 7.0, WINDOW) == [
        DailyValue("a", WINDOW.end, 7.0),
        DailyValue("b", WINDOW.end, 7.0),
    ]


def test_queries_group_and_fail_together() -> None:
    queries = [_query("a", "x"), _query("b", "y"), _query("c", "x")]
    groups = series.group_queries(queries, lambda q: q.metric)
    assert [[q.id for q in g] for g in groups.values()] == [["a", "c"], ["b"]]
    result = FetchResult()
    result.fail(groups["x"], "refused")
    assert result.query_errors == {"a": "refused", "c": "refused"}


def test_bad_records_past_the_first_twenty_are_counted() -> None:
    bad = [f"record {i}: no date" for i in range(23)]
    warnings = series.listed(bad, "records")
    assert warnings[:20] == bad[:20]
    assert warnings[20:] == ["and 3 more records that can't be read"]
    assert series.listed(bad[:2], "rows") == bad[:2]


@pytest.mark.parametrize(
    ("op", "values", "fold", "expected"),
    [
        ("eq", ["Spring"], False, True),
        ("in", ["Autumn", "Spring sale"], False, False),
        ("not_in", ["Autumn"], False, True),
        ("contains", ["SPRING"], False, False),
        ("contains", ["SPRING"], True, True),
    ],
)
def test_text_filters(op: str, values: list[str], fold: bool, expected: bool) -> None:
    assert series.passes("Spring", op, values, fold=fold) is expected  # type: ignore[arg-type]


def test_an_answer_without_its_records_is_retried() -> None:
    assert series.rows_of({"data": [1]}, "data", "Example") == [1]
    with pytest.raises(RetriableError, match="without a `data` list"):
        series.rows_of({"data": None}, "data", "Example")


def _answer(status: int, **kwargs: object) -> httpx.Response:
    request = httpx.Request("GET", "https://api.example.test/v1/things")
    return httpx.Response(status, request=request, **kwargs)  # type: ignore[arg-type]


def test_classifier_json_reads_a_success_and_raises_a_failure() -> None:
    example = Classifier("Example")
    assert example.json(_answer(200, json={"a": 1}), None, obj=True) == {"a": 1}
    with pytest.raises(RetriableError, match="isn't an object"):
        example.json(_answer(200, json=[1]), None, obj=True)
    with pytest.raises(RetriableError, match="isn't JSON"):
        example.json(_answer(200, text="<html>"), None)
    with pytest.raises(ConnectorAuthError, match="Example refused the credentials"):
        example.json(_answer(401, json={"message": "bad key"}), None)


def test_limit_headers_keep_what_is_there() -> None:
    response = _answer(200, headers={"x-ratelimit-limit": "80", "x-ratelimit-remaining": "79"})
    assert limit_headers(response, "x-ratelimit-") == {"limit": 80, "remaining": 79}


def test_epoch_milliseconds_bound_and_date_days() -> None:
    # Midnight in Paris on 1 July 2026 is 22:00 UTC on 30 June.
    assert series.epoch_ms(date(2026, 7, 1)) == 1_782_864_000_000
    assert series.epoch_ms(date(2026, 7, 1), PARIS) == 1_782_864_000_000 - 2 * 3_600_000
    assert series.day_of("1782864000000", PARIS) == date(2026, 7, 1)
    assert series.day_of(1_782_864_000_000 - 1, PARIS) == date(2026, 7, 1)
    assert series.day_of(1_782_864_000_000 - 1, ZoneInfo("UTC")) == date(2026, 6, 30)
    # A plain day is its own day whatever the zone; an instant is placed in the zone.
    assert series.day_of("2026-07-01", ZoneInfo("America/New_York")) == date(2026, 7, 1)
    assert series.day_of("2026-06-30T22:30:00Z", PARIS) == date(2026, 7, 1)
    for unreadable in (None, "", "  ", "soon", "9" * 30):
        assert series.day_of(unreadable, PARIS) is None
