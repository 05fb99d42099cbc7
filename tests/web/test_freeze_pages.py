"""Closing and reopening a cycle and grading its key results in the browser (SPEC section 8).

The cycle is 2026-Q3, over by the time the tests run: the close reads it on 2026-09-30. One key
result, "40 press mentions", checked in by hand at 12 on 07-15 → 12 of 40, progress 0.3.
"""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from web.browser_session import sign_in

from factories import check_in, create, cycle, key_result, objective


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
    o = objective(client, c, title="Be known for craft", team="Brand")["id"]
    kr = key_result(client, o, title="40 press mentions", target_value=40)["id"]
    check_in(client, kr, "2026-07-15", 12)
    return {"cycle": c, "objective": o, "kr": kr}


def test_an_editor_closes_a_cycle_after_reading_what_freezing_means(
    anon: TestClient, client: TestClient, q3: dict[str, int]
) -> None:
    token = sign_in(anon, key_of(client, "editor"))
    cycles = anon.get("/cycles").text
    assert f'href="/cycles/{q3["cycle"]}/close"' in cycles
    assert "/reopen" not in cycles, "reopening is an admin's"
    confirm = anon.get(f"/cycles/{q3['cycle']}/close")
    assert confirm.status_code == 200
    assert "What freezing means" in confirm.text
    assert "2026-09-30, the cycle's last day" in confirm.text
    assert "whatever later syncs, backfills or check-ins bring" in confirm.text

    no_token = anon.post(f"/cycles/{q3['cycle']}/close", follow_redirects=False)
    assert no_token.status_code == 403
    assert client.get(f"/api/v1/cycles/{q3['cycle']}").json()["status"] == "open"

    closed = anon.post(
        f"/cycles/{q3['cycle']}/close", data={"csrf_token": token}, follow_redirects=False
    )
    assert closed.status_code == 303, closed.text[-500:]
    assert closed.headers["location"] == f"/cycles#cycle-{q3['cycle']}"
    read = client.get(f"/api/v1/cycles/{q3['cycle']}").json()
    assert read["status"] == "closed"
    day = read["closed_at"][:10]
    assert f"Closed on {day}, figures frozen" in anon.get("/cycles").text
    for page in (f"/?cycle_id={q3['cycle']}", f"/okrs?cycle_id={q3['cycle']}"):
        assert f"{day}</time>, figures frozen" in anon.get(page).text, page
    kr_page = anon.get(f"/key-results/{q3['kr']}").text
    assert f"{day}</time>, figures frozen" in kr_page
    assert 'id="check-in-frozen"' in kr_page
    assert "no longer changes the frozen figures" in kr_page

    again = anon.post(
        f"/cycles/{q3['cycle']}/close", data={"csrf_token": token}, follow_redirects=False
    )
    assert again.status_code == 409
    assert "already closed" in again.text

    # A check-in is still taken, and the frozen figure stays.
    checked = anon.post(
        f"/key-results/{q3['kr']}/check-ins",
        data={
            "csrf_token": token,
            "date": "2026-08-01",
            "value": "20",
            "note": "",
            "confidence": "",
        },
        follow_redirects=False,
    )
    assert checked.status_code == 303
    page = anon.get(f"/key-results/{q3['kr']}").text
    assert re.search(r'id="kr-current">12\b', page), "12 of 40 as frozen, not 32"
    assert page.count("after the close: not in the frozen figures") == 1, "the 08-01 point"


def test_only_an_admin_reopens_and_the_live_figures_come_back(
    anon: TestClient, client: TestClient, q3: dict[str, int]
) -> None:
    assert client.post(f"/api/v1/cycles/{q3['cycle']}/close").status_code == 200
    check_in(client, q3["kr"], "2026-08-01", 20)
    editor = sign_in(anon, key_of(client, "editor"))
    assert "/reopen" not in anon.get("/cycles").text
    refused = anon.post(
        f"/cycles/{q3['cycle']}/reopen", data={"csrf_token": editor}, follow_redirects=False
    )
    assert refused.status_code == 403
    anon.cookies.clear()

    admin = sign_in(anon, key_of(client, "admin"))
    assert f'action="/cycles/{q3["cycle"]}/reopen"' in anon.get("/cycles").text
    reopened = anon.post(
        f"/cycles/{q3['cycle']}/reopen", data={"csrf_token": admin}, follow_redirects=False
    )
    assert reopened.status_code == 303
    assert client.get(f"/api/v1/cycles/{q3['cycle']}").json()["status"] == "open"
    page = anon.get(f"/key-results/{q3['kr']}").text
    assert "figures frozen" not in page
    assert re.search(r'id="kr-current">32\b', page), "12 + 20: live again"
    twice = anon.post(
        f"/cycles/{q3['cycle']}/reopen", data={"csrf_token": admin}, follow_redirects=False
    )
    assert twice.status_code == 409
    assert "nothing to reopen" in twice.text


def test_a_viewer_sees_no_close_control_and_is_refused(
    anon: TestClient, client: TestClient, q3: dict[str, int]
) -> None:
    token = sign_in(anon, key_of(client, "viewer"))
    assert "/close" not in anon.get("/cycles").text
    assert anon.get(f"/cycles/{q3['cycle']}/close").status_code == 403
    refused = anon.post(
        f"/cycles/{q3['cycle']}/close", data={"csrf_token": token}, follow_redirects=False
    )
    assert refused.status_code == 403
    assert client.get(f"/api/v1/cycles/{q3['cycle']}").json()["status"] == "open"
    client.post(f"/api/v1/cycles/{q3['cycle']}/close")
    page = anon.get(f"/key-results/{q3['kr']}").text
    assert "figures frozen" in page
    assert 'action="/key-results/' not in page, "no write control for a viewer"
    assert (
        anon.post(
            f"/key-results/{q3['kr']}/final-score",
            data={"csrf_token": token, "final_score": "0.5"},
            follow_redirects=False,
        ).status_code
        == 403
    )


def test_an_editor_grades_a_closed_key_result(
    anon: TestClient, client: TestClient, q3: dict[str, int]
) -> None:
    token = sign_in(anon, key_of(client, "editor"))
    url = f"/key-results/{q3['kr']}/final-score"
    assert 'action="' + url not in anon.get(f"/key-results/{q3['kr']}").text
    early = anon.post(url, data={"csrf_token": token, "final_score": "0.5"})
    assert early.status_code == 409
    assert "once the cycle is closed" in html.unescape(early.text)
    client.post(f"/api/v1/cycles/{q3['cycle']}/close")
    page = anon.get(f"/key-results/{q3['kr']}").text
    assert 'action="' + url in page
    assert "Not graded yet." in page

    for bad, words in (("1.5", "less than or equal to 1"), ("high", "valid number")):
        refused = anon.post(
            url, data={"csrf_token": token, "final_score": bad, "final_score_note": "keep me"}
        )
        assert refused.status_code == 422, bad
        assert words in beside(refused.text, "final-score", "final_score")
        assert "keep me" in refused.text, "the form comes back with what was typed"
    graded = anon.post(
        url,
        data={"csrf_token": token, "final_score": "0.5", "final_score_note": "Two big features"},
        follow_redirects=False,
    )
    assert graded.status_code == 303
    read = client.get(f"/api/v1/key-results/{q3['kr']}").json()
    assert (read["final_score"], read["final_score_note"], read["progress"]["score"]) == (
        0.5,
        "Two big features",
        0.3,
    )
    page = anon.get(f"/key-results/{q3['kr']}").text
    assert 'id="kr-final-score">0.5<' in page
    assert "Two big features" in page
    dashboard = anon.get(f"/?cycle_id={q3['cycle']}").text
    assert re.search(r"<dt>Final score</dt><dd[^>]*>0\.5</dd>", dashboard)
    assert re.search(r"<dt>Score</dt><dd>0\.3</dd>", dashboard)
