"""Check-ins (SPEC 1 and 3): no hand-typed figure on a synced one, no day to come, corrections.

A check-in with a value is also the day's manual Observation (role `value`, group ""); after a
correction or a delete the day's value is that of its latest remaining check-in with one.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from sync_factories import freeze_today

from app.models import AuditEvent
from factories import api_key_headers, check_in, data_source, key_result, mapping, workspace

AS_OF = "2026-07-31"


def _current(client: TestClient, kr: int, as_of: str = AS_OF) -> float | None:
    """The key result's own read: the cached one, so a write that forgot the cache shows."""
    response = client.get(f"/api/v1/key-results/{kr}?as_of={as_of}")
    assert response.status_code == 200, response.text
    value: float | None = response.json()["progress"]["current_value"]
    return value


def _days(client: TestClient, kr: int, **window: str) -> list[tuple[str, float, int | None]]:
    points = client.get(f"/api/v1/key-results/{kr}/series", params=window).json()["points"]
    return [(p["date"], p["value"], p["mapping_id"]) for p in points]


def _audited(db_url: str, entity_id: int) -> list[tuple[str, dict[str, Any]]]:
    engine = create_engine(db_url)
    with Session(engine) as session:
        rows = session.execute(
            select(AuditEvent.action, AuditEvent.changes)
            .where(AuditEvent.entity == "check_in", AuditEvent.entity_id == entity_id)
            .order_by(AuditEvent.id)
        ).all()
    engine.dispose()
    return [(action, changes) for action, changes in rows]


# --- a key result fed by mappings -------------------------------------------------------------


def test_a_value_on_a_synced_key_result_is_refused_and_names_its_source(
    client: TestClient,
) -> None:
    """The demo's 648 -> 698: a synced day plus a hand-typed 50 made two rows on one day.

    The source's figures are the key result's; a check-in there carries a note and a confidence.
    """
    _, _, kr = workspace(client)
    source = data_source(client, name="GA4 main")
    mid = mapping(client, kr, source["id"], "sessions")["id"]
    synced = _days(client, kr)
    assert synced, "the mapping's backfill wrote the cycle"
    day, figure, _ = next(p for p in synced if p[0] == "2026-07-20")
    before = _current(client, kr)
    assert before == sum(v for d, v, _ in synced if d <= AS_OF)

    response = client.post(
        f"/api/v1/key-results/{kr}/check-ins", json={"date": day, "value": 50, "note": "GA4 says"}
    )

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == "value"
    assert f"the data source `GA4 main` (mapping {mid})" in body["detail"]
    assert "a note and a confidence only" in body["detail"]
    assert _current(client, kr) == before  # not before + 50
    assert _days(client, kr) == synced
    assert [(d, v) for d, v, _ in _days(client, kr) if d == day] == [(day, figure)]

    noted = check_in(client, kr, day, None, note="Campaign paused two days", confidence=6)
    assert noted["value"] is None
    assert noted["confidence"] == 6
    assert _current(client, kr) == before
    assert _days(client, kr) == synced
    history = client.get(f"/api/v1/key-results/{kr}/check-ins").json()
    assert [(c["note"], c["value"]) for c in history["items"]] == [
        ("Campaign paused two days", None)
    ]
    # Nor can a correction slip a figure in.
    patched = client.patch(f"/api/v1/key-results/{kr}/check-ins/{noted['id']}", json={"value": 5})
    assert patched.status_code == 422, patched.text
    assert "`GA4 main`" in patched.json()["detail"]


def test_every_source_measuring_it_is_named(client: TestClient) -> None:
    _, o, _ = workspace(client)
    ratio = key_result(client, o, title="Conversion", aggregation="ratio", target_value=0.1)["id"]
    crm = data_source(client, name="CRM")["id"]
    web = data_source(client, name="Web", config={"seed": 3})["id"]
    num = mapping(client, ratio, crm, "signups", role="numerator")["id"]
    den = mapping(client, ratio, web, "sessions", role="denominator")["id"]
    response = client.post(
        f"/api/v1/key-results/{ratio}/check-ins", json={"date": "2026-07-02", "value": 0.2}
    )
    assert response.status_code == 422
    assert (
        f"the data sources `CRM` (mapping {num}) and `Web` (mapping {den})"
        in response.json()["detail"]
    )


def test_a_mapping_is_refused_on_a_key_result_whose_check_ins_carry_values(
    client: TestClient,
) -> None:
    """Hand-typed figures are never added to synced ones, and none is dropped unasked: the
    mapping waits until the values are taken out of the check-ins (their notes stay)."""
    _, _, kr = workspace(client)
    first = check_in(client, kr, "2026-07-03", 40, note="counted by hand", confidence=5)
    second = check_in(client, kr, "2026-07-09", 65, confidence=8)
    check_in(client, kr, "2026-07-10", None, note="no figure, a note")
    source = data_source(client)["id"]

    refused = client.post(
        "/api/v1/mappings",
        json={"key_result_id": kr, "data_source_id": source, "metric": "signups"},
    )

    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert "check-ins with a value (2 day(s): 2026-07-03, 2026-07-09)" in detail
    assert "`value: null`" in detail
    assert client.get(f"/api/v1/mappings?key_result_id={kr}").json()["total"] == 0
    assert _current(client, kr) == 105.0

    for made in (first, second):
        cleared = client.patch(
            f"/api/v1/key-results/{kr}/check-ins/{made['id']}", json={"value": None}
        )
        assert cleared.status_code == 200, cleared.text
    assert _days(client, kr) == []
    mapped = mapping(client, kr, source, "signups")
    synced = _days(client, kr)
    assert synced
    assert all(m == mapped["id"] for _, _, m in synced)
    notes = [c["note"] for c in client.get(f"/api/v1/key-results/{kr}/check-ins").json()["items"]]
    assert notes == ["no figure, a note", "", "counted by hand"]


# --- dates ------------------------------------------------------------------------------------


def test_a_check_in_dated_after_today_is_refused(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Today is 2026-08-15 at noon UTC: already the 16th at UTC+14, the earliest time zone, so
    nobody's own today is refused; the 17th has come nowhere, and a year's typo never will."""
    freeze_today(monkeypatch, date(2026, 8, 15))
    _, _, kr = workspace(client)
    for day in ("2026-08-17", "2027-08-15"):
        response = client.post(
            f"/api/v1/key-results/{kr}/check-ins", json={"date": day, "value": 10}
        )
        assert response.status_code == 422, (day, response.text)
        assert response.json()["field"] == "date"
        assert f"no time zone has reached {day} yet" in response.json()["detail"]
    check_in(client, kr, "2026-08-15", 10)
    late = check_in(client, kr, "2026-08-16", 20)
    assert client.get(f"/api/v1/key-results/{kr}/check-ins").json()["total"] == 2
    moved = client.patch(
        f"/api/v1/key-results/{kr}/check-ins/{late['id']}", json={"date": "2027-08-16"}
    )
    assert moved.status_code == 422
    assert _days(client, kr) == [("2026-08-15", 10.0, None), ("2026-08-16", 20.0, None)]


def test_a_check_in_after_its_cycle_is_refused_and_before_it_feeds_the_baseline(
    client: TestClient,
) -> None:
    """2026-Q3 ends on 30 September (today is later); 15 June is before it: a baseline day."""
    _, _, kr = workspace(client)
    response = client.post(
        f"/api/v1/key-results/{kr}/check-ins", json={"date": "2026-10-01", "value": 10}
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "date"
    assert "after the end of cycle '2026-Q3' (2026-09-30)" in response.json()["detail"]
    last = check_in(client, kr, "2026-09-30", 10)
    check_in(client, kr, "2026-06-15", 5)
    moved = client.patch(
        f"/api/v1/key-results/{kr}/check-ins/{last['id']}", json={"date": "2026-10-02"}
    )
    assert moved.status_code == 422
    assert "after the end of cycle" in moved.json()["detail"]
    assert _days(client, kr, **{"from": "2026-06-01"}) == [
        ("2026-06-15", 5.0, None),
        ("2026-09-30", 10.0, None),
    ]


def test_a_check_in_says_something(client: TestClient) -> None:
    _, _, kr = workspace(client)
    response = client.post(f"/api/v1/key-results/{kr}/check-ins", json={"date": "2026-07-02"})
    assert response.status_code == 422
    assert "a check-in carries a value, a note or a confidence" in response.json()["detail"]
    assert "Value error" not in response.json()["detail"]
    only = check_in(client, kr, "2026-07-02", 3)
    emptied = client.patch(f"/api/v1/key-results/{kr}/check-ins/{only['id']}", json={"value": None})
    assert emptied.status_code == 422
    assert "delete it rather than empty it" in emptied.json()["detail"]
    assert _days(client, kr) == [("2026-07-02", 3.0, None)]


# --- corrections ------------------------------------------------------------------------------


def test_the_days_value_follows_its_latest_remaining_check_in(
    client: TestClient, db_url: str
) -> None:
    """A `sum` key result; A and B on 5 July (B the later), C on 10 July. Worked by hand:

    120 + 600 = 720 -> B 130: 730 -> A 90 (B still the day's): 730 -> B deleted: 90 + 600 = 690
    -> A moved to 10 July, where C is the later: 600 -> C's value out: A's 90 -> A deleted: none.
    """
    _, _, kr = workspace(client)
    a = check_in(client, kr, "2026-07-05", 100, note="first count", confidence=7)["id"]
    b = check_in(client, kr, "2026-07-05", 120, note="recount")["id"]
    c = check_in(client, kr, "2026-07-10", 600)["id"]
    url = f"/api/v1/key-results/{kr}/check-ins"
    assert _current(client, kr) == 720.0

    def patch(check_in_id: int, **body: Any) -> dict[str, Any]:
        response = client.patch(f"{url}/{check_in_id}", json=body)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    assert patch(b, value=130)["value"] == 130.0
    assert _current(client, kr) == 730.0
    assert _days(client, kr) == [("2026-07-05", 130.0, None), ("2026-07-10", 600.0, None)]

    patch(a, value=90)
    assert _current(client, kr) == 730.0

    assert client.delete(f"{url}/{b}").status_code == 204
    assert _current(client, kr) == 690.0
    assert _days(client, kr) == [("2026-07-05", 90.0, None), ("2026-07-10", 600.0, None)]

    moved = patch(a, date="2026-07-10")
    assert (moved["date"], moved["value"], moved["note"], moved["confidence"]) == (
        "2026-07-10",
        90.0,
        "first count",
        7,
    )
    assert _current(client, kr) == 600.0
    assert _days(client, kr) == [("2026-07-10", 600.0, None)]

    patch(c, value=None, note="the 600 was a typo")
    assert _current(client, kr) == 90.0
    assert _days(client, kr) == [("2026-07-10", 90.0, None)]

    assert client.delete(f"{url}/{a}").status_code == 204
    assert _days(client, kr) == []
    progress = client.get(f"/api/v1/key-results/{kr}?as_of={AS_OF}").json()["progress"]
    assert progress["status"] == "no_data"
    history = client.get(url).json()
    assert [(i["id"], i["value"], i["note"]) for i in history["items"]] == [
        (c, None, "the 600 was a typo")
    ]

    assert _audited(db_url, b) == [
        ("create", {"key_result_id": kr, "date": "2026-07-05", "value": 120.0, "note": "recount",
                    "confidence": None, "author": "bootstrap-admin"}),
        ("update", {"key_result_id": kr, "value": [120.0, 130.0]}),
        ("delete", {"key_result_id": kr, "date": "2026-07-05", "value": 130.0, "note": "recount",
                    "confidence": None, "author": "bootstrap-admin"}),
    ]  # fmt: skip
    assert _audited(db_url, a)[2] == (
        "update",
        {"key_result_id": kr, "date": ["2026-07-05", "2026-07-10"]},
    )


def test_an_editor_corrects_and_a_viewer_cannot(client: TestClient, anon: TestClient) -> None:
    _, _, kr = workspace(client)
    made = check_in(client, kr, "2026-07-05", 100)
    url = f"/api/v1/key-results/{kr}/check-ins/{made['id']}"
    viewer, editor = api_key_headers(client, "viewer"), api_key_headers(client, "editor")
    assert anon.patch(url, json={"value": 1}, headers=viewer).status_code == 403
    assert anon.delete(url, headers=viewer).status_code == 403
    response = anon.patch(url, json={"note": "checked", "confidence": 9}, headers=editor)
    assert response.status_code == 200, response.text
    assert (response.json()["note"], response.json()["confidence"]) == ("checked", 9)
    assert response.json()["author"] == "bootstrap-admin"  # who said it; the audit says who edited
    assert anon.delete(url, headers=editor).status_code == 204


def test_a_check_in_of_another_key_result_is_not_found(client: TestClient) -> None:
    _, o, kr = workspace(client)
    other = key_result(client, o, title="other")["id"]
    theirs = check_in(client, other, "2026-07-05", 100)["id"]
    for method, body in (("PATCH", {"value": 1}), ("DELETE", None)):
        for path in (
            f"/api/v1/key-results/{kr}/check-ins/{theirs}",
            f"/api/v1/key-results/{kr}/check-ins/999",
            f"/api/v1/key-results/999/check-ins/{theirs}",
        ):
            response = client.request(method, path, json=body)
            assert response.status_code == 404, (method, path, response.text)
    assert _days(client, other) == [("2026-07-05", 100.0, None)]
    own = client.patch(f"/api/v1/key-results/{other}/check-ins/{theirs}", json={"value": 1})
    assert own.status_code == 200, own.text


def test_a_correction_takes_only_what_a_check_in_has(client: TestClient) -> None:
    _, _, kr = workspace(client)
    made = check_in(client, kr, "2026-07-05", 100)
    url = f"/api/v1/key-results/{kr}/check-ins/{made['id']}"
    for body, field in (
        ({"author": "someone else"}, "author"),
        ({"date": None}, "date"),
        ({"note": None}, "note"),
        ({"confidence": 11}, "confidence"),
        ({"value": 2e15}, "value"),
        ({"value": "ten"}, "value"),
        ({"date": "2026-7-5"}, "date"),
    ):
        response = client.patch(url, json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in response.json()["detail"], (body, response.text)
    assert _days(client, kr) == [("2026-07-05", 100.0, None)]
