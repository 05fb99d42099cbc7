"""Carry-over (SPEC section 8): unfinished key results continue in a later cycle, with their
objectives and mappings, relative targets measured afresh, and links both ways."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from app.core.settings import get_settings
from factories import api_key_headers, closing_quarter, key_result, objective


@pytest.fixture
def q3(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """:func:`factories.closing_quarter`, its push source's secret stored encrypted."""
    monkeypatch.setenv("KRSYNC_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()
    return closing_quarter(client)


def _carry(client: TestClient, ids: dict[str, int], **body: object) -> dict[str, object]:
    response = client.post(
        f"/api/v1/cycles/{ids['q3']}/carry-over", json={"to_cycle_id": ids["q4"], **body}
    )
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def test_unfinished_key_results_are_carried_with_objectives_and_mappings(
    client: TestClient, q3: dict[str, int]
) -> None:
    q3_demos = client.get(f"/api/v1/key-results/{q3['demos']}?as_of=2026-09-30").json()
    assert q3_demos["progress"]["target_value"] == pytest.approx(120.0)  # 100 x 1.2
    assert q3_demos["progress"]["current_value"] == 90.0
    runs_before = client.get(f"/api/v1/sync-runs?data_source_id={q3['source']}").json()["total"]

    result = _carry(client, q3)
    carried = {k["carried_from_id"]: k for k in result["key_results"]}  # type: ignore[union-attr]
    assert set(carried) == {q3["demos"], q3["pushed"], q3["content"]}  # not the done sign-ups
    assert all(k["created"] for k in carried.values())
    objectives = {o["carried_from_id"]: o["id"] for o in result["objectives"]}  # type: ignore[union-attr]
    assert set(objectives) == {q3["company"], q3["team"]}  # one copy an objective

    q4 = client.get(f"/api/v1/objectives?cycle_id={q3['q4']}&as_of=2026-10-20").json()["items"]
    by_origin = {o["carried_from_id"]: o for o in q4}
    company = by_origin[q3["company"]]
    assert (company["title"], company["owner"], company["level"]) == (
        "More pipeline",
        "ana",
        "company",
    )
    assert [kr["title"] for kr in company["key_results"]] == [
        "Grow demo requests by 20%",
        "Pushed revenue",
    ]
    demos = company["key_results"][0]
    assert demos["carried_from_id"] == q3["demos"]
    assert (demos["target_change_pct"], demos["target_value"], demos["start_value"]) == (
        20.0,
        None,
        None,
    )
    # Afresh: the Q4 baseline is the 92 days to 09-30, which held 50 + 40 = 90 → 108.
    assert demos["progress"]["target_value"] == pytest.approx(108.0)
    # The team objective stays aligned: to the copy of the key result it was aligned to.
    assert by_origin[q3["team"]]["parent_key_result_id"] == demos["id"]

    # Linked both ways.
    old = client.get(f"/api/v1/key-results/{q3['demos']}").json()
    assert old["carried_to_ids"] == [demos["id"]]
    assert client.get(f"/api/v1/objectives/{q3['company']}").json()["carried_to_ids"] == [
        company["id"]
    ]
    board = client.get(f"/api/v1/dashboard?cycle_id={q3['q3']}").json()["objectives"]
    assert [o["carried_to_ids"] for o in board] == [[company["id"]], [by_origin[q3["team"]]["id"]]]
    assert [kr["carried_to_ids"] for kr in board[0]["key_results"]] == [
        [demos["id"]],
        [],
        [company["key_results"][1]["id"]],
    ]
    review = client.get(f"/api/v1/cycles/{q3['q4']}/review").json()
    assert review["objectives"][0]["key_results"][0]["carried_from_id"] == q3["demos"]
    old_review = client.get(f"/api/v1/cycles/{q3['q3']}/review").json()
    assert old_review["objectives"][0]["carried_to_ids"] == [company["id"]]
    # The mapping came along as it was, and is backfilled as a new mapping is.
    new_pushed = company["key_results"][1]["id"]
    copies = client.get(f"/api/v1/mappings?key_result_id={new_pushed}").json()["items"]
    assert [(m["metric"], m["group"], m["scale"], m["data_source_id"]) for m in copies] == [
        ("revenue", "eu", 2.0, q3["source"])
    ]
    assert result["mappings"] == [
        {"carried_from_id": q3["mapping"], "id": copies[0]["id"], "created": True}
    ]
    runs = client.get(f"/api/v1/sync-runs?data_source_id={q3['source']}").json()
    assert runs["total"] == runs_before + 1
    assert runs["items"][0]["trigger"] == "backfill"
    # The baseline days came as check-ins saying where they came from; Q4 itself holds none.
    history = client.get(f"/api/v1/key-results/{demos['id']}/check-ins").json()["items"]
    assert sorted((h["date"], h["value"]) for h in history) == [
        ("2026-07-10", 50.0),
        ("2026-08-10", 40.0),
    ]
    assert all(f"from key result {q3['demos']}" in h["note"] for h in history)

    audit = client.get(
        "/api/v1/audit-events", params={"entity": "cycle", "entity_id": q3["q3"]}
    ).json()
    assert audit["items"][0]["action"] == "carry_over"
    assert audit["items"][0]["changes"]["to_cycle_id"] == q3["q4"]


def test_carrying_again_reuses_the_copies(client: TestClient, q3: dict[str, int]) -> None:
    first = _carry(client, q3)
    again = _carry(client, q3, key_result_ids=[q3["demos"], q3["signups"]])
    kr = {k["carried_from_id"]: k for k in again["key_results"]}  # type: ignore[union-attr]
    first_ids = {k["carried_from_id"]: k["id"] for k in first["key_results"]}  # type: ignore[union-attr]
    assert kr[q3["demos"]] == {
        "carried_from_id": q3["demos"],
        "id": first_ids[q3["demos"]],
        "created": False,
    }
    assert kr[q3["signups"]]["created"] is True  # asked for by id, so carried though done
    assert again["objectives"] == [
        {
            "carried_from_id": q3["company"],
            "id": first["objectives"][0]["id"],  # type: ignore[index]
            "created": False,
        }
    ]
    q4 = client.get(f"/api/v1/objectives?cycle_id={q3['q4']}").json()
    assert q4["total"] == 2
    assert sum(len(o["key_results"]) for o in q4["items"]) == 4


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"to_cycle_id": "q3"}, "to_cycle_id", "not into their own"),
        ({"to_cycle_id": "q2"}, "to_cycle_id", "into a later cycle"),
        ({"to_cycle_id": 999999}, "to_cycle_id", "does not exist"),
        ({"to_cycle_id": "q4", "key_result_ids": [999999]}, "key_result_ids", "not in cycle"),
        ({"to_cycle_id": "q4", "key_result_ids": []}, "key_result_ids", ""),
        ({}, "to_cycle_id", ""),
    ],
)
def test_refusals_change_nothing(
    client: TestClient, q3: dict[str, int], body: dict[str, object], field: str, words: str
) -> None:
    sent = {k: q3[v] if isinstance(v, str) else v for k, v in body.items()}
    response = client.post(f"/api/v1/cycles/{q3['q3']}/carry-over", json=sent)
    assert response.status_code == 422, response.text
    error = response.json()
    fields = {error.get("field")} | {str(e["loc"][-1]) for e in error.get("errors") or []}
    fields |= {str(e["loc"][1]) for e in error.get("errors") or [] if len(e["loc"]) > 1}
    assert field in fields, error
    assert words in error["detail"]
    assert client.get(f"/api/v1/objectives?cycle_id={q3['q4']}").json()["total"] == 0


def test_a_key_result_of_another_cycle_is_refused(client: TestClient, q3: dict[str, int]) -> None:
    other = key_result(client, objective(client, q3["q2"])["id"])["id"]
    response = client.post(
        f"/api/v1/cycles/{q3['q3']}/carry-over",
        json={"to_cycle_id": q3["q4"], "key_result_ids": [other]},
    )
    assert response.status_code == 422
    assert (
        client.post("/api/v1/cycles/999999/carry-over", json={"to_cycle_id": q3["q4"]}).status_code
        == 404
    )


def test_editors_carry_over_viewers_may_not(
    anon: TestClient, client: TestClient, q3: dict[str, int]
) -> None:
    url = f"/api/v1/cycles/{q3['q3']}/carry-over"
    body = {"to_cycle_id": q3["q4"]}
    assert anon.post(url, json=body, headers=api_key_headers(client, "viewer")).status_code == 403
    # Copying the mappings is part of carrying over, which is an editor's.
    made = anon.post(url, json=body, headers=api_key_headers(client, "editor"))
    assert made.status_code == 200, made.text
    assert len(made.json()["mappings"]) == 1
