"""Whole journeys a person takes in the browser (issue 15, SPEC section 6), in Debian's chromium.

- An admin registers krsync's HubSpot app, creates a HubSpot source from the connector's form,
  connects it with OAuth against a local authorization server (`web.oauth_platform`, which
  checks state, the redirect URI and client authentication as HubSpot documents, and is the
  HubSpot CRM for the tokens it issued), maps `deals.count` filtered to won deals after seeing
  the 28-day preview, and sees the key result move.
- An owner (editor) creates an objective aligned to a company key result, adds a key result to
  it with the form, checks in, corrects the check-in and sees the chart.
- A viewer finds no write control on any page.

Every page is looked at: screenshots at 1400 px and at phone width land in tests/artifacts,
and no page scrolls sideways or logs a console error (a style or script the CSP refused).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from web.live import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    at_phone_width,
    free_port,
    serving,
    sign_in_page,
    signed_in_page,
    unexpected,
    wait_for_backfills,
    watched_page,
)
from web.oauth_platform import Platform, running

from conftest import ADMIN_KEY
from factories import create

# What the browser shows is the same pages the HTTP tests read on both databases.
pytestmark = pytest.mark.one_database

CLIENT_ID = "krsync-journey-app"
CLIENT_SECRET = "journey-client-secret-canary-0b7e"
WON, OPEN = "closedwon", "appointmentscheduled"


def _cycle_around_today(client: TestClient) -> tuple[int, date]:
    """A cycle holding the last 28 days (the preview's) and today, wherever the test runs."""
    today = datetime.now(UTC).date()
    start, end = today - timedelta(days=45), today + timedelta(days=45)
    cycle = create(client, "cycles", name="This quarter", start_date=str(start), end_date=str(end))
    return int(cycle["id"]), today


def _deals(today: date) -> list[dict[str, str]]:
    """Twelve deals over the last two weeks, every other one won."""
    return [
        {
            "createdate": f"{today - timedelta(days=3 + i)}T10:00:00.000Z",
            "dealstage": WON if i % 2 == 0 else OPEN,
            "dealname": f"Deal {i}",
        }
        for i in range(12)
    ]


def _look(page: Any, name: str) -> None:
    """A screenshot at desktop width, then at phone width, then back."""
    page.screenshot(path=str(ARTIFACTS / f"{name}-1400.png"), full_page=True)
    at_phone_width(page, f"{name}-375.png")
    page.set_viewport_size({"width": 1400, "height": 900})


def test_an_admin_connects_hubspot_maps_won_deals_after_a_preview_and_sees_the_kr_move(
    chromium_path: str, client: TestClient, db_url: str, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    cycle_id, today = _cycle_around_today(client)
    revenue = create(
        client,
        "objectives",
        cycle_id=cycle_id,
        title="Grow marketing-sourced revenue",
        level="company",
        owner="CMO",
    )["id"]
    kr = create(
        client,
        "key-results",
        objective_id=revenue,
        title="Win 10 deals from marketing channels",
        unit="deals",
        target_value=10,
    )["id"]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "KRSYNC_PUBLIC_URL": base,
        "KRSYNC_SECRET_KEY": Fernet.generate_key().decode(),
        "KRSYNC_ALLOW_PRIVATE_NETWORKS": "true",  # the platform is on 127.0.0.1
    }
    problems: list[str] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (
        running(Platform(CLIENT_ID, CLIENT_SECRET, deals=_deals(today))) as hubspot,
        serving(db_url, tmp_path, env, port) as live,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = watched_page(browser, problems, 1400, 900)
            sign_in_page(page, f"{live}/", ADMIN_KEY)
            page.wait_for_selector("nav")

            # 1. krsync's HubSpot app, registered once; the page says what to register back.
            page.click("nav >> text=Data sources")
            page.click("a:has-text('OAuth apps')")
            assert page.locator("#redirect-uri").inner_text() == f"{base}/oauth/callback"
            app = page.locator("#app-hubspot")
            if not app.locator("details").get_attribute("open"):
                app.locator("summary").click()
            app.locator("#hubspot-client_id").fill(CLIENT_ID)
            app.locator("#hubspot-client_secret").fill(CLIENT_SECRET)
            app.locator("#hubspot-authorize_url").fill(f"{hubspot.url}/authorize")
            app.locator("#hubspot-token_url").fill(f"{hubspot.url}/token")
            app.locator("button[type=submit]").click()
            page.wait_for_selector("#app-hubspot .pill-ok")
            assert CLIENT_SECRET not in page.content()
            _look(page, "oauth-apps")

            # 2. A HubSpot source from the gallery, its form built from the connector's schemas.
            page.goto(f"{live}/sources/new")
            _look(page, "gallery")
            page.click("a[href='/sources/new/hubspot']")
            page.fill("input[name='name']", "HubSpot CRM")
            page.fill("input[name='config.base_url']", hubspot.url)
            _look(page, "source-form")
            page.click("button:has-text('Create the source')")
            page.wait_for_selector("h1:has-text('HubSpot CRM')")
            source_id = int(page.url.rstrip("/").rsplit("/", 1)[-1])

            # 3. Connect: off to the platform's consent and back, the tokens stored encrypted.
            page.click("a:has-text('Connect with HubSpot')")
            page.wait_for_url(f"{live}/sources/{source_id}")
            assert hubspot.problems == []
            assert hubspot.token_requests == 1
            assert "set (never shown)" in page.content()
            page.click("button:has-text('Test connection')")
            page.wait_for_selector(".check-result")
            assert "62515" in page.locator(".check-result").inner_text()
            _look(page, "source-connected")

            # 4. Map won deals onto the key result, after seeing what the source would give.
            page.goto(f"{live}/key-results/{kr}")
            before = page.locator("#kr-current").inner_text()
            page.click("a:has-text('Map a data source')")
            page.select_option("#mb-data_source_id", str(source_id))
            page.click("button:has-text('Next: choose a metric')")
            page.select_option("#mb-metric", "deals.count")
            page.click("button:has-text('Show this metric')")
            page.fill("#mb-filter-0-field", "dealstage")
            page.select_option("#mb-filter-0-op", "eq")
            page.fill("#mb-filter-0-value", WON)
            page.click("button:has-text('Preview the last 28 days')")
            page.wait_for_selector("#preview-total")
            assert page.locator("#preview-total").inner_text() == "6"
            searches = hubspot.searches
            assert searches > 0
            _look(page, "mapping-preview")
            assert client.get("/api/v1/mappings", params={"key_result_id": kr}).json()["total"] == 0

            page.click("button:has-text('Save mapping')")
            page.wait_for_url(f"{live}/key-results/{kr}*")
            with httpx.Client(base_url=live, timeout=30) as api:
                wait_for_backfills(api, {"Authorization": f"Bearer {ADMIN_KEY}"})
            page.reload()
            after = page.locator("#kr-current").inner_text()
            assert after != before
            assert after.startswith("6")
            assert page.locator("#mappings").inner_text().count("deals.count") >= 1
            _look(page, "key-result-mapped-hubspot")
        finally:
            browser.close()
    assert unexpected(problems) == []


def _no_write_control(page: Any) -> None:
    """No form that writes but signing out, and no link to a form that would."""
    writes = page.locator("form[method=post]:not([action='/logout'])")
    assert writes.count() == 0, page.url
    for link in ("/edit", "/delete", "/new", "/revoke"):
        assert page.locator(f"a[href*='{link}']").count() == 0, (page.url, link)


def test_an_owner_aligns_an_objective_adds_a_key_result_checks_in_and_corrects_it(
    chromium_path: str, client: TestClient, live_server: str
) -> None:
    from playwright.sync_api import sync_playwright

    cycle_id, today = _cycle_around_today(client)
    company = create(
        client,
        "objectives",
        cycle_id=cycle_id,
        title="Grow marketing-sourced revenue",
        level="company",
        owner="CMO",
    )["id"]
    pipeline = create(
        client,
        "key-results",
        objective_id=company,
        title="3 M USD of marketing-sourced pipeline",
        unit="USD",
        target_value=3_000_000,
    )["id"]
    editor = create(client, "api-keys", name="Dana (Lifecycle)", role="editor")["key"]
    viewer = create(client, "api-keys", name="Board member", role="viewer")["key"]
    yesterday = str(today - timedelta(days=1))

    problems: list[str] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = watched_page(browser, problems, 1400, 900)
            sign_in_page(page, f"{live_server}/", editor)
            page.wait_for_selector("nav")
            page.click("nav >> text=OKRs")

            # An objective of the Lifecycle team, aligned to the company's pipeline result.
            page.fill("#objective-title", "Turn the newsletter into a growth channel")
            page.select_option("#objective-level", "team")
            page.fill("#objective-team", "Lifecycle")
            page.fill("#objective-owner", "Dana")
            page.select_option("#objective-parent_key_result_id", str(pipeline))
            page.click("button:has-text('Create objective')")
            aligned = page.locator(f"#kr-{pipeline} .okr-objective", has_text="newsletter")
            aligned.first.wait_for()
            _look(page, "okrs-aligned")

            # A key result for it, with the form that explains each choice.
            aligned.first.locator("a:has-text('Add key result')").click()
            page.fill("#kr-title", "1,200 new newsletter subscribers")
            page.fill("#kr-unit", "subscribers")
            page.fill("#kr-target_value", "1200")
            _look(page, "key-result-form")
            page.click("button:has-text('Create key result')")
            page.wait_for_selector("h1:has-text('1,200 new newsletter subscribers')")
            assert page.locator("svg.kr-chart-wide .ch-point").count() == 0

            # A check-in, then its correction; the chart and the figures follow.
            page.fill("#check-in-date", yesterday)
            page.fill("#check-in-value", "150")
            page.fill("#check-in-confidence", "7")
            page.fill("#check-in-note", "Webinar sign-ups")
            page.click("button:has-text('Check in')")
            page.wait_for_selector("td:has-text('Webinar sign-ups')")
            assert page.locator("#kr-current").inner_text().startswith("150")
            row = page.locator("tr", has_text="Webinar sign-ups")
            row.locator("summary").click()
            row.locator("input[name=value]").fill("180")
            row.locator("textarea[name=note]").fill("Webinar sign-ups, deduplicated")
            row.locator("button:has-text('Save')").click()
            page.wait_for_selector("td:has-text('Webinar sign-ups, deduplicated')")
            assert page.locator("#kr-current").inner_text().startswith("180")
            assert page.locator("svg.kr-chart-wide .ch-point").count() == 1
            assert page.locator("svg.kr-chart-wide .ch-target").count() == 1
            kr_url = page.url
            _look(page, "key-result-checked-in")

            # A viewer reads the same pages and finds nothing that writes.
            page = watched_page(browser, problems, 1400, 900)
            sign_in_page(page, f"{live_server}/", viewer)
            page.wait_for_selector("nav")
            assert page.locator("nav >> text=Data sources").count() == 0
            pages = {
                "dashboard-viewer": "/",
                "okrs-viewer": f"/okrs?cycle_id={cycle_id}",
                "cycles-viewer": "/cycles",
                "key-result-viewer": kr_url.removeprefix(live_server),
            }
            for name, path in pages.items():
                page.goto(f"{live_server}{path}")
                _no_write_control(page)
                _look(page, name)
        finally:
            browser.close()
    assert unexpected(problems) == []


def test_an_editor_closes_the_quarter_grades_a_key_result_and_downloads_the_review(
    chromium_path: str, client: TestClient, live_server: str
) -> None:
    """2026-Q3 is over: "40 press mentions" stands at 12 of 40 (progress 0.3, score 0.3) when
    it is closed; the editor grades it 0.5, and the review's CSV says both."""
    import csv
    import io

    cycle_id = create(
        client, "cycles", name="2026-Q3", start_date="2026-07-01", end_date="2026-09-30"
    )["id"]
    brand = create(
        client, "objectives", cycle_id=cycle_id, title="Be known for craft", team="Brand"
    )["id"]
    press = create(
        client, "key-results", objective_id=brand, title="40 press mentions", target_value=40
    )["id"]
    create(client, f"key-results/{press}/check-ins", date="2026-07-15", value=12)
    editor = create(client, "api-keys", name="Dana (Brand)", role="editor")["key"]

    problems: list[str] = []
    with signed_in_page(chromium_path, problems, f"{live_server}/", editor) as page:
        page.wait_for_selector("nav")
        page.goto(f"{live_server}/cycles")
        row = page.locator(f"#cycle-{cycle_id}")
        assert row.locator("text=Reopen").count() == 0, "reopening is an admin's"
        row.locator("a:has-text('Close the cycle')").click()
        page.wait_for_selector("h2:has-text('What freezing means')")
        _look(page, "cycle-close-confirm")
        page.click("button:has-text('Close the cycle and freeze its figures')")
        frozen = page.locator(f"#cycle-{cycle_id}-frozen")
        frozen.wait_for()
        assert "figures frozen" in frozen.inner_text()
        _look(page, "cycles-closed")

        # The key result reads as frozen; an editor grades it beside the computed score.
        page.goto(f"{live_server}/key-results/{press}")
        assert "figures frozen" in page.locator("#cycle-frozen").inner_text()
        assert page.locator("#kr-score").inner_text() == "0.3"
        page.fill("#final-score-final_score", "0.5")
        page.fill("#final-score-final_score_note", "Two features in trade press")
        page.click("button:has-text('Save final score')")
        page.wait_for_selector("#kr-final-score")
        assert page.locator("#kr-final-score").inner_text() == "0.5"
        _look(page, "key-result-graded")

        # The dashboard shows both scores; the review downloads with them.
        page.goto(f"{live_server}/?cycle_id={cycle_id}")
        assert "figures frozen" in page.locator("#cycle-frozen").inner_text()
        assert page.locator(".final-score dd").inner_text() == "0.5"
        _look(page, "dashboard-closed")
        page.goto(f"{live_server}/cycles")
        link = page.locator(f"#cycle-{cycle_id} .review-downloads a:has-text('CSV')")
        with page.expect_download() as download_info:
            link.click()
        saved = Path(download_info.value.path())
        rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    [row_] = [r for r in rows if r["key_result"] == "40 press mentions"]
    assert (row_["current_value"], row_["target_value"], row_["score"]) == ("12.0", "40.0", "0.3")
    assert (row_["final_score"], row_["final_score_note"]) == (
        "0.5",
        "Two features in trade press",
    )
    assert row_["status"] == "off_track"
    # Closed and graded over the API too, as the browser left it.
    read = client.get(f"/api/v1/key-results/{press}").json()
    assert (read["progress"]["frozen"], read["final_score"]) == (True, 0.5)
    assert unexpected(problems) == []
