"""Mappings: a source's metric onto a key result, checked against the connector's catalogue."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.core.db import session_scope
from app.core.errors import InvalidInput
from app.models import AuditEvent, KeyResult
from app.sources.service import check_mappings_fit
from factories import (
    api_key_headers,
    cycle,
    data_source,
    key_result,
    mapping,
    objective,
    workspace,
)


def _runs(client: TestClient, source_id: int) -> list[dict[str, Any]]:
    body = client.get("/api/v1/sync-runs", params={"data_source_id": source_id}).json()
    items: list[dict[str, Any]] = body["items"]
    return items


def _kr(client: TestClient, **over: Any) -> int:
    o = objective(client, cycle(client)["id"])
    kr_id: int = key_result(client, o["id"], **over)["id"]
    return kr_id


def _setup(client: TestClient, **kr_over: Any) -> tuple[int, int]:
    return _kr(client, **kr_over), data_source(client)["id"]


# --- CRUD -------------------------------------------------------------------------------------


def test_create_read_list_update_delete(client: TestClient) -> None:
    kr, sid = _setup(client)
    filters = [{"field": "channel", "op": "in", "value": ["Email", "Paid Social"]}]
    created = mapping(client, kr, sid, "sessions", filters=filters, group="web", scale=0.5)
    assert created["key_result_id"] == kr
    assert created["data_source_id"] == sid
    assert created["metric"] == "sessions"
    assert created["params"] == {"split_by": None}  # stored as the connector validated it
    assert created["filters"] == filters
    assert created["role"] == "value"
    assert created["group"] == "web"
    assert created["scale"] == 0.5
    assert created["backfill_pending"] is True
    assert {"id", "created_at", "updated_at"} <= created.keys()
    mid = created["id"]

    got = client.get(f"/api/v1/mappings/{mid}").json()
    assert {k: v for k, v in got.items() if k not in ("backfill_pending", "updated_at")} == {
        k: v for k, v in created.items() if k not in ("backfill_pending", "updated_at")
    }
    assert client.get("/api/v1/mappings").json()["total"] == 1

    patched = client.patch(
        f"/api/v1/mappings/{mid}",
        json={"metric": "engaged_sessions", "params": {"split_by": "country"}, "filters": []},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["metric"] == "engaged_sessions"
    assert patched.json()["params"] == {"split_by": "country"}
    assert patched.json()["filters"] == []
    assert patched.json()["backfill_pending"] is True
    assert patched.json()["group"] == "web"

    assert client.delete(f"/api/v1/mappings/{mid}").status_code == 204
    assert client.get(f"/api/v1/mappings/{mid}").status_code == 404
    assert client.delete(f"/api/v1/mappings/{mid}").status_code == 404
    assert client.patch(f"/api/v1/mappings/{mid}", json={}).status_code == 404


def test_list_filters(client: TestClient) -> None:
    _, o, kr1 = workspace(client)
    kr2 = key_result(client, o, title="Signups")["id"]
    s1 = data_source(client)["id"]
    s2 = data_source(client, name="Second")["id"]
    m1 = mapping(client, kr1, s1)["id"]
    m2 = mapping(client, kr2, s1, "signups")["id"]
    m3 = mapping(client, kr2, s2, "signups", group="b")["id"]

    def ids(**params: Any) -> list[int]:
        body = client.get("/api/v1/mappings", params=params).json()
        return [m["id"] for m in body["items"]]

    assert ids() == [m1, m2, m3]
    assert ids(key_result_id=kr2) == [m2, m3]
    assert ids(data_source_id=s1) == [m1, m2]
    assert ids(key_result_id=kr2, data_source_id=s2) == [m3]
    assert ids(key_result_id=999) == []
    assert ids(limit=1, offset=1) == [m2]


def test_writes_are_audited(client: TestClient, db_url: str) -> None:
    kr, sid = _setup(client)
    mid = mapping(client, kr, sid)["id"]
    client.patch(f"/api/v1/mappings/{mid}", json={"scale": 2})
    client.delete(f"/api/v1/mappings/{mid}")
    engine = create_engine(db_url)
    with Session(engine) as s:
        events = s.execute(
            select(AuditEvent.action, AuditEvent.changes)
            .where(AuditEvent.entity == "mapping")
            .order_by(AuditEvent.id)
        ).all()
    engine.dispose()
    assert [a for a, _ in events] == ["create", "update", "delete"]
    assert events[0][1]["metric"] == "sessions"
    assert events[1][1] == {"scale": [1.0, 2.0]}


# --- backfill ---------------------------------------------------------------------------------


def test_a_change_schedules_a_backfill_and_a_no_op_does_not(client: TestClient) -> None:
    kr, sid = _setup(client)
    mid = mapping(client, kr, sid)["id"]
    assert [r["trigger"] for r in _runs(client, sid)] == ["backfill"]

    same = client.patch(f"/api/v1/mappings/{mid}", json={"metric": "sessions", "scale": 1})
    assert same.status_code == 200
    assert len(_runs(client, sid)) == 1

    changed = client.patch(f"/api/v1/mappings/{mid}", json={"group": "all"})
    assert changed.json()["backfill_pending"] is True
    assert [r["trigger"] for r in _runs(client, sid)] == ["backfill", "backfill"]


def test_a_disabled_source_backfills_once_enabled(client: TestClient) -> None:
    kr, _ = _setup(client)
    sid = data_source(client, name="Off", enabled=False)["id"]
    created = mapping(client, kr, sid)
    assert created["backfill_pending"] is True
    assert _runs(client, sid) == []
    client.patch(f"/api/v1/data-sources/{sid}", json={"enabled": True})
    assert [r["trigger"] for r in _runs(client, sid)] == ["backfill"]


def test_check_mappings_fit(client: TestClient) -> None:
    kr, sid = _setup(client)
    mapping(client, kr, sid, "sessions")
    with session_scope() as session:
        row = session.get(KeyResult, kr)
        assert row is not None
        check_mappings_fit(session, row)
        row.aggregation = "ratio"
        with pytest.raises(InvalidInput, match="numerator") as refused:
            check_mappings_fit(session, row)
        assert refused.value.field == "aggregation"
        row.aggregation = "sum"
        row.kind = "rollup"
        with pytest.raises(InvalidInput, match="roll-up"):
            check_mappings_fit(session, row)
        session.rollback()


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("over", "field", "needles"),
    [
        ({"metric": "sesions"}, "metric", ["no metric `sesions`", "`sessions`"]),
        ({"metric": "sess\x00ions"}, "metric", ["NUL"]),
        ({"params": {"nope": 1}}, "params.nope", ["no param `nope`", "`split_by`"]),
        ({"params": {"split_by": "platform"}}, "params.split_by", ["channel"]),
        (
            {"filters": [{"field": "platform", "op": "eq", "value": "x"}]},
            "filters[0].field",
            ["can't be filtered on `platform`", "`channel`"],
        ),
        (
            {"filters": [{"field": "channel", "op": "gt", "value": "Email"}]},
            "filters[0].op",
            ["doesn't take `gt`", "`eq`"],
        ),
        (
            {"filters": [{"field": "channel", "op": "between", "value": "x"}]},
            "filters[0].op",
            ["eq"],
        ),
        (
            {"filters": [{"field": "channel", "op": "in", "value": "Email"}]},
            "filters[0]",
            ["list"],
        ),
        ({"filters": [{"field": "channel", "op": "eq"}]}, "filters[0].value", ["required"]),
        ({"metric": "bounce_rate"}, "aggregation", ["avg", "ratio", "can't be summed"]),
        ({"scale": 0}, "scale", ["0"]),
        ({"role": "total"}, "role", ["value"]),
        ({"group": "x" * 201}, "group", ["200"]),
        ({"params": {"split_by": "a\x00b"}}, "params", ["NUL"]),
        ({"key_result_id": 999}, "key_result_id", ["key result 999 does not exist"]),
        ({"data_source_id": 999}, "data_source_id", ["data source 999 does not exist"]),
        ({"data_source_id": 0}, "data_source_id", ["greater than"]),
    ],
)
def test_bad_mappings_are_422(
    client: TestClient, over: dict[str, Any], field: str, needles: list[str]
) -> None:
    kr, sid = _setup(client)
    body = {"key_result_id": kr, "data_source_id": sid, "metric": "sessions"} | over
    response = client.post("/api/v1/mappings", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field, response.json()
    for needle in needles:
        assert needle in response.json()["detail"]
    assert client.get("/api/v1/mappings").json()["total"] == 0


def test_non_finite_values_are_422(client: TestClient) -> None:
    kr, sid = _setup(client)
    for raw in (
        f'{{"key_result_id": {kr}, "data_source_id": {sid}, "metric": "sessions", '
        '"scale": Infinity}',
        f'{{"key_result_id": {kr}, "data_source_id": {sid}, "metric": "sessions", '
        '"filters": [{"field": "channel", "op": "eq", "value": NaN}]}',
    ):
        response = client.post(
            "/api/v1/mappings", content=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422, response.text


def test_a_level_metric_fits_an_avg_key_result(client: TestClient) -> None:
    kr, sid = _setup(client, aggregation="avg", direction="at_most", target_value=40)
    assert mapping(client, kr, sid, "bounce_rate")["metric"] == "bounce_rate"


def test_a_rollup_takes_no_mapping(client: TestClient) -> None:
    kr, sid = _setup(client, kind="rollup", target_value=None)
    response = client.post(
        "/api/v1/mappings", json={"key_result_id": kr, "data_source_id": sid, "metric": "sessions"}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "key_result_id"
    assert "roll-up" in response.json()["detail"]


def test_a_milestone_takes_a_mapping(client: TestClient) -> None:
    kr, sid = _setup(client, kind="milestone", target_value=None, aggregation="max")
    assert mapping(client, kr, sid, "signups")["role"] == "value"


def test_ratio_roles(client: TestClient) -> None:
    kr, sid = _setup(client, aggregation="ratio", target_value=0.02, unit="%")
    body = {"key_result_id": kr, "data_source_id": sid, "metric": "signups"}
    wrong = client.post("/api/v1/mappings", json=body)
    assert wrong.status_code == 422
    assert wrong.json()["field"] == "role"
    assert "`numerator`" in wrong.json()["detail"]
    assert "`denominator`" in wrong.json()["detail"]

    assert mapping(client, kr, sid, "signups", role="numerator")["role"] == "numerator"
    assert mapping(client, kr, sid, "sessions", role="denominator")["role"] == "denominator"
    rate = client.post(
        "/api/v1/mappings", json=body | {"metric": "bounce_rate", "role": "numerator", "group": "b"}
    )
    assert rate.status_code == 422
    assert rate.json()["field"] == "aggregation"
    assert "ratio" in rate.json()["detail"]

    other = _kr(client)
    not_ratio = client.post(
        "/api/v1/mappings",
        json={
            "key_result_id": other,
            "data_source_id": sid,
            "metric": "signups",
            "role": "numerator",
        },
    )
    assert not_ratio.status_code == 422
    assert not_ratio.json()["field"] == "role"
    assert "use role `value`" in not_ratio.json()["detail"]


def test_one_mapping_per_role_and_group(client: TestClient) -> None:
    kr, sid = _setup(client)
    first = mapping(client, kr, sid, group="linkedin")
    body = {"key_result_id": kr, "data_source_id": sid, "metric": "new_followers"}
    clash = client.post("/api/v1/mappings", json=body | {"group": "linkedin"})
    assert clash.status_code == 409
    assert f"mapping {first['id']}" in clash.json()["detail"]
    second = mapping(client, kr, sid, "new_followers", group="x")

    moved = client.patch(f"/api/v1/mappings/{second['id']}", json={"group": "linkedin"})
    assert moved.status_code == 409
    kept = client.patch(f"/api/v1/mappings/{first['id']}", json={"group": "linkedin"})
    assert kept.status_code == 200


def test_patch_rules(client: TestClient) -> None:
    kr, sid = _setup(client)
    mid = mapping(client, kr, sid)["id"]
    url = f"/api/v1/mappings/{mid}"
    other_kr = _kr(client)
    moved = client.patch(url, json={"key_result_id": other_kr})
    assert moved.status_code == 422
    assert moved.json()["field"] == "key_result_id"
    assert client.patch(url, json={"key_result_id": kr}).status_code == 200

    for name in ("data_source_id", "metric", "params", "filters", "role", "group", "scale"):
        response = client.patch(url, json={name: None})
        assert response.status_code == 422, name
        assert response.json()["field"] == name

    bad = client.patch(url, json={"filters": [{"field": "country", "op": "lt", "value": "US"}]})
    assert bad.status_code == 422
    assert bad.json()["field"] == "filters[0].op"
    nowhere = client.patch(url, json={"data_source_id": 999})
    assert nowhere.status_code == 422
    assert nowhere.json()["field"] == "data_source_id"
    summed = client.patch(url, json={"metric": "engagement_rate"})
    assert summed.status_code == 422
    assert summed.json()["field"] == "aggregation"
    assert client.get(url).json()["metric"] == "sessions"

    other_source = data_source(client, name="Other")["id"]
    switched = client.patch(url, json={"data_source_id": other_source})
    assert switched.status_code == 200
    assert switched.json()["data_source_id"] == other_source


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_viewers_read_and_admins_write(client: TestClient, anon: TestClient, role: str) -> None:
    kr, sid = _setup(client)
    mid = mapping(client, kr, sid)["id"]
    headers = api_key_headers(client, role)
    assert anon.get("/api/v1/mappings", headers=headers).json()["total"] == 1
    assert anon.get(f"/api/v1/mappings/{mid}", headers=headers).status_code == 200
    runs = anon.get("/api/v1/sync-runs", headers=headers).json()
    assert runs["total"] == 1
    run_id = runs["items"][0]["id"]
    assert anon.get(f"/api/v1/sync-runs/{run_id}", headers=headers).status_code == 200

    body = {"key_result_id": kr, "data_source_id": sid, "metric": "signups", "group": "g"}
    for response in (
        anon.post("/api/v1/mappings", json=body, headers=headers),
        anon.patch(f"/api/v1/mappings/{mid}", json={"scale": 2}, headers=headers),
        anon.delete(f"/api/v1/mappings/{mid}", headers=headers),
        anon.post(
            f"/api/v1/mappings/{mid}/preview",
            json={"from": "2026-07-01", "to": "2026-07-02"},
            headers=headers,
        ),
    ):
        assert response.status_code == 403, response.request.url
    assert anon.get("/api/v1/mappings").status_code == 401
    assert anon.get("/api/v1/sync-runs").status_code == 401


# --- preview and sync runs --------------------------------------------------------------------


def test_preview(client: TestClient) -> None:
    kr, sid = _setup(client)
    mid = mapping(client, kr, sid)["id"]
    url = f"/api/v1/mappings/{mid}/preview"
    response = client.post(url, json={"from": "2026-07-01", "to": "2026-07-03"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mapping_id"] == mid
    assert (body["from"], body["to"]) == ("2026-07-01", "2026-07-03")
    assert isinstance(body["values"], list)
    for value in body["values"]:
        assert set(value) == {"date", "group", "role", "value"}

    assert client.post(url, json={"from": "2026-07-02", "to": "2026-07-01"}).status_code == 422
    too_long = client.post(url, json={"from": "2025-06-30", "to": "2026-07-01"})
    assert too_long.status_code == 422
    assert "366" in too_long.json()["detail"]
    assert client.post(url, json={"from": "2026-07-01"}).status_code == 422
    assert client.post(url, json={}).status_code == 422
    missing = client.post(
        "/api/v1/mappings/999/preview", json={"from": "2026-07-01", "to": "2026-07-01"}
    )
    assert missing.status_code == 404


def test_sync_run_history(client: TestClient) -> None:
    kr, sid = _setup(client)
    other = data_source(client, name="Other")["id"]
    mapping(client, kr, sid)
    manual = client.post(f"/api/v1/data-sources/{other}/sync").json()

    runs = client.get("/api/v1/sync-runs").json()
    assert runs["total"] == 2
    assert runs["items"][0]["id"] == manual["id"]  # newest first
    expected = {
        "id", "data_source_id", "trigger", "status", "window_from", "window_to", "started_at",
        "finished_at", "api_calls", "observations_written", "warnings", "details", "error",
    }  # fmt: skip
    assert set(runs["items"][0]) == expected
    only = client.get("/api/v1/sync-runs", params={"data_source_id": other}).json()
    assert [r["id"] for r in only["items"]] == [manual["id"]]
    status = runs["items"][0]["status"]
    assert manual["id"] in [
        r["id"] for r in client.get("/api/v1/sync-runs", params={"status": status}).json()["items"]
    ]
    assert client.get("/api/v1/sync-runs", params={"status": "lost"}).status_code == 422
    assert client.get("/api/v1/sync-runs/999").status_code == 404
