"""The ``csv`` connector on messy real-world files: local ones inside KRSYNC_FILES_DIR and URLs."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from app.core.http import KrsyncClient
from app.sync.connect import connector_from, open_connector
from connectors import registry
from connectors.base import (
    ConnectorAuthError,
    ConnectorConfigError,
    Filter,
    MappingError,
    MetricQuery,
    Window,
)
from connectors.csv_source.connector import CsvConnector
from connectors.records import parse_number

FIXTURES = Path(__file__).parent / "fixtures" / "csv"
WINDOW = Window(date(2026, 7, 1), date(2026, 7, 10))
SHEET_URL = "https://docs.google.com/spreadsheets/d/e/XYZ/pub?output=csv"


@pytest.fixture
def files_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "files"
    root.mkdir()
    for fixture in FIXTURES.glob("*.csv"):
        shutil.copy(fixture, root / fixture.name)
    monkeypatch.setenv("KRSYNC_FILES_DIR", str(root))
    return root


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """``get_connector("csv")`` finds the class before the entry point is installed."""
    discover = registry._discover
    monkeypatch.setattr(registry, "_discover", lambda: {**discover(), "csv": CsvConnector})
    monkeypatch.setattr(registry, "_cache", None)


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"a local file made an HTTP call to {request.url}")


@asynccontextmanager
async def connector(config: dict[str, Any], *, http: bool = False) -> AsyncIterator[CsvConnector]:
    async with open_connector(
        connector_from(CsvConnector, config, {}, name="csv-test"),
        allow_private=True,  # respx answers; no name is resolved
        transport=None if http else httpx.MockTransport(no_network),
    ) as c:
        assert isinstance(c, CsvConnector)
        assert isinstance(c.http, KrsyncClient)
        yield c


def query(
    qid: str = "1",
    *,
    filters: list[dict[str, Any]] | None = None,
    **params: str,
) -> MetricQuery:
    flts = [Filter.model_validate(f) for f in filters or []]
    validated = CsvConnector.validate_query("value", params, flts, "sum")
    return MetricQuery(qid, "value", validated, tuple(flts))


def by_day(values: list[Any]) -> dict[tuple[date, str | None], float]:
    return {(v.date, v.group): v.value for v in values}


@pytest.mark.anyio
async def test_a_messy_european_file_is_read_and_its_bad_rows_reported(files_dir: Path) -> None:
    async with connector({"path": "messy_semicolon.csv"}) as csv:
        result = await csv.fetch([query(date_column="Datum", value_column="Umsatz")], WINDOW)

    # BOM, `;`, decimal commas, thousands dots and spaces, an ISO date among German ones
    assert by_day(result.values) == {
        (date(2026, 7, 1), None): 1244.75,
        (date(2026, 7, 2), None): 7.0,
        (date(2026, 7, 4), None): 3.5,
        (date(2026, 7, 5), None): 1000.0,
    }
    assert not result.query_errors
    assert result.warnings == [
        "line 7: `Umsatz` is not a number: `zwölf`",
        "line 10: `31.02.2026` is not a date",
        "line 11: 2 fields where the header has 4",
    ]


@pytest.mark.anyio
async def test_filters_apply_row_wise_and_a_group_column_splits(files_dir: Path) -> None:
    async with connector({"path": "grouped.csv"}) as csv:
        result = await csv.fetch(
            [
                query("all", date_column="date", value_column="signups", group_column="channel"),
                query(
                    "us",
                    filters=[{"field": "country", "op": "eq", "value": "US"}],
                    date_column="date",
                    value_column="signups",
                ),
                query(
                    "summer",
                    filters=[
                        {"field": "campaign", "op": "contains", "value": "Summer"},
                        {"field": "country", "op": "in", "value": ["US", "GB"]},
                    ],
                    date_column="date",
                    value_column="signups",
                    group_column="channel",
                ),
                query(
                    "no_paid",
                    filters=[{"field": "channel", "op": "not_in", "value": ["Paid Search"]}],
                    date_column="date",
                    value_column="signups",
                ),
                query(
                    "not_gb",
                    filters=[{"field": "COUNTRY", "op": "neq", "value": "GB"}],
                    date_column="Date",  # names match without case when only one does
                    value_column="signups",
                ),
            ],
            WINDOW,
        )

    got: dict[str, dict[tuple[date, str | None], float]] = {}
    for v in result.values:
        got.setdefault(v.query_id, {})[v.date, v.group] = v.value
    d1, d2 = date(2026, 7, 1), date(2026, 7, 2)
    assert got["all"] == {
        (d1, "Email"): 5.0,
        (d1, "Paid Search"): 1204.5,
        (d2, "Email"): 5.0,
        (d2, "(blank)"): 1.0,
        (d2, "Paid Search"): 4.0,
    }
    assert got["us"] == {(d1, None): 1207.5, (d2, None): 6.0}
    assert got["summer"] == {(d1, "Email"): 5.0}
    assert got["no_paid"] == {(d1, None): 5.0, (d2, None): 6.0}
    assert got["not_gb"] == {(d1, None): 1207.5, (d2, None): 6.0}
    assert not result.warnings
    assert not result.query_errors


@pytest.mark.anyio
async def test_month_first_dates_are_used_only_when_the_file_proves_them(files_dir: Path) -> None:
    async with connector({"path": "us_dates.tsv.csv"}) as csv:
        result = await csv.fetch(
            [query(date_column="Day", value_column="Sessions")],
            Window(date(2026, 7, 1), date(2026, 12, 31)),
        )
    assert by_day(result.values) == {
        (date(2026, 7, 1), None): 10.0,
        (date(2026, 7, 13), None): 20.0,
        (date(2026, 12, 31), None): 5.0,
    }
    assert result.warnings == []

    (files_dir / "ambiguous.csv").write_text("date,value\n03/04/2026,1\n")
    async with connector({"path": "ambiguous.csv"}) as csv:
        result = await csv.fetch([query()], Window(date(2026, 4, 1), date(2026, 4, 30)))
    assert by_day(result.values) == {(date(2026, 4, 3), None): 1.0}
    assert "%m/%d/%Y" in result.warnings[0]

    async with connector({"path": "ambiguous.csv", "date_format": "%m/%d/%Y"}) as csv:
        result = await csv.fetch([query()], Window(date(2026, 3, 1), date(2026, 3, 31)))
    assert by_day(result.values) == {(date(2026, 3, 4), None): 1.0}


@pytest.mark.anyio
async def test_a_published_google_sheet_link_works_as_it_is() -> None:
    body = (
        "\ufeffDate,Signups,Channel\r\n"
        "2026-07-01,4,Email\r\n2026-07-01,2,Web\r\n2026-07-02,3,Email\r\n"
    )
    with respx.mock(assert_all_called=True) as router:
        router.get(SHEET_URL).mock(
            return_value=httpx.Response(
                200, headers={"Content-Type": "text/csv"}, content=body.encode()
            )
        )
        async with connector({"url": SHEET_URL}, http=True) as csv:
            checked = await csv.check()
            result = await csv.fetch(
                [query(date_column="Date", value_column="Signups", group_column="Channel")], WINDOW
            )

    assert checked.details["columns"] == ["Date", "Signups", "Channel"]
    assert "Date, Signups, Channel" in checked.message
    assert by_day(result.values) == {
        (date(2026, 7, 1), "Email"): 4.0,
        (date(2026, 7, 1), "Web"): 2.0,
        (date(2026, 7, 2), "Email"): 3.0,
    }


@pytest.mark.anyio
async def test_an_unpublished_sheet_says_to_publish_it() -> None:
    with respx.mock() as router:
        router.get(SHEET_URL).mock(return_value=httpx.Response(403, text="Forbidden"))
        async with connector({"url": SHEET_URL}, http=True) as csv:
            with pytest.raises(ConnectorAuthError, match="publish the Google Sheet"):
                await csv.check()

    with respx.mock() as router:
        page = "<!DOCTYPE html><html><title>Sign in</title></html>"
        router.get(SHEET_URL).mock(
            return_value=httpx.Response(200, headers={"Content-Type": "text/html"}, text=page)
        )
        async with connector({"url": SHEET_URL}, http=True) as csv:
            with pytest.raises(ConnectorConfigError, match="web page, not CSV"):
                await csv.fetch([query()], WINDOW)


@pytest.mark.anyio
async def test_a_missing_column_names_it_and_the_columns_found(files_dir: Path) -> None:
    async with connector({"path": "grouped.csv"}) as csv:
        with pytest.raises(ConnectorConfigError) as lost:
            await csv.fetch([query(date_column="day", value_column="signups")], WINDOW)
        assert "`day`" in lost.value.message
        assert "`date`, `channel`, `country`, `campaign`, `signups`" in lost.value.message

        # one mapping with a wrong column doesn't block the others
        result = await csv.fetch(
            [
                query("ok", date_column="date", value_column="signups"),
                query("bad", value_column="x"),
            ],
            WINDOW,
        )
        assert {v.query_id for v in result.values} == {"ok"}
        assert "`x`" in result.query_errors["bad"]

        with pytest.raises(MappingError) as refused:
            await csv.validate_mapping_online(
                query(
                    filters=[{"field": "region", "op": "eq", "value": "EU"}],
                    date_column="date",
                    value_column="signups",
                )
            )
        assert refused.value.part == "filters[0].field"


@pytest.mark.anyio
async def test_local_paths_stay_inside_the_files_dir(
    files_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text("date,value\n2026-07-01,1\n")
    (files_dir / "escape.csv").symlink_to(outside)
    (files_dir / "sub").mkdir()
    (files_dir / "sub" / "ok.csv").write_text("date,value\n2026-07-01,1\n")

    async with connector({"path": str(files_dir / "sub" / "ok.csv")}) as csv:
        assert (await csv.fetch([query()], WINDOW)).values
    for path in (str(outside), "../secret.csv", "escape.csv", "sub/../../secret.csv"):
        async with connector({"path": path}) as csv:
            with pytest.raises(ConnectorConfigError, match="only from KRSYNC_FILES_DIR"):
                await csv.fetch([query()], WINDOW)
    async with connector({"path": "nope.csv"}) as csv:
        with pytest.raises(ConnectorConfigError, match=r"no file `nope\.csv`"):
            await csv.check()

    monkeypatch.delenv("KRSYNC_FILES_DIR")
    async with connector({"path": "grouped.csv"}) as csv:
        with pytest.raises(ConnectorConfigError, match="local paths are refused"):
            await csv.check()


@pytest.mark.anyio
async def test_krsyncs_own_database_is_no_csv_file(
    files_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin who sets KRSYNC_FILES_DIR to krsync's own directory must not let an editor read
    the database as a CSV: its rows would come back quoted in the warnings."""
    own = files_dir / "krsync.db"
    own.write_bytes(b"date,value\n2026-07-01,1\n")
    (files_dir / "alias.csv").symlink_to(own)
    monkeypatch.delenv("KRSYNC_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{own}")
    for name in ("krsync.db", "alias.csv"):
        async with connector({"path": name}) as csv:
            with pytest.raises(ConnectorConfigError, match="krsync's own database"):
                await csv.fetch([query()], WINDOW)


@pytest.mark.anyio
async def test_fifty_thousand_rows_are_filtered_and_summed_a_day(files_dir: Path) -> None:
    """How fast is bench/csv_rows.py's to say (under a second for the same file)."""
    start = date(2020, 1, 1)
    lines = ["date;channel;value"]
    for i in range(50_000):
        day = start + timedelta(days=i // 20)
        lines.append(f"{day:%d.%m.%Y};{'Email' if i % 2 else 'Web'};{i % 97},5")
    (files_dir / "big.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    window = Window(start, start + timedelta(days=2499))

    async with connector({"path": "big.csv"}) as csv:
        result = await csv.fetch(
            [
                query(
                    group_column="channel",
                    filters=[{"field": "channel", "op": "eq", "value": "Email"}],
                )
            ],
            window,
        )

    assert len(result.values) == 2500
    assert sum(v.value for v in result.values) == pytest.approx(
        sum(i % 97 + 0.5 for i in range(1, 50_000, 2))
    )
    assert not result.warnings


@pytest.mark.anyio
async def test_bad_rows_beyond_twenty_are_counted(files_dir: Path) -> None:
    rows = "".join(f"2026-07-0{1 + i % 9},n/a\n" for i in range(25))
    (files_dir / "bad.csv").write_text("date,value\n2026-07-01,1\n" + rows)
    async with connector({"path": "bad.csv"}) as csv:
        result = await csv.fetch([query()], WINDOW)
    assert by_day(result.values) == {(date(2026, 7, 1), None): 1.0}
    assert len(result.warnings) == 21
    assert result.warnings[0] == "line 3: `value` is not a number: `n/a`"
    assert result.warnings[-1] == "and 5 more rows that can't be read"


@pytest.mark.parametrize(
    ("text", "decimal", "expected"),
    [
        ("12", ".", 12.0),
        ("-1.5", ".", -1.5),
        ("1,234.5", ".", 1234.5),
        ("1,234,567", ".", 1234567.0),
        ("1 234.5", ".", 1234.5),
        ("1e3", ".", 1000.0),
        ("12,5", ",", 12.5),
        ("1.234,5", ",", 1234.5),
        ("1\u00a0234,5", ",", 1234.5),
        ("1'234.5", ".", 1234.5),
        ("12,5", ".", None),
        ("1.5", ",", None),
        ("nan", ".", None),
        ("inf", ".", None),
        ("1_000", ".", None),
        ("€12", ".", None),
    ],
)
def test_numbers(text: str, decimal: str, expected: float | None) -> None:
    assert parse_number(text, decimal) == expected


def test_config_takes_a_url_or_a_path(registered: None) -> None:
    from pydantic import ValidationError

    from connectors.registry import get_connector

    cls = get_connector("csv")
    cls.config_model.model_validate({"url": SHEET_URL, "delimiter": ";", "decimal": ","})
    for bad in ({}, {"url": SHEET_URL, "path": "a.csv"}, {"url": "file:///etc/passwd"}):
        with pytest.raises(ValidationError):
            cls.config_model.model_validate(bad)
    described = cls.describe()
    [metric] = described["metrics"]
    assert metric["additive"]
    assert metric["history"] == "daily"
    assert metric["aggregations"] == ["sum", "last", "avg", "min", "max", "ratio"]
