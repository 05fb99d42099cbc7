"""The cycle review (SPEC section 8) in every format, its figures worked out by hand in
`review.seed`, on both databases."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from review.seed import Seeded, seed

from app.okr import cache
from app.review.export import dashboard_colours, sheet_names
from factories import api_key_headers, cycle

AS_OF = "2026-10-15"


@pytest.fixture
def ws(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Seeded:
    return seed(client, monkeypatch)


def _review(client: TestClient, ws: Seeded, fmt: str = "json", **params: str) -> Any:
    response = client.get(
        f"/api/v1/cycles/{ws.cycle}/review", params={"format": fmt, "as_of": AS_OF, **params}
    )
    assert response.status_code == 200, response.text
    return response


def _krs(body: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {kr["id"]: kr for o in body["objectives"] for kr in o["key_results"]}


def test_the_json_review_holds_the_figures_worked_out_by_hand(
    client: TestClient, ws: Seeded
) -> None:
    body = _review(client, ws).json()
    assert body["cycle"]["id"] == ws.cycle
    assert body["as_of"] == AS_OF
    assert body["expected_progress"] == 1.0
    krs = _krs(body)
    figures = {
        kid: (
            krs[kid]["current_value"],
            krs[kid]["target_value"],
            krs[kid]["score"],
            krs[kid]["status"],
            krs[kid]["measured_by"],
            krs[kid]["team"],
        )
        for kid in krs
    }
    assert figures == {
        ws.followers: (2100.0, 3000.0, 0.7, "off_track", "check_ins", "Growth"),
        ws.signups: (500.0, 500.0, 1.0, "done", "check_ins", "Growth"),
        ws.pushed: (None, 1000.0, None, "no_data", "data", "Growth"),
        ws.website: (0.0, 1.0, 0.0, "off_track", "nothing", "Brand"),  # reached at 1
        ws.press: (12.0, 40.0, 0.3, "off_track", "check_ins", "Brand"),
    }
    assert krs[ws.followers]["progress"] == pytest.approx(0.7)
    assert krs[ws.followers]["owner"] == "ana"
    # The review agrees with every other read of the same day.
    dashboard = client.get(f"/api/v1/dashboard?cycle_id={ws.cycle}&as_of={AS_OF}").json()
    for obj in dashboard["objectives"]:
        mine = next(o for o in body["objectives"] if o["id"] == obj["id"])
        assert mine["progress"] == (obj["progress"] or {}).get("progress")
        assert mine["score"] == (obj["progress"] or {}).get("score")
    # An open cycle: no grade yet, beside the computed score, and nothing frozen.
    assert (krs[ws.followers]["final_score"], krs[ws.followers]["frozen"]) == (None, False)


def test_the_statistics_worked_out_by_hand(client: TestClient, ws: Seeded) -> None:
    stats = _review(client, ws).json()["statistics"]
    assert stats["objectives"] == 3
    assert stats["key_results"] == 5
    # (0.7 + 1.0 + 0.0 + 0.3) / 4: the key result with no data has no score.
    assert stats["average_score"] == pytest.approx(0.5)
    assert [(b["band"], b["key_results"]) for b in stats["score_bands"]] == [
        ("0.0-0.3", 2),
        ("0.4-0.6", 0),
        ("0.7-1.0", 2),
        ("no score", 1),
    ]
    assert stats["by_status"] == {"done": 1, "no_data": 1, "off_track": 3}
    assert stats["by_team"] == [
        # Brand: the website 0.0 and the press 0.3 (the solo objective has no key result).
        {
            "team": "Brand",
            "objectives": 2,
            "key_results": 2,
            "average_score": 0.15,
            "average_progress": 0.15,
        },
        # Growth: 0.7 and 1.0; the pushed revenue has none.
        {
            "team": "Growth",
            "objectives": 1,
            "key_results": 3,
            "average_score": 0.85,
            "average_progress": 0.85,
        },
    ]
    assert (stats["fed_by_data"], stats["checked_in_by_hand"], stats["not_measured"]) == (1, 3, 1)
    assert stats["rollups"] == 0
    assert stats["share_fed_by_data"] == pytest.approx(0.2)  # 1 of 5
    # Fri 07-10 (6) in the week of Mon 07-06; Mon 08-10 (8) and Wed 08-12 (10) in the next.
    assert stats["confidence_by_week"] == [
        {"week_start": "2026-07-06", "check_ins": 1, "average_confidence": 6.0},
        {"week_start": "2026-08-10", "check_ins": 2, "average_confidence": 9.0},
    ]
    assert stats["average_confidence"] == pytest.approx(8.0)  # (6 + 8 + 10) / 3


def test_the_review_carries_the_findings_and_the_retrospective(
    client: TestClient, ws: Seeded
) -> None:
    entry = client.post(
        f"/api/v1/cycles/{ws.cycle}/retrospective",
        json={
            "format": "4l",
            "category": "learned",
            "text": "Press takes a quarter to warm up",
            "objective_id": ws.brand,
        },
    ).json()
    body = _review(client, ws).json()
    assert [e["id"] for e in body["retrospective"]] == [entry["id"]]
    found = [
        (f["rule"], f["severity"], f["objective_id"], f["key_result_id"]) for f in body["findings"]
    ]
    assert found == [
        ("unmeasured", "warning", ws.growth, ws.followers),  # last check-in 08-10
        ("unmeasured", "warning", ws.growth, ws.signups),  # last check-in 08-12
        ("no_owner", "warning", ws.brand, None),
        ("task_not_outcome", "warning", ws.brand, ws.website),
        ("unmeasured", "warning", ws.brand, ws.press),  # last check-in 07-15
        ("no_key_results", "error", ws.solo, None),
        ("not_aligned", "warning", ws.solo, None),
    ]
    website = next(f for f in body["findings"] if f["rule"] == "task_not_outcome")
    assert website["message"] == (
        "'Launch the new website' names an activity: what outcome shows it worked?"
    )


def test_csv_is_a_row_a_key_result_read_back_by_the_csv_module(
    client: TestClient, ws: Seeded
) -> None:
    response = _review(client, ws, "csv")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="review-2026-Q3.csv"'
    rows = list(csv.DictReader(io.StringIO(response.text)))
    by_kr = {r["key_result_id"]: r for r in rows if r["key_result_id"]}
    assert len(by_kr) == 5
    followers = by_kr[str(ws.followers)]
    assert float(followers["current_value"]) == 2100.0
    assert float(followers["target_value"]) == 3000.0
    assert float(followers["score"]) == 0.7
    assert followers["status"] == "off_track"
    assert followers["team"] == "Growth"
    assert followers["objective"] == "Grow the audience"
    assert followers["findings"] == "unmeasured"
    assert by_kr[str(ws.pushed)]["score"] == ""  # no score: an empty cell, not "None"
    assert by_kr[str(ws.website)]["findings"] == "task_not_outcome"
    # The objective without key results keeps a row, so nobody's objective goes missing.
    solo = [r for r in rows if r["objective_id"] == str(ws.solo)]
    assert len(solo) == 1
    assert solo[0]["key_result_id"] == ""
    assert solo[0]["findings"] == "no_key_results not_aligned"


def test_xlsx_has_a_summary_and_a_sheet_a_team_with_numbers_and_the_dashboard_colours(
    client: TestClient, ws: Seeded
) -> None:
    response = _review(client, ws, "xlsx")
    assert response.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert response.headers["content-disposition"] == ('attachment; filename="review-2026-Q3.xlsx"')
    wb = load_workbook(io.BytesIO(response.content))
    assert wb.sheetnames == ["Summary", "Brand", "Growth"]
    colours = dashboard_colours()
    # The stylesheet's own values: the spreadsheet colours as the dashboard does.
    assert colours["on_track-bg"] == "#dcf3e3"
    assert colours["off_track-bg"] == "#fbdfe0"

    def rows(name: str) -> dict[str, dict[str, Any]]:
        sheet = wb[name]
        header = [c.value for c in sheet[1]]
        out = {}
        for line in sheet.iter_rows(min_row=2):
            cells = dict(zip(header, line, strict=True))
            out[str(cells["Key result"].value or cells["Objective"].value)] = cells
        return out

    growth = rows("Growth")
    assert set(growth) == {"3,000 new followers", "500 newsletter sign-ups", "Pushed revenue"}
    followers = growth["3,000 new followers"]
    for heading, want in (("Current", 2100), ("Target", 3000), ("Score", 0.7), ("Progress", 0.7)):
        value = followers[heading].value
        assert isinstance(value, int | float), heading
        assert not isinstance(value, bool), heading
        assert value == pytest.approx(want), heading
    assert followers["Progress"].number_format == "0%"

    def fill(cell: Any) -> str:
        return "#" + str(cell.fill.start_color.rgb)[-6:].lower()

    assert fill(followers["Score"]) == colours["on_track-bg"]  # 0.7: a good result
    assert fill(growth["500 newsletter sign-ups"]["Status"]) == colours["done-bg"]
    assert fill(followers["Status"]) == colours["off_track-bg"]
    assert fill(growth["Pushed revenue"]["Score"]) == colours["no_data-bg"]
    assert growth["Pushed revenue"]["Score"].value is None
    brand = rows("Brand")
    assert set(brand) == {"Launch the new website", "40 press mentions", "Speak at two events"}
    assert fill(brand["40 press mentions"]["Score"]) == colours["off_track-bg"]  # 0.3
    summary = [[c.value for c in line] for line in wb["Summary"].iter_rows()]
    flat = {line[0]: line[1] for line in summary if line and line[0] is not None}
    assert flat["Key results"] == 5
    assert flat["Average score"] == pytest.approx(0.5)
    assert flat["Share fed by data"] == pytest.approx(0.2)
    assert ["Brand", 2, 2, 0.15, 0.15] in [line[:5] for line in summary]


def test_markdown_pastes_into_a_wiki(client: TestClient, ws: Seeded) -> None:
    client.post(
        f"/api/v1/cycles/{ws.cycle}/retrospective",
        json={
            "format": "start_stop_continue",
            "category": "stop",
            "text": "Counting | pipes as progress",
        },
    )
    response = _review(client, ws, "md")
    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="review-2026-Q3.md"'
    text = response.text
    assert text.startswith("# Review of 2026-Q3\n")
    assert "| 3,000 new followers | ana | 2,100 | 3,000 | 70% | 0.7 | off track | unmeasured |" in (
        text
    )
    assert "| 0.0-0.3 | 2 |" in text
    assert "#### Stop" in text
    assert "- Counting \\| pipes as progress — " in text
    # Every table row has as many cells as its header.
    for block in text.split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln.startswith("| ")]
        if lines:
            widths = {ln.replace("\\|", "").count("|") for ln in lines}
            assert len(widths) == 1, block


def test_a_bad_format_is_a_422_and_an_unknown_cycle_a_404(client: TestClient, ws: Seeded) -> None:
    bad = client.get(f"/api/v1/cycles/{ws.cycle}/review?format=pdf")
    assert bad.status_code == 422
    assert client.get("/api/v1/cycles/999999/review").status_code == 404
    assert client.get(f"/api/v1/cycles/{ws.cycle}/review?as_of=15/10/2026").status_code == 422


def test_a_viewer_downloads_the_review(anon: TestClient, client: TestClient, ws: Seeded) -> None:
    viewer = api_key_headers(client, "viewer")
    for fmt in ("json", "csv", "xlsx", "md"):
        response = anon.get(f"/api/v1/cycles/{ws.cycle}/review?format={fmt}", headers=viewer)
        assert response.status_code == 200, (fmt, response.text[:200])


def test_the_objective_review_lists_its_findings(client: TestClient, ws: Seeded) -> None:
    body = client.get(f"/api/v1/objectives/{ws.solo}/review?as_of={AS_OF}").json()
    assert body["objective_id"] == ws.solo
    assert [f["rule"] for f in body["findings"]] == ["no_key_results", "not_aligned"]
    assert client.get("/api/v1/objectives/999999/review").status_code == 404


def test_an_empty_cycle_reviews_cleanly(client: TestClient) -> None:
    c = cycle(client, name="Empty / quarter")["id"]
    body = client.get(f"/api/v1/cycles/{c}/review").json()
    assert body["objectives"] == []
    assert body["findings"] == []
    assert body["statistics"]["share_fed_by_data"] is None
    response = client.get(f"/api/v1/cycles/{c}/review?format=xlsx")
    assert load_workbook(io.BytesIO(response.content)).sheetnames == ["Summary"]
    assert 'filename="review-Empty-quarter.xlsx"' in response.headers["content-disposition"]


def test_sheet_names_excel_takes() -> None:
    names = sheet_names(["", "Summary", "A/B: [x]", "x" * 40, "x" * 40 + "y"])
    assert names[""] == "No team"
    assert names["Summary"] == "Summary (2)"
    assert names["A/B: [x]"] == "A-B- -x-"
    assert len(names["x" * 40]) == 31
    assert names["x" * 40] != names["x" * 40 + "y"]


def test_the_review_reads_in_a_fixed_number_of_statements(client: TestClient, ws: Seeded) -> None:
    from okr.test_statement_count import count_statements

    _review(client, ws)
    cache.clear()
    with count_statements() as small:
        _review(client, ws)
    growth_more = client.post(
        "/api/v1/objectives", json={"title": "More", "cycle_id": ws.cycle, "owner": "x"}
    ).json()["id"]
    for i in range(6):
        kr = client.post(
            "/api/v1/key-results",
            json={"objective_id": growth_more, "title": f"{i} more", "target_value": 10},
        ).json()["id"]
        client.post(
            f"/api/v1/key-results/{kr}/check-ins",
            json={"date": "2026-08-01", "value": 1, "confidence": 5},
        )
    with count_statements() as large:
        _review(client, ws)
    assert len(small) == len(large)
    assert date.fromisoformat(AS_OF)  # the day the figures are read on
