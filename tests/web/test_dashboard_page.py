"""The dashboard page at `/`: the key form, the cookie, figures equal to the API's, escaping."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from web.browser_session import csrf_token
from web.workspace import AS_OF, INJECTION, api_dashboard, api_progress, build

from app.core.db import get_engine
from app.web.router import COOKIE, LOGIN_REFUSED
from factories import check_in, create, cycle, key_result, objective

CSV_HEADER = "date,group,role,value,mapping_id,sync_run_id,provisional"


class _Bars(HTMLParser):
    """The progress bars' fills, by key-result id and by objective id."""

    def __init__(self) -> None:
        super().__init__()
        self.krs: dict[int, dict[str, str]] = {}
        self.objectives: dict[int, dict[str, str]] = {}
        self.csv_links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "bar-fill" in a.get("class", "").split():
            if "data-kr-id" in a:
                self.krs[int(a["data-kr-id"])] = a
            elif "data-objective-id" in a:
                self.objectives[int(a["data-objective-id"])] = a
        if tag == "a" and "csv" in a.get("class", "").split():
            self.csv_links.append(a["href"])


def _bars(html: str) -> _Bars:
    parser = _Bars()
    parser.feed(html)
    return parser


def _as_float(text: str) -> float | None:
    return None if text == "" else float(text)


def _new_key(client: TestClient, role: str) -> tuple[int, str]:
    created = create(client, "api-keys", name=f"page-{role}", role=role)
    return created["id"], created["key"]


def _login(anon: TestClient, key: str) -> Any:
    return anon.post("/login", data={"key": key}, follow_redirects=False)


@contextmanager
def _count_statements() -> Iterator[list[str]]:
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


# --- the key form ----------------------------------------------------------------------------


def test_without_a_key_the_page_is_the_key_form(client: TestClient, anon: TestClient) -> None:
    build(client, with_source=False)
    response = anon.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<form method="post" action="/login"' in html
    assert 'type="password"' in html
    assert 'name="key"' in html
    assert "API key" in html
    assert "Grow qualified pipeline" not in html  # nothing of the workspace before a key
    assert "script-src" not in response.headers["content-security-policy"]  # no script at all
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_every_refusal_reads_the_same(client: TestClient, anon: TestClient) -> None:
    revoked_id, revoked = _new_key(client, "viewer")
    assert client.delete(f"/api/v1/api-keys/{revoked_id}").status_code == 204
    candidates = {
        "unknown": "krs_" + "A" * 43,
        "revoked": revoked,
        "empty": "",
        "blank": "   ",
        "malformed": "not a key \u00e9\u00e8",
        "too long": "k" * 5000,
    }
    bodies = {}
    for label, key in candidates.items():
        response = _login(anon, key)
        assert response.status_code == 401, label
        assert LOGIN_REFUSED in response.text, label
        assert "set-cookie" not in response.headers, label
        bodies[label] = response.text
    assert len(set(bodies.values())) == 1  # nothing tells one refusal from another
    for word in ("revoked", "unknown", "malformed", "expired", "invalid"):
        assert word not in bodies["revoked"].lower()


def test_a_form_posted_from_another_site_is_refused(client: TestClient, anon: TestClient) -> None:
    _, key = _new_key(client, "viewer")
    response = anon.post(
        "/login",
        data={"key": key},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


def test_the_right_key_sets_an_httponly_cookie_and_shows_every_objective(
    client: TestClient, anon: TestClient
) -> None:
    ws = build(client)
    _, key = _new_key(client, "editor")
    response = _login(anon, f"  {key}\n")  # pasted with stray whitespace
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert key not in cookie  # a session token, never the key itself
    lowered = cookie.lower()
    assert "httponly" in lowered
    assert "samesite=lax" in lowered
    assert "path=/" in lowered
    assert "max-age=2592000" in lowered
    assert "secure" not in lowered  # plain http in tests; https requests get Secure

    page = anon.get("/", params={"cycle_id": ws.cycle_id, "as_of": AS_OF})
    assert page.status_code == 200
    assert "Grow qualified pipeline" in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in page.text
    assert len(_bars(page.text).objectives) == 2
    assert page.headers["cache-control"] == "no-store"


def test_sign_out_forgets_the_key(client: TestClient, anon: TestClient) -> None:
    _, key = _new_key(client, "viewer")
    _login(anon, key)
    token = csrf_token(anon.get("/").text)
    response = anon.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert f'{COOKIE}=""' in response.headers["set-cookie"]
    assert 'action="/login"' in anon.get("/").text


def test_a_key_revoked_after_sign_in_no_longer_opens_the_page(
    client: TestClient, anon: TestClient
) -> None:
    key_id, key = _new_key(client, "viewer")
    _login(anon, key)
    assert 'action="/logout"' in anon.get("/").text
    client.delete(f"/api/v1/api-keys/{key_id}")
    page = anon.get("/")
    assert 'action="/login"' in page.text
    assert COOKIE in page.headers.get("set-cookie", "")  # the dead cookie is cleared


def test_a_viewer_key_opens_the_page(client: TestClient, anon: TestClient) -> None:
    ws = build(client, with_source=False)
    _, key = _new_key(client, "viewer")
    assert _login(anon, key).status_code == 303
    page = anon.get("/", params={"cycle_id": ws.cycle_id, "as_of": AS_OF})
    assert page.status_code == 200
    assert "Grow qualified pipeline" in page.text
    assert "page-viewer" in page.text


# --- the figures -----------------------------------------------------------------------------


@pytest.mark.parametrize("as_of", ["2026-06-20", "2026-07-01", AS_OF, "2026-09-30", "2026-11-02"])
def test_every_bar_is_the_apis_progress(client: TestClient, as_of: str) -> None:
    ws = build(client)
    api = api_dashboard(client, ws.cycle_id, as_of)
    expected = api_progress(api)
    page = client.get("/", params={"cycle_id": ws.cycle_id, "as_of": as_of})  # Bearer works too
    assert page.status_code == 200
    bars = _bars(page.text)
    assert set(bars.krs) == set(expected) == set(ws.kr_ids)
    for kr_id, progress in expected.items():
        fill = bars.krs[kr_id]
        assert _as_float(fill["data-progress"]) == progress, kr_id
        # The CSP allows no inline style: the width is a class per whole percent.
        assert f"w-{round(min(max(progress or 0.0, 0.0), 1.0) * 100)}" in fill["class"].split()
        assert "style" not in fill
    for obj in api["objectives"]:
        shown = _as_float(bars.objectives[obj["id"]]["data-progress"])
        assert shown == (obj["progress"] or {}).get("progress")
    assert f"at-{round(api['expected_progress'] * 100)}" in page.text


def test_the_page_shows_status_score_forecast_groups_and_sparklines(client: TestClient) -> None:
    ws = build(client)
    api = api_dashboard(client, ws.cycle_id, AS_OF)
    page = client.get("/", params={"cycle_id": ws.cycle_id, "as_of": AS_OF}).text
    krs = {kr["id"]: kr for obj in api["objectives"] for kr in obj["key_results"]}
    for kr_id, kr in krs.items():
        block = page.split(f'id="kr-{kr_id}"', 1)[1].split("</li>\n", 1)[0]
        assert f'data-status="{kr["progress"]["status"]}"' in page.split(f'id="kr-{kr_id}"')[1][:80]
        assert f"/api/v1/key-results/{kr_id}/series?format=csv" in block
        score = kr["progress"]["score"]
        if score is not None:
            assert f"<dd>{score:.1f}</dd>" in block
        if kr_id != ws.kr_ids[2]:  # every KR but the milestone (no check-in) has a series
            assert '<svg class="spark' in block, kr["title"]
    followers = ws.mapped_kr_ids[0]
    block = page.split(f'id="kr-{followers}"', 1)[1].split("</li>\n", 1)[0]
    assert '<table class="groups">' in block
    assert "linkedin" in block
    assert "instagram" in block
    assert "Each group is scored" in block
    leads = krs[ws.kr_ids[0]]["progress"]
    assert leads["forecast_value"] is not None
    assert "On track" in page or "At risk" in page or "Off track" in page


def test_data_sources_show_freshness_and_last_runs(client: TestClient) -> None:
    ws = build(client)
    runs = client.get("/api/v1/sync-runs", params={"data_source_id": ws.source_id}).json()
    assert runs["total"] >= 1
    page = client.get("/", params={"cycle_id": ws.cycle_id, "as_of": AS_OF}).text
    section = page.split('id="sources-title"', 1)[1]
    assert "Demo social &amp; web" in section
    assert "demo ·" in section
    assert section.count('class="run"') == min(runs["total"], 3)
    latest = runs["items"][0]
    assert f"chip run-{latest['status']}" in section
    assert f"{latest['window_from']} → {latest['window_to']}" in section
    assert "Last success:" in section


def test_the_page_costs_the_same_statements_for_few_and_many_key_results(
    client: TestClient,
) -> None:
    def seed(n: int, name: str) -> int:
        c = cycle(client, name=name)["id"]
        o = 0
        for i in range(n):
            if i % 3 == 0:
                o = objective(client, c, title=f"objective {i}")["id"]
            kr = key_result(client, o, title=f"kr {i}")["id"]
            check_in(client, kr, "2026-07-03", 50 + i)
            check_in(client, kr, "2026-08-01", 55 + i)
        return c

    small, large = seed(4, "small"), seed(30, "large")
    counts = []
    for cid in (small, large):
        client.get("/", params={"cycle_id": cid, "as_of": AS_OF})
        with _count_statements() as statements:
            assert client.get("/", params={"cycle_id": cid, "as_of": AS_OF}).status_code == 200
        counts.append(len(statements))
    assert counts[0] == counts[1]


# --- escaping ----------------------------------------------------------------------------------


def test_an_injected_title_is_shown_escaped(client: TestClient) -> None:
    ws = build(client)
    page = client.get("/", params={"cycle_id": ws.cycle_id, "as_of": AS_OF}).text
    assert "<script>alert" not in page
    assert "<b>x</b>" not in page
    assert "<i>posts</i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in page
    assert "&lt;i&gt;posts&lt;/i&gt;" in page
    # the cycle picker and the source list escape too
    client.patch(f"/api/v1/cycles/{ws.cycle_id}", json={"name": INJECTION})
    client.patch(f"/api/v1/data-sources/{ws.source_id}", json={"name": INJECTION})
    page = client.get("/", params={"as_of": AS_OF}).text
    assert "<script>alert" not in page
    assert page.count("&lt;script&gt;alert(1)") >= 4


# --- the CSV link ------------------------------------------------------------------------------


def test_the_csv_link_works_with_the_cookie_alone(client: TestClient, anon: TestClient) -> None:
    ws = build(client, with_source=False)
    _, key = _new_key(client, "viewer")
    _login(anon, key)
    page = anon.get("/", params={"cycle_id": ws.cycle_id, "as_of": AS_OF})
    links = _bars(page.text).csv_links
    assert len(links) == len(ws.kr_ids)
    assert "authorization" not in {k.lower() for k in anon.headers}
    response = anon.get(links[0])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == CSV_HEADER
    assert lines[1].startswith("2026-07-02,,value,40.0,")


# --- empty and odd states --------------------------------------------------------------------


def test_no_cycles_is_a_friendly_empty_page(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "No cycles yet" in page.text
    assert "POST /api/v1/cycles" in page.text


def test_a_cycle_without_objectives_and_no_sources(client: TestClient) -> None:
    c = cycle(client, name="2026-Q4", start_date="2026-10-01", end_date="2026-12-31")["id"]
    page = client.get("/", params={"cycle_id": c})
    assert page.status_code == 200
    assert "No objectives in 2026-Q4 yet" in page.text
    assert "No data sources yet" in page.text


def test_bad_query_values_get_a_page_not_an_error(client: TestClient) -> None:
    ws = build(client, with_source=False)
    for params, status in [
        ({"cycle_id": "abc"}, 422),
        ({"cycle_id": "\u00b2"}, 422),
        ({"as_of": "\u0662026-08-15"}, 422),
        ({"cycle_id": ws.cycle_id, "as_of": "15/08/2026"}, 422),
        ({"cycle_id": "999999"}, 404),
    ]:
        page = client.get("/", params=params)
        assert page.status_code == status, params
        assert page.headers["content-type"].startswith("text/html")
        assert 'class="alert"' in page.text


def test_an_unknown_cycle_says_so_and_still_lists_the_sources(client: TestClient) -> None:
    ws = build(client)
    page = client.get("/", params={"cycle_id": "999", "as_of": AS_OF})
    assert page.status_code == 404
    alert = page.text.split('class="alert"', 1)[1].split("</p>", 1)[0]
    assert "There is no cycle 999" in alert
    assert "No data sources yet" not in page.text
    assert f'id="source-{ws.source_id}"' in page.text.split('id="sources-title"', 1)[1]


def _kr_block(page: str, kr_id: int) -> str:
    return page.split(f'id="kr-{kr_id}"', 1)[1].split("</li>\n", 1)[0]


def test_figures_carry_their_unit_on_both_sides(client: TestClient) -> None:
    """ "0.215 / 0.24 %" read as 21.5 % of a 0.24 % target; each figure now says its unit."""
    c = cycle(client)["id"]
    o = objective(client, c, title="Convert more of the traffic we already have")["id"]
    conversion = key_result(
        client,
        o,
        title="Website conversion rate from 0.20 % to 0.24 %",
        unit="%",
        start_value=0.2,
        target_value=0.24,
        aggregation="last",
    )["id"]
    bounce = key_result(
        client,
        o,
        title="Bounce rate of paid traffic down from 52 % to 45 %",
        unit="%",
        direction="decrease",
        start_value=52,
        target_value=45,
        aggregation="last",
    )["id"]
    leads = key_result(client, o, title="600 leads", unit="leads", target_value=600)["id"]
    check_in(client, conversion, "2026-08-01", 0.215)
    check_in(client, bounce, "2026-08-01", 48.3)
    check_in(client, leads, "2026-08-01", 430)

    page = client.get("/", params={"cycle_id": c, "as_of": "2026-08-15"}).text

    nbsp = "\u00a0"
    block = _kr_block(page, conversion)
    assert f"<strong>0.215{nbsp}%</strong>" in block
    assert f"<span>of 0.24{nbsp}%</span>" in block
    assert f"from 0.2{nbsp}%" in block
    block = _kr_block(page, bounce)
    assert f"<strong>48.3{nbsp}%</strong>" in block
    assert f"<span>target 45{nbsp}%</span>" in block  # "48.3 % of 45 %" would read wrong
    assert f"from 52{nbsp}%" in block
    block = _kr_block(page, leads)
    assert f"<strong>430{nbsp}leads</strong>" in block
    assert f"<span>of 600{nbsp}leads</span>" in block
    assert "/ " not in page.split('class="kr-figures"', 1)[1].split("</p>", 1)[0]


def test_the_day_is_typed_as_iso_not_in_the_browsers_locale(client: TestClient) -> None:
    """A date picker shows 08/15/2026 or 15.08.2026 as the browser's locale has it, while every
    other date on the page and in the API reads 2026-08-15."""
    ws = build(client)
    page = client.get("/", params={"cycle_id": ws.cycle_id, "as_of": AS_OF}).text
    [field] = re.findall(r'<input[^>]*name="as_of"[^>]*>', page)
    assert 'type="text"' in field
    assert f'value="{AS_OF}"' in field
    assert 'pattern="[0-9]{4}-[0-9]{2}-[0-9]{2}"' in field
    assert 'placeholder="YYYY-MM-DD"' in field
    assert 'type="date"' not in page


def test_the_stylesheet_is_served(anon: TestClient) -> None:
    response = anon.get("/static/krsync.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert ".bar-fill" in response.text


def test_the_view_asked_for_survives_the_sign_in_and_nothing_else_does(
    client: TestClient, anon: TestClient
) -> None:
    _, key = _new_key(client, "viewer")
    form = anon.get("/", params={"cycle_id": 7, "as_of": AS_OF, "next": "https://evil.example"})
    assert 'name="view" value="cycle_id=7&amp;as_of=2026-08-15"' in form.text
    response = anon.post(
        "/login",
        data={"key": key, "view": "cycle_id=7&as_of=2026-08-15&next=//evil.example"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/?cycle_id=7&as_of=2026-08-15"
    anon.cookies.clear()
    for view in ("//evil.example", "https://evil.example/", "/\\evil.example"):
        response = anon.post("/login", data={"key": key, "view": view}, follow_redirects=False)
        assert response.headers["location"] == "/", view
