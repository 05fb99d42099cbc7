"""Cycles, objectives, key results, check-ins, series and the dashboard over HTTP (SPEC 3)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.models import AuditEvent
from factories import (
    api_key_headers,
    check_in,
    cycle,
    data_source,
    key_result,
    mapping,
    objective,
    workspace,
)


def test_progress_block_matches_spec_example(client: TestClient) -> None:
    """SPEC 2's example: 1,380 of 3,000 followers on 2026-08-15 of a 92-day cycle.

    elapsed 46 of 92 days -> expected 0.5; progress 1380/3000 = 0.46 -> on_track (>= 0.4);
    run rate 1380 x 92 / 46 = 2760 -> forecast progress 0.92.
    """
    _, _, kr = workspace(client)
    check_in(client, kr, "2026-07-10", 600)
    check_in(client, kr, "2026-08-15", 780)
    body = client.get(f"/api/v1/key-results/{kr}", params={"as_of": "2026-08-15"}).json()
    p = body["progress"]
    assert p["current_value"] == 1380.0
    assert p["start_value"] == 0.0
    assert p["target_value"] == 3000.0
    assert p["progress"] == 0.46
    assert p["attainment"] == 0.46
    assert p["expected_progress"] == 0.5
    assert p["score"] == 0.5
    assert p["status"] == "on_track"
    assert p["forecast_value"] == 2760.0
    assert abs(p["forecast_progress"] - 0.92) < 1e-9
    assert p["last_observation_date"] == "2026-08-15"
    assert p["stale"] is False
    assert p["provisional_from"] is None  # check-ins only: nothing a platform restates
    assert p["groups"] == [{"group": "", "current_value": 1380.0, "progress": 0.46}]


def test_threshold_key_result_on_pace_reads_on_track_everywhere(client: TestClient) -> None:
    """SPEC 2 Status for `at_least`: "2 of 3 partnerships" read off_track while on pace.

    Check-ins of 1 on 07-11 (day 10) and 2 on 08-10 (day 40); on 08-15 (46 of 92 days) the line
    through them rises 1/30 a day: 1 + (91 - 10) / 30 = 3.7 on 09-30 >= 3 -> on_track, though
    2 / 3 = 0.667 misses the threshold today. Its objective, 0.667 against 0.5 expected, too.
    """
    c, o, _ = workspace(client)
    kr = key_result(
        client,
        o,
        title="3 partnerships signed",
        direction="at_least",
        aggregation="last",
        target_value=3,
    )["id"]
    check_in(client, kr, "2026-07-11", 1)
    check_in(client, kr, "2026-08-10", 2)
    as_of = {"as_of": "2026-08-15"}
    p = client.get(f"/api/v1/key-results/{kr}", params=as_of).json()["progress"]
    assert (p["current_value"], p["progress"]) == (2.0, pytest.approx(2 / 3))
    assert (p["forecast_value"], p["forecast_progress"]) == (pytest.approx(3.7), 1.0)
    assert p["status"] == "on_track"
    dashboard = client.get("/api/v1/dashboard", params={"cycle_id": c, **as_of}).json()
    [objective_read] = dashboard["objectives"]
    statuses = {k["title"]: k["progress"]["status"] for k in objective_read["key_results"]}
    assert statuses["3 partnerships signed"] == "on_track"
    # Once the cycle is over, only the figure counts: 2 < 3 -> off_track, not at risk.
    over = client.get(f"/api/v1/key-results/{kr}", params={"as_of": "2026-10-01"}).json()
    assert over["progress"]["status"] == "off_track"


def test_as_of_before_and_after_the_cycle(client: TestClient) -> None:
    _, _, kr = workspace(client)
    check_in(client, kr, "2026-07-01", 3000)
    before = client.get(f"/api/v1/key-results/{kr}?as_of=2026-06-01").json()["progress"]
    assert before["status"] == "no_data"
    assert before["expected_progress"] == 0.0
    after = client.get(f"/api/v1/key-results/{kr}?as_of=2027-01-01").json()["progress"]
    assert after["status"] == "done"
    assert after["expected_progress"] == 1.0


def test_later_check_in_replaces_the_day_but_history_keeps_both(client: TestClient) -> None:
    _, _, kr = workspace(client)
    check_in(client, kr, "2026-07-05", 100, note="first count", confidence=7)
    check_in(client, kr, "2026-07-05", 120, note="corrected")
    history = client.get(f"/api/v1/key-results/{kr}/check-ins").json()
    assert history["total"] == 2
    assert [c["value"] for c in history["items"]] == [120.0, 100.0]
    assert history["items"][1]["confidence"] == 7
    assert history["items"][0]["author"] == "bootstrap-admin"
    progress = client.get(f"/api/v1/key-results/{kr}?as_of=2026-07-31").json()["progress"]
    assert progress["current_value"] == 120.0


def test_check_in_before_the_cycle_feeds_the_baseline(client: TestClient) -> None:
    """+25 % on last quarter (a `last` figure): baseline 2,000 on 2026-06-30 -> target 2,500.

    start = baseline for a non-sum reduction; 2,250 on 2026-08-15 -> (2250-2000)/500 = 0.5.
    """
    c = cycle(client)
    o = objective(client, c["id"])
    kr = key_result(client, o["id"], target_value=None, target_change_pct=25, aggregation="last")[
        "id"
    ]
    check_in(client, kr, "2026-08-15", 2250)
    missing = client.get(f"/api/v1/key-results/{kr}?as_of=2026-08-15").json()["progress"]
    assert missing["status"] == "no_baseline"
    assert missing["progress"] is None
    check_in(client, kr, "2026-06-30", 2000)
    p = client.get(f"/api/v1/key-results/{kr}?as_of=2026-08-15").json()["progress"]
    assert p["start_value"] == 2000.0
    assert p["target_value"] == 2500.0
    assert p["progress"] == 0.5


def test_series_json_and_csv(client: TestClient) -> None:
    _, _, kr = workspace(client)
    check_in(client, kr, "2026-07-02", 5)
    check_in(client, kr, "2026-07-01", 3.5)
    body = client.get(f"/api/v1/key-results/{kr}/series").json()
    assert (body["from"], body["to"]) == ("2026-07-01", "2026-09-30")
    assert [(p["date"], p["value"], p["group"], p["role"]) for p in body["points"]] == [
        ("2026-07-01", 3.5, "", "value"),
        ("2026-07-02", 5.0, "", "value"),
    ]
    assert body["points"][0]["sync_run_id"] is None
    assert [p["provisional"] for p in body["points"]] == [False, False]  # check-ins never are

    response = client.get(
        f"/api/v1/key-results/{kr}/series", params={"format": "csv", "from": "2026-07-02"}
    )
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows == [
        {
            "date": "2026-07-02",
            "group": "",
            "role": "value",
            "value": "5.0",
            "mapping_id": "",
            "sync_run_id": "",
            "provisional": "false",
        }
    ]
    bad = client.get(f"/api/v1/key-results/{kr}/series?from=2026-08-01&to=2026-07-01")
    assert bad.status_code == 422
    assert "'to'" in bad.json()["detail"]


def test_lists_paginate(client: TestClient) -> None:
    for i in range(7):
        cycle(client, name=f"C{i}", start_date=f"2026-0{i + 1}-01", end_date=f"2026-0{i + 1}-28")
    page = client.get("/api/v1/cycles?limit=3&offset=5").json()
    assert page["total"] == 7
    assert [c["name"] for c in page["items"]] == ["C1", "C0"]
    assert client.get("/api/v1/cycles?limit=0").status_code == 422
    assert client.get("/api/v1/cycles?limit=501").status_code == 422


def test_filters_by_parent(client: TestClient) -> None:
    c1, o1, _ = workspace(client)
    c2 = cycle(client, name="Q4", start_date="2026-10-01", end_date="2026-12-31")["id"]
    objective(client, c2)
    key_result(client, o1, title="second")
    assert client.get(f"/api/v1/objectives?cycle_id={c1}").json()["total"] == 1
    assert client.get(f"/api/v1/objectives?cycle_id={c2}").json()["total"] == 1
    krs = client.get(f"/api/v1/key-results?objective_id={o1}").json()
    assert krs["total"] == 2
    assert all(k["progress"] is not None for k in krs["items"])


def test_delete_with_children_needs_cascade(client: TestClient) -> None:
    c, o, kr = workspace(client)
    check_in(client, kr, "2026-07-01", 1)
    response = client.delete(f"/api/v1/cycles/{c}")
    assert response.status_code == 409
    assert "cascade=true" in response.json()["detail"]
    assert client.delete(f"/api/v1/objectives/{o}").status_code == 409
    assert client.get(f"/api/v1/key-results/{kr}").status_code == 200

    assert client.delete(f"/api/v1/cycles/{c}?cascade=true").status_code == 204
    assert client.get(f"/api/v1/objectives/{o}").status_code == 404
    assert client.get(f"/api/v1/key-results/{kr}").status_code == 404
    assert client.get(f"/api/v1/cycles/{c}").status_code == 404


def _audit(db_url: str, entity: str, entity_id: int) -> list[dict[str, Any]]:
    engine = create_engine(db_url)
    with Session(engine) as session:
        rows = session.scalars(
            select(AuditEvent.changes)
            .where(AuditEvent.entity == entity, AuditEvent.entity_id == entity_id)
            .where(AuditEvent.action == "delete")
        ).all()
    engine.dispose()
    return list(rows)


def test_a_key_result_with_check_ins_needs_cascade(
    client: TestClient, anon: TestClient, db_url: str
) -> None:
    """Check-ins are an editor's to write, so an editor's cascade may take them along."""
    editor = api_key_headers(client, "editor")
    _, _, kr = workspace(client)
    check_in(client, kr, "2026-07-01", 1)
    response = anon.delete(f"/api/v1/key-results/{kr}", headers=editor)
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"key result {kr} still holds 0 mapping(s) and 1 check-in(s); "
        "delete them first or pass ?cascade=true"
    )
    assert client.get(f"/api/v1/key-results/{kr}/check-ins").json()["total"] == 1

    response = anon.delete(f"/api/v1/key-results/{kr}?cascade=true", headers=editor)
    assert response.status_code == 204
    assert client.get(f"/api/v1/key-results/{kr}").status_code == 404
    assert _audit(db_url, "key_result", kr) == [
        {"cascade": True, "mappings": 0, "mapping_ids": [], "check_ins": 1, "observations": 1}
    ]


def test_an_empty_key_result_deletes_without_cascade(client: TestClient) -> None:
    _, _, kr = workspace(client)
    assert client.delete(f"/api/v1/key-results/{kr}").status_code == 204


def test_mappings_are_deleted_by_an_admin_only(
    client: TestClient, anon: TestClient, db_url: str
) -> None:
    """Mappings are admin-managed: no editor's delete, cascading or not, takes them along."""
    editor = api_key_headers(client, "editor")
    c, o, kr = workspace(client)
    mid = mapping(client, kr, data_source(client)["id"], "signups")["id"]

    response = anon.delete(f"/api/v1/key-results/{kr}", headers=editor)
    assert response.status_code == 409
    assert "1 mapping(s) (mappings are managed by admins)" in response.json()["detail"]
    for path in (f"key-results/{kr}", f"objectives/{o}", f"cycles/{c}"):
        response = anon.delete(f"/api/v1/{path}?cascade=true", headers=editor)
        assert response.status_code == 403, path
        assert "1 mapping(s), which are managed by admins" in response.json()["detail"]
    assert client.get(f"/api/v1/mappings/{mid}").status_code == 200
    assert client.get(f"/api/v1/key-results/{kr}").status_code == 200

    assert client.delete(f"/api/v1/key-results/{kr}").status_code == 409
    assert client.delete(f"/api/v1/key-results/{kr}?cascade=true").status_code == 204
    assert client.get(f"/api/v1/mappings/{mid}").status_code == 404
    [changes] = _audit(db_url, "key_result", kr)
    assert changes["mappings"] == 1
    assert changes["mapping_ids"] == [mid]
    assert changes["check_ins"] == 0


@pytest.mark.parametrize("parent", ["objectives", "cycles"])
def test_an_admin_cascade_from_a_cycle_or_objective_takes_the_mappings(
    client: TestClient, db_url: str, parent: str
) -> None:
    c, o, kr = workspace(client)
    check_in(client, kr, "2026-07-01", None, note="Kick-off: tracking starts", confidence=6)
    mid = mapping(client, kr, data_source(client)["id"], "signups")["id"]
    parent_id = o if parent == "objectives" else c
    assert client.delete(f"/api/v1/{parent}/{parent_id}?cascade=true").status_code == 204
    assert client.get(f"/api/v1/mappings/{mid}").status_code == 404
    [changes] = _audit(db_url, parent[:-1], parent_id)
    assert changes["mappings"] == 1
    assert changes["mapping_ids"] == [mid]
    assert changes["check_ins"] == 1


def test_an_editor_cascades_a_cycle_without_mappings(client: TestClient, anon: TestClient) -> None:
    editor = api_key_headers(client, "editor")
    c, _, kr = workspace(client)
    check_in(client, kr, "2026-07-01", 1)
    assert anon.delete(f"/api/v1/cycles/{c}?cascade=true", headers=editor).status_code == 204
    assert client.get(f"/api/v1/key-results/{kr}").status_code == 404


def test_empty_objective_deletes_without_cascade(client: TestClient) -> None:
    c = cycle(client)["id"]
    o = objective(client, c)["id"]
    assert client.delete(f"/api/v1/objectives/{o}").status_code == 204
    assert client.delete(f"/api/v1/cycles/{c}").status_code == 204


def test_alignment_and_rollup(client: TestClient) -> None:
    """A company roll-up KR averages the progress of the team objectives aligned to it."""
    c = cycle(client)["id"]
    company = objective(client, c, title="Win the market", level="company")["id"]
    rollup = key_result(client, company, title="Teams deliver", kind="rollup", target_value=None)
    team_a = objective(client, c, title="A", parent_key_result_id=rollup["id"])["id"]
    team_b = objective(client, c, title="B", parent_key_result_id=rollup["id"])["id"]
    kr_a = key_result(client, team_a, target_value=100)["id"]
    kr_b = key_result(client, team_b, target_value=100)["id"]
    check_in(client, kr_a, "2026-07-10", 80)  # 0.8
    check_in(client, kr_b, "2026-07-10", 40)  # 0.4

    p = client.get(f"/api/v1/key-results/{rollup['id']}?as_of=2026-09-30").json()["progress"]
    assert abs(p["progress"] - 0.6) < 1e-9
    obj = client.get(f"/api/v1/objectives/{company}?as_of=2026-09-30").json()
    assert abs(obj["progress"]["progress"] - 0.6) < 1e-9
    assert obj["key_results"][0]["id"] == rollup["id"]

    # An objective can't be aligned to its own key result, nor through a chain back to it.
    loop = client.patch(f"/api/v1/objectives/{company}", json={"parent_key_result_id": kr_a})
    assert loop.status_code == 422
    assert "loop" in loop.json()["detail"]
    assert (
        client.post(
            f"/api/v1/key-results/{rollup['id']}/check-ins", json={"date": "2026-07-01", "value": 1}
        ).status_code
        == 422
    )


def test_dashboard_defaults_to_the_current_cycle(client: TestClient) -> None:
    c, o, kr = workspace(client)
    cycle(client, name="Q4", start_date="2026-10-01", end_date="2026-12-31")
    check_in(client, kr, "2026-08-01", 1500)
    body = client.get("/api/v1/dashboard?as_of=2026-08-15").json()
    assert body["cycle"]["id"] == c
    assert body["expected_progress"] == 0.5
    [obj] = body["objectives"]
    assert obj["id"] == o
    assert obj["progress"]["progress"] == 0.5
    assert obj["key_results"][0]["progress"]["current_value"] == 1500.0
    assert client.get(f"/api/v1/dashboard?cycle_id={c}&as_of=2026-08-15").json() == body


def test_dashboard_without_cycles_is_404(client: TestClient) -> None:
    response = client.get("/api/v1/dashboard")
    assert response.status_code == 404
    assert "POST /api/v1/cycles" in response.json()["detail"]


def test_patch_updates_only_given_fields(client: TestClient) -> None:
    _, _, kr = workspace(client)
    updated = client.patch(f"/api/v1/key-results/{kr}", json={"target_value": 4000}).json()
    assert updated["target_value"] == 4000.0
    assert updated["title"] == "3,000 new followers"
    assert client.patch(f"/api/v1/key-results/{kr}", json={"title": None}).status_code == 422
