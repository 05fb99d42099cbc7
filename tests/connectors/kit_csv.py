"""The contract kit of ``csv`` (connectors/csv_source/), driven through its URL form.

The platform is a "publish to web" CSV link answering ``text/csv``: semicolons, a BOM and
decimal commas, as a European spreadsheet exports them. The ``*.test`` host resolves to a
public address in the contract suite (``configure_engine``), so the private-network guard stays
in the path. A public CSV link has no credentials: the bad-credentials scenario is the host
refusing access (401), which must say to publish the file.
"""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import respx

from connectors.base import Window
from connectors.csv_source.connector import CsvConnector
from connectors.testing import Expected, Kit, Mocked, Query, Scenario

CSV_HOST = "sheets.krsync.test"
CSV_PATH = "/spreadsheets/d/e/KIT/pub"
CSV_URL = f"https://{CSV_HOST}{CSV_PATH}?output=csv"
FIRST, LAST = date(2025, 1, 1), date(2026, 12, 31)
HEADER = "Datum;Kanal;Anmeldungen\r\n"


def kit_body(*, empty: bool = False) -> bytes:
    """Each day, two Email rows of half the day of month each (``x,5``) and a Web row."""
    lines = [HEADER]
    day = FIRST
    while not empty and day <= LAST:
        half = f"{day.day / 2:g}".replace(".", ",")
        stamp = day.strftime("%d.%m.%Y")
        lines += [f"{stamp};Email;{half}\r\n", f"{stamp};Web;1.000,25\r\n"]
        lines.append(f"{stamp};Email;{half}\r\n")
        day += timedelta(days=1)
    return "\ufeff".encode() + "".join(lines).encode()


def _mock_csv(router: respx.MockRouter, scenario: Scenario) -> Mocked:
    route = router.get(host=CSV_HOST, path=CSV_PATH)
    csv_headers = {"Content-Type": "text/csv; charset=utf-8"}
    ok = httpx.Response(200, headers=csv_headers, content=kit_body(empty=scenario == "empty"))
    if scenario == "bad_credentials":
        route.mock(return_value=httpx.Response(401, text="Unauthorized"))
    elif scenario == "rate_limited":
        calls = iter(range(1_000))

        def first_busy(request: httpx.Request) -> httpx.Response:
            if next(calls) == 0:
                return httpx.Response(429, headers={"Retry-After": "1"})
            return ok

        route.mock(side_effect=first_busy)
    else:
        route.mock(return_value=ok)

    def expected(window: Window) -> Expected:
        if scenario == "empty":
            return {}
        return {(day, None): float(day.day) for day in window.days()}

    return Mocked(expected=expected, paginates=False)


KIT = Kit(
    connector=CsvConnector,
    config={"url": CSV_URL},
    credentials={},
    query=Query(
        "value",
        params={"date_column": "Datum", "value_column": "Anmeldungen"},
        filters=[{"field": "Kanal", "op": "eq", "value": "Email"}],
    ),
    wrong_type={"url": CSV_URL, "delimiter": 5},
    mock=_mock_csv,
    auth_hint="publish",
)
