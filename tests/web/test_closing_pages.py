"""Closing a cycle in the browser (SPEC section 8): the retrospective page, the quality findings
beside each objective on the dashboard, and the "Download review" links."""

from __future__ import annotations

import html
import io
import re

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from web.browser_session import sign_in

from factories import create, cycle, key_result, objective


def key_of(client: TestClient, role: str) -> str:
    key: str = create(client, "api-keys", name=f"{role} person", role=role)["key"]
    return key


def beside(page: str, prefix: str, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="{prefix}-{field}-error">([^<]*)</p>', page)
    assert found, f"no message beside {prefix}-{field}:\n{page[-1500:]}"
    return html.unescape(found.group(1))


@pytest.fixture
def q3(client: TestClient) -> dict[str, int]:
    c = cycle(client)["id"]
    company = objective(client, c, title="Grow the audience", level="company", owner="ana")["id"]
    kr = key_result(client, company, title="Launch the new website", owner="ana")["id"]
    team = objective(client, c, title="Be known for craft", team="Brand", owner="bo")["id"]
    return {"cycle": c, "company": company, "kr": kr, "team": team}


def _entries(client: TestClient, cycle_id: int) -> list[dict[str, object]]:
    items: list[dict[str, object]] = client.get(f"/api/v1/cycles/{cycle_id}/retrospective").json()[
        "items"
    ]
    return items


def test_an_editor_adds_corrects_and_deletes_entries(
    anon: TestClient, client: TestClient, q3: dict[str, int]
) -> None:
    token = sign_in(anon, key_of(client, "editor"))
    url = f"/cycles/{q3['cycle']}/retrospective"
    page = anon.get(url)
    assert page.status_code == 200
    assert "Add an entry" in page.text
    added = anon.post(
        url,
        data={
            "csrf_token": token,
            "format": "4l",
            "category": "learned",
            "text": "Press takes a quarter",
            "objective_id": str(q3["team"]),
        },
        follow_redirects=False,
    )
    assert added.status_code == 303, added.text[-500:]
    [entry] = _entries(client, q3["cycle"])
    assert added.headers["location"] == f"{url}#entry-{entry['id']}"
    assert (entry["category"], entry["objective_id"], entry["author"]) == (
        "learned",
        q3["team"],
        "key:editor person",
    )
    page = anon.get(url).text
    assert "Press takes a quarter" in page
    assert 'id="category-learned"' in page
    assert "Be known for craft" in page

    fixed = anon.post(
        f"{url}/{entry['id']}",
        data={
            "csrf_token": token,
            "format": "4l",
            "category": "lacked",
            "text": "A data person",
            "objective_id": "",
        },
        follow_redirects=False,
    )
    assert fixed.status_code == 303
    [entry] = _entries(client, q3["cycle"])
    assert (entry["category"], entry["text"], entry["objective_id"]) == (
        "lacked",
        "A data person",
        None,
    )
    gone = anon.post(
        f"{url}/{entry['id']}/delete", data={"csrf_token": token}, follow_redirects=False
    )
    assert gone.status_code == 303
    assert _entries(client, q3["cycle"]) == []
    again = anon.post(f"{url}/{entry['id']}/delete", data={"csrf_token": token})
    assert again.status_code == 404


def test_a_refusal_is_shown_beside_its_field_in_the_apis_words(
    anon: TestClient, client: TestClient, q3: dict[str, int]
) -> None:
    token = sign_in(anon, key_of(client, "editor"))
    url = f"/cycles/{q3['cycle']}/retrospective"
    body = {"format": "start_stop_continue", "category": "liked", "text": "Demos"}
    page = anon.post(url, data={"csrf_token": token, **body, "objective_id": ""})
    assert page.status_code == 422
    api = client.post(f"/api/v1/cycles/{q3['cycle']}/retrospective", json=body).json()
    assert beside(page.text, "entry", "category") == api["detail"]
    assert "Demos" in page.text  # the person's words are kept
    empty = anon.post(
        url,
        data={
            "csrf_token": token,
            "format": "4l",
            "category": "liked",
            "text": "  ",
            "objective_id": "",
        },
    )
    assert empty.status_code == 422
    assert beside(empty.text, "entry", "text")
    other = objective(
        client, cycle(client, name="2026-Q4", start_date="2026-10-01", end_date="2026-12-31")["id"]
    )["id"]
    foreign = anon.post(
        url,
        data={
            "csrf_token": token,
            "format": "4l",
            "category": "liked",
            "text": "x",
            "objective_id": str(other),
        },
    )
    assert foreign.status_code == 422
    assert "belongs to another cycle" in beside(foreign.text, "entry", "objective_id")
    entry = client.post(
        f"/api/v1/cycles/{q3['cycle']}/retrospective",
        json={"format": "4l", "category": "liked", "text": "ok"},
    ).json()
    misfit = anon.post(
        f"{url}/{entry['id']}",
        data={
            "csrf_token": token,
            "format": "start_stop_continue",
            "category": "liked",
            "text": "ok",
            "objective_id": "",
        },
    )
    assert misfit.status_code == 422
    assert "not part of" in beside(misfit.text, f"edit-{entry['id']}", "category")
    assert [e["category"] for e in _entries(client, q3["cycle"])] == ["liked"]


def test_without_the_csrf_token_or_as_a_viewer_nothing_is_written(
    anon: TestClient, client: TestClient, q3: dict[str, int]
) -> None:
    url = f"/cycles/{q3['cycle']}/retrospective"
    body = {"format": "4l", "category": "liked", "text": "x", "objective_id": ""}
    sign_in(anon, key_of(client, "editor"))
    assert anon.post(url, data=body).status_code == 403
    anon.cookies.clear()
    token = sign_in(anon, key_of(client, "viewer"))
    refused = anon.post(url, data={"csrf_token": token, **body})
    assert refused.status_code == 403
    assert "needs the editor role" in refused.text
    assert _entries(client, q3["cycle"]) == []
    client.post(
        f"/api/v1/cycles/{q3['cycle']}/retrospective",
        json={"format": "4l", "category": "liked", "text": "Stand-ups"},
    )
    page = anon.get(url).text
    assert "Stand-ups" in page
    assert "<form" not in page.split("</header>", 1)[1]  # no write control for a viewer
    assert "Add an entry" not in page


def test_the_dashboard_shows_findings_beside_each_objective_and_the_downloads(
    anon: TestClient, client: TestClient, q3: dict[str, int]
) -> None:
    sign_in(anon, key_of(client, "viewer"))
    page = anon.get(f"/?cycle_id={q3['cycle']}&as_of=2026-07-05").text
    company = page.split(f'id="objective-{q3["company"]}"', 1)[1].split("</article>", 1)[0]
    assert html.unescape(
        "'Launch the new website' names an activity: what outcome shows it worked?"
    ) in html.unescape(company)
    team = page.split(f'id="objective-{q3["team"]}"', 1)[1].split("</article>", 1)[0]
    assert 'data-rule="no_key_results"' in team
    assert 'data-rule="not_aligned"' in team
    for fmt in ("xlsx", "csv", "md", "json"):
        assert f"/api/v1/cycles/{q3['cycle']}/review?format={fmt}" in page
    assert f'href="/cycles/{q3["cycle"]}/retrospective"' in page
    # After the cycle the review holds the findings; the dashboard shows the figures.
    late = anon.get(f"/?cycle_id={q3['cycle']}&as_of=2026-10-05").text
    assert 'class="findings"' not in late
    # The browser's session downloads the review as the API gives it.
    xlsx = anon.get(f"/api/v1/cycles/{q3['cycle']}/review?format=xlsx")
    assert xlsx.status_code == 200
    assert load_workbook(io.BytesIO(xlsx.content)).sheetnames == ["Summary", "Brand", "No team"]


def test_the_cycles_page_links_each_cycle_to_its_retrospective_and_review(
    anon: TestClient, client: TestClient, q3: dict[str, int]
) -> None:
    sign_in(anon, key_of(client, "viewer"))
    page = anon.get("/cycles").text
    assert f'href="/cycles/{q3["cycle"]}/retrospective"' in page
    assert f"/api/v1/cycles/{q3['cycle']}/review?format=md" in page
    assert anon.get("/cycles/999999/retrospective").status_code == 404


def test_findings_keep_the_dashboard_page_at_a_fixed_statement_count(
    anon: TestClient, client: TestClient
) -> None:
    from okr.test_statement_count import _seed, count_statements

    from app.okr import cache

    small, large = _seed(client, 5, "small"), _seed(client, 50, "large")
    sign_in(anon, key_of(client, "viewer"))

    def statements(cycle_id: int) -> int:
        anon.get(f"/?cycle_id={cycle_id}&as_of=2026-08-15")
        cache.clear()
        with count_statements() as seen:
            page = anon.get(f"/?cycle_id={cycle_id}&as_of=2026-08-15")
        assert page.status_code == 200
        assert 'class="findings"' in page.text  # "objective 0" has no owner, and more
        return len(seen)

    assert statements(small) == statements(large)
