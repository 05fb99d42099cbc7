"""The data-source pages (SPEC section 6, "Data sources"): the schedule with its next three runs
in the source's timezone, the run history with status, window, API calls, warnings and the
redacted error, and "Connect" where the platform uses OAuth. Admins only, like the API."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from web.browser_session import sign_in

from app.core import clock
from app.core.db import session_scope
from app.models import OAuthApp, SyncRun
from app.web.sources import next_runs
from conftest import ADMIN_KEY
from factories import api_key_headers, create


def test_next_runs_are_read_in_the_sources_timezone() -> None:
    """03:00 in New York is 08:00 UTC in winter; the page lists them as New York reads them."""
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)  # 07:00 in New York
    runs = next_runs("0 3 * * *", "America/New_York", now)
    assert [r.isoformat() for r in runs] == [
        "2026-12-05T03:00:00-05:00",
        "2026-12-06T03:00:00-05:00",
        "2026-12-07T03:00:00-05:00",
    ]
    assert next_runs("0 9 * * 1-5", "UTC", datetime(2026, 12, 4, 10, tzinfo=UTC))[0].day == 7
    assert next_runs("not a schedule", "UTC", now) == []


def test_a_source_shows_its_schedule_runs_and_connect_button(
    client: TestClient, anon: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clock, "utcnow", lambda: datetime(2026, 12, 4, 12, 0, tzinfo=UTC))
    source = create(
        client,
        "data-sources",
        name="HubSpot CRM",
        connector="hubspot",
        config={},
        schedule="0 3 * * *",
        timezone="America/New_York",
    )
    with session_scope() as s:
        s.add(
            SyncRun(
                data_source_id=source["id"],
                trigger="schedule",
                status="failed",
                window_from=date(2026, 11, 30),
                window_to=date(2026, 12, 3),
                api_calls=4,
                observations_written=0,
                warnings=["2 value(s) were left out"],
                error="hubspot: POST /crm/v3/objects/deals/search answered 401 Unauthorized",
            )
        )
        # Connect is offered once the organisation registered its HubSpot app.
        s.add(OAuthApp(provider="hubspot", client_id="app-1", client_secret_encrypted="sealed"))
    sign_in(anon, ADMIN_KEY)

    listing = anon.get("/sources")
    assert listing.status_code == 200
    assert f'<a href="/sources/{source["id"]}">HubSpot CRM</a>' in listing.text

    page = anon.get(f"/sources/{source['id']}")
    assert page.status_code == 200
    text = page.text
    words = re.sub(r"<[^>]+>", "", text)
    assert "2026-12-05 03:00 EST, 2026-12-06 03:00 EST, 2026-12-07 03:00 EST" in words
    assert "in America/New_York" in text
    assert "not set" in text  # no credentials yet
    assert f'href="/oauth/hubspot/authorize?data_source_id={source["id"]}"' in text
    assert "Connect with HubSpot" in text
    row = re.search(r'<tr class="run-failed".*?</tr>', text, re.S)
    assert row, text[-1500:]
    for shown in ("2026-11-30 → 2026-12-03", "schedule", ">4<", "2 value(s) were left out", "401"):
        assert shown in row.group(0), shown
    assert 'aria-current="page"' in anon.get("/sources").text


def test_a_source_without_oauth_has_no_connect_button(client: TestClient, anon: TestClient) -> None:
    source = create(client, "data-sources", name="demo", connector="demo", config={"seed": 1})
    sign_in(anon, ADMIN_KEY)
    page = anon.get(f"/sources/{source['id']}").text
    assert "/oauth/" not in page
    assert "No runs yet." in page


def test_source_pages_are_for_admins(client: TestClient, anon: TestClient) -> None:
    source = create(client, "data-sources", name="demo", connector="demo", config={"seed": 1})
    sign_in(anon, api_key_headers(client, "editor")["Authorization"][7:])
    assert anon.get("/sources").status_code == 403
    assert anon.get(f"/sources/{source['id']}").status_code == 403
    assert 'href="/sources"' not in anon.get("/").text  # no nav link either


@pytest.mark.parametrize("bad", ["999", "0", "abc", "99999999999"])
def test_an_unknown_source_is_a_404_page(anon: TestClient, bad: str) -> None:
    sign_in(anon, ADMIN_KEY)
    page = anon.get(f"/sources/{bad}")
    assert page.status_code == 404
    assert "No such data source" in page.text
