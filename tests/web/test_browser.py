"""The real pages in headless Chromium: sign in, read every objective, bars equal to the API,
and each page a person reads, at desktop and phone width (the shared set-up is `web.live`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from web.live import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    at_phone_width,
    no_sideways_scroll,
    sign_in_page,
    signed_in_page,
    unexpected,
    wait_for_backfills,
    watched_page,
)
from web.workspace import AS_OF, INJECTION, api_dashboard, api_progress, build, seed_tree

from app.web.router import LOGIN_REFUSED
from app.web.session import COOKIE
from conftest import ADMIN_KEY
from factories import create

# What the browser shows is the same pages the HTTP tests read on both databases.
pytestmark = pytest.mark.one_database

CSV_HEADER = "date,group,role,value,mapping_id,sync_run_id,provisional"
BAR_TOLERANCE = 0.015


def _bar_ratios(page: Any) -> dict[int, float]:
    """Rendered fill width over track width, per key result, as the browser laid them out."""
    ratios: dict[int, float] = {}
    fills = page.locator(".bar-fill[data-kr-id]")
    for i in range(fills.count()):
        fill = fills.nth(i)
        fill_box = fill.bounding_box()
        track_box = fill.locator("xpath=..").bounding_box()
        assert fill_box is not None
        assert track_box is not None
        ratios[int(fill.get_attribute("data-kr-id"))] = fill_box["width"] / track_box["width"]
    return ratios


def test_the_dashboard_in_a_real_browser(
    chromium_path: str, client: TestClient, live_server: str
) -> None:
    from playwright.sync_api import sync_playwright

    # Seeded in-process on the server's database: a TestClient returns only once the request's
    # transaction has committed and the mappings' backfills have run.
    ws = build(client)
    key = create(client, "api-keys", name="browser", role="viewer")["key"]
    with httpx.Client(base_url=live_server, timeout=30) as api:
        auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
        wait_for_backfills(api, auth)
        expected = api_progress(api_dashboard(api, ws.cycle_id, AS_OF, headers=auth))

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            page = context.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            # Mid-cycle, where the pace marks sit inside the bars; the view survives the sign-in.
            page.goto(f"{live_server}/?cycle_id={ws.cycle_id}&as_of={AS_OF}")

            # A wrong key: refused, with the one generic message, and nothing of the workspace.
            page.fill("#key", "krs_not-a-real-key")
            with page.expect_response(lambda r: r.url.endswith("/login")) as refused:
                page.click("button[type=submit]")
            assert refused.value.status == 401
            assert page.locator(".alert").inner_text().strip() == LOGIN_REFUSED
            assert page.get_by_text("Grow qualified pipeline").count() == 0
            page.screenshot(path=str(ARTIFACTS / "login-refused-1440.png"))

            # The right key: the dashboard, every objective, the injection shown as text.
            page.fill("#key", key)
            page.click("button[type=submit]")
            page.wait_for_selector(".objective")
            assert page.url.endswith(f"/?cycle_id={ws.cycle_id}&as_of={AS_OF}")
            cookies = {c["name"]: c for c in context.cookies()}
            assert cookies[COOKIE]["httpOnly"] is True
            assert cookies[COOKIE]["sameSite"] == "Lax"
            assert key not in cookies[COOKIE]["value"]  # the session's token, not the key
            titles = page.locator("h2.objective-title")
            assert titles.all_inner_texts() == ws.objective_titles  # the injection, as text
            for i in range(titles.count()):
                assert titles.nth(i).is_visible()
            assert page.get_by_role("heading", name=INJECTION, exact=True).count() == 2  # + a KR
            assert page.locator("b", has_text="x").count() == 0  # the <b> was not parsed as HTML
            assert page.locator("script").count() == 0
            assert dialogs == []

            # Every bar as wide as the API's progress says.
            ratios = _bar_ratios(page)
            assert set(ratios) == set(expected)
            for kr_id, progress in expected.items():
                assert ratios[kr_id] == pytest.approx(progress or 0.0, abs=BAR_TOLERANCE), kr_id
            assert any(0.05 < (p or 0) < 0.95 for p in expected.values())  # a bar worth measuring

            # A key result's CSV, with nothing but the cookie.
            with page.expect_download() as download_info:
                page.locator(f"#kr-{ws.kr_ids[0]} a.csv").click()
            csv_path = download_info.value.path()
            lines = Path(csv_path).read_text().splitlines()
            assert lines[0] == CSV_HEADER
            assert len(lines) > 1
            grouped = page.request.get(
                f"{live_server}/api/v1/key-results/{ws.mapped_kr_ids[0]}/series?format=csv"
            )
            assert grouped.status == 200
            assert grouped.text().splitlines()[0] == CSV_HEADER

            page.screenshot(path=str(ARTIFACTS / "dashboard-1440.png"), full_page=True)

            # Phone width: one column, no sideways scrolling, bars still right.
            page.set_viewport_size({"width": 375, "height": 800})
            page.wait_for_timeout(100)
            scroll_width = page.evaluate("document.scrollingElement.scrollWidth")
            assert scroll_width <= 375 + 1
            columns = page.evaluate(
                "getComputedStyle(document.querySelector('.objectives'))"
                ".gridTemplateColumns.split(' ').length"
            )
            assert columns == 1
            for kr_id, ratio in _bar_ratios(page).items():
                assert ratio == pytest.approx(expected[kr_id] or 0.0, abs=BAR_TOLERANCE), kr_id
            page.screenshot(path=str(ARTIFACTS / "dashboard-375.png"), full_page=True)

            # Signing out forgets the key.
            page.click(".signout button")
            page.wait_for_selector("#key")
            assert COOKIE not in {c["name"] for c in context.cookies()}
            page.screenshot(path=str(ARTIFACTS / "login-375.png"))
        finally:
            browser.close()


def test_the_api_docs_render_with_no_network(chromium_path: str, live_server: str) -> None:
    """`/docs` renders the operations with every host but krsync's blocked.

    FastAPI's own page loaded Swagger UI from cdn.jsdelivr.net: offline, `/docs` stayed blank.
    The page's CSP allows no inline script, so a refused script would show up as well.
    """
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []
    problems: list[str] = []

    def only_krsync(route: Any) -> None:
        if route.request.url.startswith(live_server):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.route("**/*", only_krsync)
            page = context.new_page()
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on(
                "console",
                lambda msg: problems.append(msg.text) if msg.type == "error" else None,
            )

            page.goto(f"{live_server}/docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            assert page.locator(".opblock").count() >= 30
            assert page.locator(".info .title").inner_text().startswith("krsync")
            cycles = page.locator(".opblock-summary-path", has_text="/api/v1/cycles").first
            assert cycles.is_visible()
            cycles.click()  # the operation opens: Swagger UI runs, not just its markup
            page.wait_for_selector(".opblock.is-open .opblock-body")
            page.screenshot(path=str(ARTIFACTS / "docs-1280.png"))
        finally:
            browser.close()
    assert blocked == []
    assert problems == []


def test_the_day_reads_and_is_typed_as_iso_in_an_american_browser(
    chromium_path: str, client: TestClient, live_server: str
) -> None:
    """A date picker shows 08/15/2026 in an en-US browser; the field shows and takes 2026-08-15."""
    from playwright.sync_api import sync_playwright

    ws = build(client)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
            page = context.new_page()
            sign_in_page(page, f"{live_server}/?cycle_id={ws.cycle_id}&as_of={AS_OF}", ADMIN_KEY)
            page.wait_for_selector(".objective")
            day = page.locator("input[name=as_of]")
            assert day.get_attribute("type") == "text"
            assert day.input_value() == AS_OF
            page.locator(".picker").screenshot(path=str(ARTIFACTS / "picker-en-US.png"))

            # A day in the locale's order is refused by the field itself, before any request.
            day.fill("08/01/2026")
            page.click(".picker button[type=submit]")
            assert day.evaluate("el => el.validity.patternMismatch") is True
            assert page.url.endswith(f"as_of={AS_OF}")

            day.fill("2026-08-01")
            with page.expect_navigation():
                page.click(".picker button[type=submit]")
            assert page.url.endswith("as_of=2026-08-01")
            assert page.locator("input[name=as_of]").input_value() == "2026-08-01"
            page.screenshot(path=str(ARTIFACTS / "dashboard-units-1280.png"), full_page=True)
        finally:
            browser.close()


def test_an_admin_creates_and_revokes_a_key_and_a_viewer_sees_no_write_control(
    chromium_path: str, client: TestClient, live_server: str
) -> None:
    """The API keys page as a person uses it, at desktop and phone width, under the strict CSP
    (a refused style or script would show as a console error)."""
    from playwright.sync_api import sync_playwright

    ws = build(client, with_source=False)
    viewer_key = create(client, "api-keys", name="Viewer in marketing", role="viewer")["key"]
    problems: list[str] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = watched_page(browser, problems, 1400, 900)
            sign_in_page(page, f"{live_server}/?cycle_id={ws.cycle_id}&as_of={AS_OF}", ADMIN_KEY)
            page.wait_for_selector(".objective")
            page.click("nav.nav >> text=API keys")
            page.wait_for_selector("h1:has-text('API keys')")

            # A refusal reads beside its field, as the API words it.
            page.fill("#key-name", "   ")
            page.click("text=Create key")
            assert page.locator("#key-name-error").is_visible()
            page.fill("#key-name", "Dana (marketing ops)")
            page.select_option("#key-role", "editor")
            page.click("text=Create key")
            secret = page.locator("#new-key").inner_text().strip()
            assert secret.startswith("krs_")
            assert page.get_by_text("Copy it now").is_visible()
            page.screenshot(path=str(ARTIFACTS / "keys-created-1400.png"), full_page=True)
            with httpx.Client(base_url=live_server, timeout=30) as api:
                auth = {"Authorization": f"Bearer {secret}"}
                assert api.get("/api/v1/cycles", headers=auth).status_code == 200

                page.click("text=Back to the API keys")
                row = page.locator("tr", has_text="Dana (marketing ops)")
                assert secret not in page.content()  # shown once, never again
                page.screenshot(path=str(ARTIFACTS / "keys-1400.png"), full_page=True)
                row.locator("a.revoke").click()
                page.wait_for_selector("h1:has-text('Revoke')")
                page.screenshot(path=str(ARTIFACTS / "keys-revoke-1400.png"))
                page.click("button.danger")
                page.wait_for_selector("h1:has-text('API keys')")
                assert "revoked" in (row.get_attribute("class") or "")
                assert api.get("/api/v1/cycles", headers=auth).status_code == 401

            at_phone_width(page, "keys-375.png")
            page.context.close()

            # A viewer: the dashboard with no form that writes, no link to the keys.
            page = watched_page(browser, problems, 375, 800)
            sign_in_page(page, f"{live_server}/?cycle_id={ws.cycle_id}&as_of={AS_OF}", viewer_key)
            page.wait_for_selector(".objective")
            assert page.locator("nav.nav a").all_inner_texts() == ["Dashboard", "OKRs", "Cycles"]
            writes = page.locator("form[method=post]:not(.signout)")
            assert writes.count() == 0
            no_sideways_scroll(page, 375)
            page.screenshot(path=str(ARTIFACTS / "dashboard-viewer-375.png"), full_page=True)
            refused = page.goto(f"{live_server}/keys")
            assert refused is not None
            assert refused.status == 403
            assert page.get_by_text("needs the admin role").is_visible()
            page.screenshot(path=str(ARTIFACTS / "keys-refused-375.png"))
        finally:
            browser.close()
    # The 422 and 403 pages are expected answers; anything else (a refused style) is not.
    assert unexpected(problems) == []


def test_an_admin_reads_a_source_and_its_runs(
    chromium_path: str, client: TestClient, live_server: str
) -> None:
    """The data-source pages at desktop and phone width, under the strict CSP."""

    ws = build(client)
    problems: list[str] = []
    with signed_in_page(
        chromium_path, problems, f"{live_server}/?cycle_id={ws.cycle_id}&as_of={AS_OF}", ADMIN_KEY
    ) as page:
        page.wait_for_selector(".objective")
        page.click("nav.nav >> text=Data sources")
        page.wait_for_selector("h1:has-text('Data sources')")
        page.screenshot(path=str(ARTIFACTS / "sources-1400.png"), full_page=True)
        page.locator(".sources-table a").first.click()
        page.wait_for_selector("h2:has-text('Runs')")
        assert page.locator(".source-facts dt").all_inner_texts()[:3] == [
            "Connector",
            "State",
            "Credentials",
        ]
        page.screenshot(path=str(ARTIFACTS / "source-1400.png"), full_page=True)
        at_phone_width(page, "source-375.png")
    assert problems == []


def test_an_editor_reads_the_okr_tree_and_aligns_a_new_objective(
    chromium_path: str, client: TestClient, live_server: str
) -> None:
    """The OKRs page at desktop and phone width, under the strict CSP: the tree from the
    company down, a refused form, an aligned objective made, and a viewer with no form."""
    from playwright.sync_api import sync_playwright

    tree = seed_tree(client)
    editor_key = create(client, "api-keys", name="Dana (social)", role="editor")["key"]
    viewer_key = create(client, "api-keys", name="Reader", role="viewer")["key"]
    problems: list[str] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = watched_page(browser, problems, 1400, 900)
            sign_in_page(page, f"{live_server}/", editor_key)
            page.click("nav.nav >> text=OKRs")
            page.wait_for_selector("h1:has-text('OKRs')")
            nested = page.locator(f"#kr-{tree.company_kr} > .okr-children > #objective-{tree.team}")
            assert nested.is_visible()
            page.screenshot(path=str(ARTIFACTS / "okrs-1400.png"), full_page=True)

            page.fill("#objective-title", "   ")
            page.click("text=Create objective")
            assert page.locator("#objective-title-error").is_visible()
            page.screenshot(path=str(ARTIFACTS / "okrs-refused-1400.png"), full_page=True)
            page.fill("#objective-title", "Paid search brings leads")
            page.fill("#objective-team", "Paid")
            page.fill("#objective-owner", "Ari")
            page.select_option("#objective-parent_key_result_id", str(tree.company_kr))
            page.click("text=Create objective")
            made = page.locator(f"#kr-{tree.company_kr} .okr-objective", has_text="Paid search")
            made.wait_for()
            page.select_option("#filter-team", "Social")
            page.click("text=Filter")
            page.wait_for_selector("a.clear")
            assert page.locator(".okr-objective", has_text="Paid search").count() == 0
            page.screenshot(path=str(ARTIFACTS / "okrs-filtered-1400.png"), full_page=True)
            page.click("a.clear")
            at_phone_width(page, "okrs-375.png")
            page.context.close()

            page = watched_page(browser, problems, 375, 800)
            sign_in_page(page, f"{live_server}/", viewer_key)
            page.click("nav.nav >> text=OKRs")
            page.wait_for_selector("h1:has-text('OKRs')")
            assert page.locator("form[method=post]:not(.signout)").count() == 0
            no_sideways_scroll(page, 375)
            page.screenshot(path=str(ARTIFACTS / "okrs-viewer-375.png"), full_page=True)
        finally:
            browser.close()
    expected_status = "Failed to load resource: the server responded with a status of 422"
    assert [p for p in problems if not p.startswith(expected_status)] == []


def test_an_editor_checks_in_on_a_key_result_edits_it_and_sees_the_chart(
    chromium_path: str, client: TestClient, live_server: str
) -> None:
    """The key-result page as an owner uses it, from the dashboard, at desktop and phone width,
    under the strict CSP (a refused style would show as a console error)."""

    ws = build(client)
    editor_key = create(client, "api-keys", name="Dana (owner)", role="editor")["key"]
    leads, conversion = ws.kr_ids[0], ws.mapped_kr_ids[1]
    problems: list[str] = []
    with signed_in_page(
        chromium_path, problems, f"{live_server}/?cycle_id={ws.cycle_id}&as_of={AS_OF}", editor_key
    ) as page:
        page.wait_for_selector(".objective")
        page.click("a:has-text('Generate 600 marketing leads')")
        page.wait_for_selector("h1:has-text('Generate 600 marketing leads')")
        assert page.url.endswith(f"/key-results/{leads}")
        assert page.locator("svg.kr-chart-wide .ch-point").count() == 4
        before = page.locator("#kr-current").inner_text()

        page.fill("#check-in-date", "2026-09-20")
        page.fill("#check-in-value", "120")
        page.fill("#check-in-confidence", "6")
        page.fill("#check-in-note", "Partner webinar")
        page.click("button:has-text('Check in')")
        page.wait_for_selector("td:has-text('Partner webinar')")
        assert page.locator("#kr-current").inner_text() != before
        assert page.locator("svg.kr-chart-wide .ch-point").count() == 5

        row = page.locator("tr", has_text="Partner webinar")
        row.locator("summary").click()
        row.locator("input[name=value]").fill("150")
        row.locator("textarea[name=note]").fill("Partner webinar, recounted")
        row.locator("button:has-text('Save')").click()
        page.wait_for_selector("td:has-text('Partner webinar, recounted')")
        assert page.locator("#kr-current").inner_text().startswith("405")
        assert page.locator("svg.kr-chart-wide .ch-target").count() == 1
        assert page.locator("svg.kr-chart-wide .ch-pace").count() == 1
        page.screenshot(path=str(ARTIFACTS / "key-result-1400.png"), full_page=True)
        at_phone_width(page, "key-result-375.png")

        # A mapped ratio: its points name the source and run, and its form takes no value.
        page.set_viewport_size({"width": 1400, "height": 900})
        with httpx.Client(base_url=live_server, timeout=30) as api:
            wait_for_backfills(api, {"Authorization": f"Bearer {ADMIN_KEY}"})
        page.goto(f"{live_server}/key-results/{conversion}")
        page.fill("#check-in-date", "2026-09-20")
        page.fill("#check-in-value", "1.1")
        page.click("button:has-text('Check in')")
        assert page.locator("#check-in-value-error").is_visible()
        assert "measured by the data source" in page.locator("#check-in-value-error").inner_text()
        page.screenshot(path=str(ARTIFACTS / "key-result-mapped-1400.png"), full_page=True)
    assert unexpected(problems) == []
