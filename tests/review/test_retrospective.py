"""Retrospective entries (SPEC section 8): either format, categories that fit it, objectives of
the cycle, editors write, viewers read, every write audited."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from factories import api_key_headers, cycle, objective, workspace


def _url(cycle_id: int, entry_id: int | None = None) -> str:
    base = f"/api/v1/cycles/{cycle_id}/retrospective"
    return base if entry_id is None else f"{base}/{entry_id}"


def test_entries_are_written_read_changed_and_deleted(client: TestClient) -> None:
    c, o, _ = workspace(client)
    first = client.post(
        _url(c),
        json={
            "format": "start_stop_continue",
            "category": "start",
            "text": "  Weekly check-ins on Mondays  ",
        },
    )
    assert first.status_code == 201, first.text
    entry = first.json()
    assert entry["text"] == "Weekly check-ins on Mondays"
    assert entry["objective_id"] is None
    assert entry["cycle_id"] == c
    assert entry["author"] == "bootstrap-admin"
    second = client.post(
        _url(c),
        json={"format": "4l", "category": "longed_for", "text": "A data person", "objective_id": o},
    ).json()
    listed = client.get(_url(c)).json()
    assert listed["total"] == 2
    assert [e["id"] for e in listed["items"]] == [
        entry["id"],
        second["id"],
    ]
    only = client.get(_url(c), params={"objective_id": o}).json()
    assert [e["id"] for e in only["items"]] == [second["id"]]

    changed = client.patch(_url(c, second["id"]), json={"category": "lacked", "objective_id": None})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["category"], changed.json()["objective_id"]) == ("lacked", None)
    assert client.delete(_url(c, entry["id"])).status_code == 204
    assert client.get(_url(c)).json()["total"] == 1
    assert client.patch(_url(c, entry["id"]), json={"text": "x"}).status_code == 404

    audit = client.get("/api/v1/audit-events", params={"entity": "retrospective_entry"}).json()
    actions = sorted((e["action"], e["entity_id"]) for e in audit["items"])
    assert actions == sorted(
        [
            ("create", entry["id"]),
            ("create", second["id"]),
            ("update", second["id"]),
            ("delete", entry["id"]),
        ]
    )
    deleted = next(e for e in audit["items"] if e["action"] == "delete")
    assert deleted["changes"]["text"] == "Weekly check-ins on Mondays"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (
            {"format": "start_stop_continue", "category": "liked", "text": "x"},
            "category",
            "`liked` is not part of the Start / Stop / Continue format",
        ),
        ({"format": "4l", "category": "stop", "text": "x"}, "category", "use `liked`"),
        ({"format": "retro", "category": "start", "text": "x"}, "format", ""),
        ({"format": "4l", "category": "liked", "text": "   "}, "text", ""),
        ({"format": "4l", "category": "liked"}, "text", ""),
        (
            {"format": "4l", "category": "liked", "text": "x", "objective_id": 999999},
            "objective_id",
            "does not exist",
        ),
        ({"format": "4l", "category": "liked", "text": "x", "mood": "good"}, "mood", ""),
    ],
)
def test_a_refused_entry_says_which_field(
    client: TestClient, body: dict[str, object], field: str, words: str
) -> None:
    c, _, _ = workspace(client)
    response = client.post(_url(c), json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    fields = {error.get("field")} | {str(e["loc"][-1]) for e in error.get("errors") or []}
    assert field in fields, error
    assert words in error["detail"]
    assert client.get(_url(c)).json()["total"] == 0


def test_an_objective_of_another_cycle_and_a_misfit_change_are_refused(
    client: TestClient,
) -> None:
    c, _, _ = workspace(client)
    other = objective(
        client, cycle(client, name="2026-Q4", start_date="2026-10-01", end_date="2026-12-31")["id"]
    )["id"]
    refused = client.post(
        _url(c), json={"format": "4l", "category": "learned", "text": "x", "objective_id": other}
    )
    assert refused.status_code == 422
    assert refused.json()["field"] == "objective_id"
    assert "belongs to another cycle" in refused.json()["detail"]
    entry = client.post(_url(c), json={"format": "4l", "category": "learned", "text": "x"}).json()
    misfit = client.patch(_url(c, entry["id"]), json={"format": "start_stop_continue"})
    assert misfit.status_code == 422
    assert misfit.json()["field"] == "category"
    assert client.patch(_url(c, entry["id"]), json={"text": None}).status_code == 422
    # An entry is found through its own cycle only.
    q4 = client.get("/api/v1/cycles").json()["items"][0]["id"]
    assert client.delete(_url(q4, entry["id"])).status_code == 404
    assert client.get(_url(999999)).status_code == 404


def test_viewers_read_editors_write(anon: TestClient, client: TestClient) -> None:
    c, _, _ = workspace(client)
    viewer, editor = api_key_headers(client, "viewer"), api_key_headers(client, "editor")
    body = {"format": "4l", "category": "liked", "text": "Short stand-ups"}
    assert anon.post(_url(c), json=body, headers=viewer).status_code == 403
    made = anon.post(_url(c), json=body, headers=editor)
    assert made.status_code == 201
    assert made.json()["author"] == "key:editor-key"
    assert anon.get(_url(c), headers=viewer).json()["total"] == 1
    entry = made.json()["id"]
    assert anon.patch(_url(c, entry), json={"text": "y"}, headers=viewer).status_code == 403
    assert anon.delete(_url(c, entry), headers=viewer).status_code == 403
    assert anon.get(_url(c)).status_code == 401
