"""The key-result page (SPEC section 6, "Key-result page"): its figures, a chart of the cycle,
the points with the sync run behind each, the check-in history and its mappings; editors check
in, correct and delete check-ins there, refused in the API's words beside the field."""

from __future__ import annotations

import html
import re
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sync_factories import freeze_today, make_kr, make_mapping, make_source, sync_source
from web.browser_session import sign_in
from web.workspace import build

from app.web import kr_chart
from conftest import ADMIN_KEY
from factories import create


def _key(client: TestClient, role: str) -> str:
    return str(create(client, "api-keys", name=f"{role} in the browser", role=role)["key"])


def _figure(page: str, name: str) -> str:
    found = re.search(rf'<dd id="kr-{name}">([^<]*)', page)
    assert found, page[-500:]
    return html.unescape(found.group(1)).strip()


def _api(client: TestClient, kr_id: int) -> dict[str, object]:
    body: dict[str, object] = client.get(f"/api/v1/key-results/{kr_id}").json()["progress"]
    return body


def test_a_viewer_reads_figures_chart_points_check_ins_and_mappings_without_forms(
    client: TestClient, anon: TestClient
) -> None:
    ws = build(client)
    leads, followers = ws.kr_ids[0], ws.mapped_kr_ids[0]
    assert client.post(f"/api/v1/data-sources/{ws.source_id}/sync").status_code == 202
    sign_in(anon, _key(client, "viewer"))

    page = anon.get(f"/key-results/{leads}")
    assert page.status_code == 200
    text = page.text
    assert "Generate 600 marketing leads" in text
    api = _api(client, leads)
    assert _figure(text, "current") == f"{api['current_value']:,.0f}\u00a0leads"
    assert _figure(text, "target") == "600\u00a0leads"
    assert 'class="kr-chart kr-chart-wide"' in text
    assert 'class="ch-target"' in text
    assert 'class="ch-pace"' in text
    assert "running total" in text
    assert text.count('class="ch-point') == 2 * 4  # a checked-in day, in the wide and narrow
    for day in ("2026-07-02", "2026-07-20", "2026-08-03", "2026-08-15"):
        assert day in text
    assert "check-in" in text
    assert re.findall(r'<form[^>]*action="([^"]*)"', text) == ["/logout"]  # sign-out only
    assert "Edit</summary>" not in text

    mapped = anon.get(f"/key-results/{followers}").text
    series = client.get(f"/api/v1/key-results/{followers}/series").json()["points"]
    shown = re.findall(r"Demo social &amp; web, run (\d+)</td>", mapped)
    assert len(shown) == min(len(series), 62) > 0  # the latest; all of them in the CSV
    latest = sorted(series, key=lambda p: p["date"])[-len(shown) :]
    assert sorted(map(int, shown)) == sorted(p["sync_run_id"] for p in latest)
    assert f'href="/api/v1/key-results/{followers}/series?format=csv"' in mapped
    assert "Demo social &amp; web" in mapped
    assert "new_followers" in mapped
    assert "platform eq linkedin" in mapped
    assert 'href="/sources/' not in mapped  # the source pages are for admins
    sign_in(anon, ADMIN_KEY)
    as_admin = anon.get(f"/key-results/{followers}").text
    assert f'href="/sources/{ws.source_id}"' in as_admin


def test_the_dashboard_links_each_key_result_to_its_page(
    client: TestClient, anon: TestClient
) -> None:
    ws = build(client, with_source=False)
    sign_in(anon, _key(client, "viewer"))
    dashboard = anon.get("/", params={"cycle_id": ws.cycle_id, "as_of": "2026-08-15"}).text
    for kr_id in ws.kr_ids:
        assert f'href="/key-results/{kr_id}"' in dashboard


def test_an_editor_checks_in_edits_and_deletes_and_the_figures_follow(
    client: TestClient, anon: TestClient
) -> None:
    ws = build(client, with_source=False)
    leads = ws.kr_ids[0]
    token = sign_in(anon, _key(client, "editor"))
    page = anon.get(f"/key-results/{leads}").text
    assert f'action="/key-results/{leads}/check-ins"' in page
    before = _api(client, leads)["current_value"]
    assert before == 255

    made = anon.post(
        f"/key-results/{leads}/check-ins",
        data={
            "date": "2026-08-20",
            "value": "45",
            "note": "webinar week",
            "confidence": "7",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text[-500:]
    assert made.headers["location"].startswith(f"/key-results/{leads}")
    assert _api(client, leads)["current_value"] == 300
    items = client.get(f"/api/v1/key-results/{leads}/check-ins").json()["items"]
    new = items[0]
    assert (new["date"], new["value"], new["note"], new["confidence"]) == (
        "2026-08-20",
        45,
        "webinar week",
        7,
    )
    assert new["author"] == "key:editor in the browser"
    page = anon.get(f"/key-results/{leads}").text
    assert _figure(page, "current") == "300\u00a0leads"
    assert "webinar week" in page
    assert "7/10" in page

    edited = anon.post(
        f"/key-results/{leads}/check-ins/{new['id']}",
        data={
            "date": "2026-08-20",
            "value": "60",
            "note": "webinar week, recounted",
            "confidence": "",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert edited.status_code == 303, edited.text[-500:]
    assert _api(client, leads)["current_value"] == 315
    row = client.get(f"/api/v1/key-results/{leads}/check-ins").json()["items"][0]
    assert (row["value"], row["note"], row["confidence"]) == (60, "webinar week, recounted", None)
    assert _figure(anon.get(f"/key-results/{leads}").text, "current") == "315\u00a0leads"

    gone = anon.post(
        f"/key-results/{leads}/check-ins/{new['id']}/delete",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert gone.status_code == 303
    assert _api(client, leads)["current_value"] == 255
    assert "webinar week" not in anon.get(f"/key-results/{leads}").text
    again = anon.post(
        f"/key-results/{leads}/check-ins/{new['id']}/delete", data={"csrf_token": token}
    )
    assert again.status_code == 404


def test_a_refused_check_in_says_what_the_api_says_beside_the_field(
    client: TestClient, anon: TestClient
) -> None:
    ws = build(client)
    mapped, leads = ws.mapped_kr_ids[0], ws.kr_ids[0]
    token = sign_in(anon, _key(client, "editor"))
    cases = [
        (mapped, {"date": "2026-08-01", "value": "12"}, "value"),
        (leads, {"date": "2999-01-01", "value": "12"}, "date"),
        (leads, {"date": "1 Aug", "value": "12"}, "date"),
        (leads, {"date": "2026-08-01", "value": "12", "confidence": "11"}, "confidence"),
    ]
    for kr_id, form, field in cases:
        body: dict[str, object] = {"date": form["date"], "value": float(form["value"])}
        if "confidence" in form:
            body["confidence"] = int(form["confidence"])
        api = client.post(f"/api/v1/key-results/{kr_id}/check-ins", json=body)
        assert api.status_code == 422
        answer = api.json()
        message = answer["errors"][0]["msg"] if answer.get("errors") else answer["detail"]
        page = anon.post(f"/key-results/{kr_id}/check-ins", data={**form, "csrf_token": token})
        assert page.status_code == 422
        beside = re.search(
            rf'<p class="field-error" id="check-in-{field}-error">([^<]*)</p>', page.text
        )
        assert beside, (field, page.text[-800:])
        assert html.unescape(beside.group(1)) == message
        assert f'aria-describedby="check-in-{field}-error"' in page.text
        assert f'value="{html.escape(form["date"])}"' in page.text  # what was typed stays
    assert client.get(f"/api/v1/key-results/{mapped}/check-ins").json()["total"] == 0

    ci = client.get(f"/api/v1/key-results/{leads}/check-ins").json()["items"][0]
    edit = anon.post(
        f"/key-results/{leads}/check-ins/{ci['id']}",
        data={
            "date": "2999-01-01",
            "value": "1",
            "note": "",
            "confidence": "",
            "csrf_token": token,
        },
    )
    assert edit.status_code == 422
    assert f'id="edit-{ci["id"]}-date-error"' in edit.text
    assert "<details open>" in edit.text


def test_a_form_without_the_csrf_token_changes_nothing(
    client: TestClient, anon: TestClient
) -> None:
    ws = build(client, with_source=False)
    leads = ws.kr_ids[0]
    sign_in(anon, _key(client, "editor"))
    before = client.get(f"/api/v1/key-results/{leads}/check-ins").json()
    ci = before["items"][0]
    for path, form in (
        (f"/key-results/{leads}/check-ins", {"date": "2026-08-20", "value": "5"}),
        (f"/key-results/{leads}/check-ins/{ci['id']}", {"date": ci["date"], "value": "1"}),
        (f"/key-results/{leads}/check-ins/{ci['id']}/delete", {}),
    ):
        for token in (None, "forged"):
            data = form if token is None else {**form, "csrf_token": token}
            refused = anon.post(path, data=data)
            assert refused.status_code == 403, path
            assert "Nothing was changed" in refused.text
    assert client.get(f"/api/v1/key-results/{leads}/check-ins").json() == before


def test_unknown_ids_answer_a_404_page(client: TestClient, anon: TestClient) -> None:
    ws = build(client, with_source=False)
    token = sign_in(anon, _key(client, "editor"))
    for path in (
        "/key-results/999999",
        "/key-results/0",
        "/key-results/abc",
        "/key-results/99999999999",
    ):
        page = anon.get(path)
        assert page.status_code == 404, path
        assert "No such key result" in page.text
    form = {"date": "2026-08-01", "value": "1", "csrf_token": token}
    assert anon.post("/key-results/999999/check-ins", data=form).status_code == 404
    leads = ws.kr_ids[0]
    assert anon.post(f"/key-results/{leads}/check-ins/999999", data=form).status_code == 404
    assert anon.post("/key-results/999999/check-ins/1/delete", data=form).status_code == 404


def test_the_chart_adds_up_a_sum_and_plots_a_level_as_it_is() -> None:
    rows = [
        kr_chart.DayValue(date(2026, 7, 2), "", "value", 10, False),
        kr_chart.DayValue(date(2026, 7, 3), "a", "value", 5, False),
        kr_chart.DayValue(date(2026, 7, 3), "b", "value", 5, True),
    ]
    assert kr_chart.daily_line("sum", rows) == [
        (date(2026, 7, 2), 10, False),
        (date(2026, 7, 3), 20, True),
    ]
    assert kr_chart.daily_line("last", rows)[-1] == (date(2026, 7, 3), 10, True)
    ratio = [
        kr_chart.DayValue(date(2026, 7, 2), "", "numerator", 1, False),
        kr_chart.DayValue(date(2026, 7, 2), "", "denominator", 4, False),
        kr_chart.DayValue(date(2026, 7, 3), "", "numerator", 3, False),
        kr_chart.DayValue(date(2026, 7, 3), "", "denominator", 4, False),
    ]
    assert [v for _, v, _ in kr_chart.daily_line("ratio", ratio)] == [0.25, 0.5]
    chart = kr_chart.build(
        start=date(2026, 7, 1),
        end=date(2026, 9, 30),
        as_of=date(2026, 8, 15),
        line=kr_chart.daily_line("sum", rows),
        aggregation="sum",
        direction="increase",
        start_value=0,
        target_value=100,
        forecast_value=80,
        provisional_from=date(2026, 7, 3),
    )
    assert chart.pace
    assert chart.target
    assert chart.forecast
    assert chart.pace.x1 == chart.left
    assert chart.pace.x2 == chart.right
    assert chart.target.y1 == chart.top  # the target is the top of the scale here
    assert chart.forecast.x2 == chart.right
    assert chart.provisional_band is not None
    assert [t.label for t in chart.x_ticks] == ["Jul 1", "Aug 1", "Sep 1", "Sep 30"]
    assert chart.provisional_path
    assert chart.path


def test_provisional_days_are_marked_on_the_chart_and_in_the_points(
    client: TestClient, anon: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo connector settles in 2 days, like GA4: synced on 2026-08-16, its 14th and 15th
    may still be restated (tests/sync/test_provisional.py works the figures out)."""
    freeze_today(monkeypatch, date(2026, 8, 16))
    kr = make_kr()
    source = make_source(name="demo settling")
    make_mapping(kr, source, "sessions")
    sync_source(source)
    api = client.get(f"/api/v1/key-results/{kr}").json()["progress"]
    assert api["provisional_from"] == "2026-08-14"
    sign_in(anon, _key(client, "viewer"))
    page = anon.get(f"/key-results/{kr}").text
    assert "provisional since 2026-08-14" in page
    assert page.count('class="ch-point ch-point-provisional"') == 2 * 2  # wide and narrow
    assert 'class="ch-provisional-band"' in page
    assert "provisional: may still be restated" in page
    rows = re.findall(r'<tr class="(provisional)?">\s*<td data-label="Date">([^<]+)</td>', page)
    assert [(day, flag == "provisional") for flag, day in rows[:3]] == [
        ("2026-08-15", True),
        ("2026-08-14", True),
        ("2026-08-13", False),
    ]
