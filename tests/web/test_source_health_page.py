"""Source health on the source page (SPEC sections 6 and 7: the page shows "health"; a paused
source is resumed from it as `POST /api/v1/data-sources/{id}/resume` does)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from web.browser_session import sign_in

from app.core import clock
from app.core.db import session_scope
from app.models import DataSource
from conftest import ADMIN_KEY
from factories import create


def _paused_source(client: TestClient) -> int:
    source = create(client, "data-sources", name="Web analytics", connector="demo", config={})
    with session_scope() as s:
        row = s.get(DataSource, source["id"])
        assert row is not None
        row.consecutive_failures = 10
        row.last_run_status = "failed"
        row.last_attempt_at = clock.utcnow()
        row.paused_at = clock.utcnow()
    return int(source["id"])


def test_a_paused_source_says_so_and_is_resumed_from_its_page(
    client: TestClient, anon: TestClient
) -> None:
    source_id = _paused_source(client)
    csrf = sign_in(anon, ADMIN_KEY)
    page = anon.get(f"/sources/{source_id}").text
    assert 'class="chip h-paused"' in page
    assert "10 failed runs in a row" in page
    assert f'action="/sources/{source_id}/resume"' in page

    forged = anon.post(f"/sources/{source_id}/resume", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert client.get(f"/api/v1/data-sources/{source_id}").json()["health"] == "paused"

    done = anon.post(
        f"/sources/{source_id}/resume", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert done.status_code == 303
    read = client.get(f"/api/v1/data-sources/{source_id}").json()
    assert read["health"] != "paused"
    assert read["consecutive_failures"] == 0
    page = anon.get(f"/sources/{source_id}").text
    assert f'action="/sources/{source_id}/resume"' not in page
    audit = client.get("/api/v1/audit-events", params={"entity": "data_source"}).json()
    assert any(e["action"] == "resume" for e in audit["items"])


def test_a_healthy_source_offers_no_resume(client: TestClient, anon: TestClient) -> None:
    source = create(client, "data-sources", name="Web analytics", connector="demo", config={})
    sign_in(anon, ADMIN_KEY)
    page = anon.get(f"/sources/{source['id']}").text
    assert 'class="chip h-healthy"' in page
    assert "/resume" not in page
