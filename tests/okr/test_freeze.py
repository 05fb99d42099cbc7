"""Closing a cycle freezes its figures (SPEC section 8); figures worked out by hand.

2026-Q3 (07-01..09-30, 92 days) is over by the time the tests run, so the close reads it on its
last day: expected progress 1.

- "1,000 sign-ups" (sum, increase, target 1000) fed by a push source: 100 on 07-01 and 200 on
  07-02 → 300 → progress 0.3, score 0.3, off track; forecast 300 * 92 / 92 = 300.
- "40 press mentions" (sum, target 40), checked in by hand: 20 on 07-15 → 0.5, score 0.5.
- The objective: (0.3 + 0.5) / 2 = 0.4, off track.

After the close, a push of 500 on 07-03 (a sync run of its own) and a check-in of 4 on 08-01
would make them 800 → 0.8, 24 → 0.6 and (0.8 + 0.6) / 2 = 0.7: no read of the closed cycle
shows that until it is reopened.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.db import session_scope
from app.core.settings import get_settings
from app.models import NotificationDelivery, NotificationEvent
from factories import api_key_headers, check_in, create, cycle, key_result, mapping, objective

SECRET = "freeze-push-secret-0123456789abcdef"


@pytest.fixture(autouse=True)
def secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRSYNC_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()


@dataclass(frozen=True)
class Seeded:
    cycle: int
    objective: int
    signups: int
    press: int
    source: int


def push(anon: TestClient, source_id: int, items: list[dict[str, Any]]) -> dict[str, Any]:
    body = json.dumps(items).encode()
    stamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    response = anon.post(
        f"/api/v1/push/{source_id}",
        content=body,
        headers={
            "X-Krsync-Timestamp": stamp,
            "X-Krsync-Signature": f"sha256={digest}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


def seed(client: TestClient, anon: TestClient) -> Seeded:
    c = cycle(client)["id"]
    o = objective(client, c, title="Grow the list", team="Growth", owner="ana")["id"]
    signups = key_result(client, o, title="1,000 sign-ups", target_value=1000, owner="ana")["id"]
    press = key_result(client, o, title="40 press mentions", target_value=40, owner="cy")["id"]
    source = create(
        client,
        "data-sources",
        name="Pushed sign-ups",
        connector="push",
        config={},
        credentials={"secret": SECRET},
    )["id"]
    mapping(client, signups, source, metric="signups")
    push(
        anon,
        source,
        [
            {"date": "2026-07-01", "metric": "signups", "value": 100},
            {"date": "2026-07-02", "metric": "signups", "value": 200},
        ],
    )
    check_in(client, press, "2026-07-15", 20)
    return Seeded(c, o, signups, press, source)


def after_the_close(client: TestClient, anon: TestClient, s: Seeded, pushed: float = 500) -> None:
    push(anon, s.source, [{"date": "2026-07-03", "metric": "signups", "value": pushed}])
    check_in(client, s.press, "2026-08-01", 4)


def reads(client: TestClient, s: Seeded) -> dict[str, Any]:
    """Every read of the cycle's figures, with an `as_of` inside the cycle too."""
    out: dict[str, Any] = {}
    for as_of in ("", "?as_of=2026-08-15"):
        more = as_of.replace("?", "&")
        out[f"kr{as_of}"] = client.get(f"/api/v1/key-results/{s.signups}{as_of}").json()
        out[f"press{as_of}"] = client.get(f"/api/v1/key-results/{s.press}{as_of}").json()
        out[f"objective{as_of}"] = client.get(f"/api/v1/objectives/{s.objective}{as_of}").json()
        out[f"dashboard{as_of}"] = client.get(f"/api/v1/dashboard?cycle_id={s.cycle}{more}").json()
        out[f"list{as_of}"] = client.get(
            f"/api/v1/key-results?objective_id={s.objective}{more}"
        ).json()
    return out


def test_closing_freezes_every_read_whatever_syncs_and_check_ins_follow(
    client: TestClient, anon: TestClient
) -> None:
    s = seed(client, anon)
    closed = client.post(f"/api/v1/cycles/{s.cycle}/close")
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    assert closed.json()["closed_at"] is not None
    assert client.get(f"/api/v1/cycles/{s.cycle}").json()["status"] == "closed"

    before = reads(client, s)
    kr = before["kr"]["progress"]
    assert kr["frozen"] is True
    assert (kr["current_value"], kr["progress"], kr["score"], kr["status"]) == (
        300.0,
        0.3,
        0.3,
        "off_track",
    )
    assert (kr["as_of"], kr["expected_progress"], kr["forecast_value"]) == (
        "2026-09-30",
        1.0,
        300.0,
    )
    runs = client.get(f"/api/v1/sync-runs?data_source_id={s.source}").json()["items"]
    assert kr["sync_run_ids"] == [runs[0]["id"]]
    press = before["press"]["progress"]
    assert (press["current_value"], press["progress"], press["frozen"]) == (20.0, 0.5, True)
    assert press["sync_run_ids"] == [], "a check-in has no sync run"
    obj = before["objective"]["progress"]
    assert (obj["progress"], obj["score"], obj["status"], obj["frozen"]) == (
        0.4,
        0.4,
        "off_track",
        True,
    )
    dashboard = before["dashboard"]
    assert dashboard["frozen"] is True
    assert dashboard["cycle"]["status"] == "closed"
    assert dashboard["expected_progress"] == 1.0
    assert dashboard["objectives"][0]["progress"]["progress"] == 0.4
    # The same frozen figures whatever day is asked for.
    assert before["kr?as_of=2026-08-15"]["progress"] == kr

    after_the_close(client, anon, s)
    assert reads(client, s) == before

    series = client.get(f"/api/v1/key-results/{s.signups}/series").json()
    assert series["frozen"] is True
    assert [(p["date"], p["value"], p["frozen"]) for p in series["points"]] == [
        ("2026-07-01", 100.0, True),
        ("2026-07-02", 200.0, True),
        ("2026-07-03", 500.0, False),
    ]

    reopened = client.post(f"/api/v1/cycles/{s.cycle}/reopen")
    assert reopened.status_code == 200, reopened.text
    assert (reopened.json()["status"], reopened.json()["closed_at"]) == ("open", None)
    live = reads(client, s)
    kr = live["kr"]["progress"]
    assert (kr["current_value"], kr["progress"], kr["frozen"], kr["sync_run_ids"]) == (
        800.0,
        0.8,
        False,
        None,
    )
    press = live["press"]["progress"]
    assert (press["current_value"], press["progress"]) == (24.0, 0.6)
    obj = live["objective"]["progress"]
    assert (obj["progress"], obj["score"], obj["frozen"]) == (pytest.approx(0.7), 0.7, False)
    assert live["dashboard"]["frozen"] is False
    series = client.get(f"/api/v1/key-results/{s.signups}/series").json()
    assert series["frozen"] is False
    assert not any(p["frozen"] for p in series["points"])

    # Closing again freezes the figures as they now stand.
    assert client.post(f"/api/v1/cycles/{s.cycle}/close").status_code == 200
    after_the_close(client, anon, s, pushed=600)  # 900 → 0.9 live, had it been open
    assert client.get(f"/api/v1/key-results/{s.signups}").json()["progress"]["progress"] == 0.8


def test_closing_twice_and_reopening_an_open_cycle_conflict(client: TestClient) -> None:
    c = cycle(client)["id"]
    again = client.post(f"/api/v1/cycles/{c}/reopen")
    assert again.status_code == 409
    assert "open" in again.json()["detail"]
    assert client.post(f"/api/v1/cycles/{c}/close").status_code == 200
    twice = client.post(f"/api/v1/cycles/{c}/close")
    assert twice.status_code == 409
    assert "already closed" in twice.json()["detail"]
    assert client.post("/api/v1/cycles/999999/close").status_code == 404


def test_close_is_an_editors_and_reopen_an_admins(client: TestClient, anon: TestClient) -> None:
    c = cycle(client)["id"]
    viewer = api_key_headers(client, "viewer")
    editor = api_key_headers(client, "editor")
    assert anon.post(f"/api/v1/cycles/{c}/close").status_code == 401
    assert anon.post(f"/api/v1/cycles/{c}/close", headers=viewer).status_code == 403
    assert anon.post(f"/api/v1/cycles/{c}/close", headers=editor).status_code == 200
    assert anon.post(f"/api/v1/cycles/{c}/reopen", headers=editor).status_code == 403
    assert client.get(f"/api/v1/cycles/{c}").json()["status"] == "closed"
    assert client.post(f"/api/v1/cycles/{c}/reopen").status_code == 200
    events = client.get(f"/api/v1/audit-events?entity=cycle&entity_id={c}").json()["items"]
    assert sorted(e["action"] for e in events) == ["close", "create", "reopen"]
    close = next(e for e in events if e["action"] == "close")
    assert close["actor"] == "key:editor-key"
    assert close["changes"]["as_of"] == "2026-09-30"


def test_a_final_score_is_given_by_an_editor_once_the_cycle_is_closed(
    client: TestClient, anon: TestClient
) -> None:
    s = seed(client, anon)
    path = f"/api/v1/key-results/{s.signups}"
    early = client.patch(path, json={"final_score": 0.4})
    assert early.status_code == 409
    assert early.json()["field"] == "final_score"
    assert "once the cycle is closed" in early.json()["detail"]
    assert client.patch(path, json={"final_score_note": "x"}).status_code == 409

    client.post(f"/api/v1/cycles/{s.cycle}/close")
    viewer = api_key_headers(client, "viewer")
    editor = api_key_headers(client, "editor")
    assert anon.patch(path, json={"final_score": 0.4}, headers=viewer).status_code == 403
    for bad in (1.1, -0.1, "NaN", "high"):
        refused = anon.patch(path, json={"final_score": bad}, headers=editor)
        assert refused.status_code == 422, bad
    graded = anon.patch(
        path,
        json={"final_score": 0.4, "final_score_note": "late launch; the list grew anyway"},
        headers=editor,
    )
    assert graded.status_code == 200, graded.text
    body = graded.json()
    assert (body["final_score"], body["final_score_note"]) == (
        0.4,
        "late launch; the list grew anyway",
    )
    assert body["progress"]["score"] == 0.3, "the computed score stays beside it"
    kr = client.get(f"/api/v1/dashboard?cycle_id={s.cycle}").json()["objectives"][0]["key_results"][
        0
    ]
    assert (kr["final_score"], kr["progress"]["score"]) == (0.4, 0.3)
    cleared = client.patch(path, json={"final_score": None, "final_score_note": None}).json()
    assert (cleared["final_score"], cleared["final_score_note"]) == (None, "")


def test_the_review_shows_frozen_figures_and_final_scores(
    client: TestClient, anon: TestClient
) -> None:
    s = seed(client, anon)
    client.post(f"/api/v1/cycles/{s.cycle}/close")
    client.patch(f"/api/v1/key-results/{s.signups}", json={"final_score": 0.4})
    after_the_close(client, anon, s)

    review = client.get(f"/api/v1/cycles/{s.cycle}/review").json()
    text = json.dumps(review)
    assert '"frozen": true' in text
    krs = {k["title"]: k for o in review["objectives"] for k in o["key_results"]}
    signups = krs["1,000 sign-ups"]
    assert (signups["current_value"], signups["score"], signups["final_score"]) == (
        300.0,
        0.3,
        0.4,
    )
    assert krs["40 press mentions"]["current_value"] == 20.0

    assert signups["frozen"] is True
    csv_text = client.get(f"/api/v1/cycles/{s.cycle}/review?format=csv").text
    rows = {r["key_result"]: r for r in csv.DictReader(io.StringIO(csv_text))}
    assert (
        rows["1,000 sign-ups"]["current_value"],
        rows["1,000 sign-ups"]["score"],
        rows["1,000 sign-ups"]["final_score"],
    ) == ("300.0", "0.3", "0.4")
    assert rows["40 press mentions"]["current_value"] == "20.0"
    assert rows["40 press mentions"]["objective_score"] == "0.4"


def test_cycle_closed_lands_in_the_outbox_of_a_channel_that_wants_it(
    client: TestClient, anon: TestClient
) -> None:
    s = seed(client, anon)
    created = client.post(
        "/api/v1/notification-channels",
        json={
            "name": "Growth mail",
            "kind": "email",
            "config": {"to": ["growth@example.com"]},
            "events": ["cycle.closed"],
            "scope": {"team": "Growth"},
        },
    )
    assert created.status_code == 201, created.text
    client.post(
        "/api/v1/notification-channels",
        json={
            "name": "Brand mail",
            "kind": "email",
            "config": {"to": ["brand@example.com"]},
            "events": ["cycle.closed"],
            "scope": {"team": "Brand"},
        },
    )
    client.post(f"/api/v1/cycles/{s.cycle}/close")
    with session_scope() as db:
        events = db.scalars(select(NotificationEvent).order_by(NotificationEvent.id)).all()
        bodies = [json.loads(e.body) for e in events]
        wanted_by = db.scalars(select(NotificationDelivery.channel_id)).all()
    assert [b["type"] for b in bodies] == ["cycle.closed"]
    data = bodies[0]["data"]
    assert (data["cycle"]["id"], data["cycle"]["status"], data["as_of"]) == (
        s.cycle,
        "closed",
        "2026-09-30",
    )
    assert [(o["title"], o["progress"], o["status"]) for o in data["objectives"]] == [
        ("Grow the list", 0.4, "off_track")
    ]
    assert wanted_by == [created.json()["id"]], "the Brand channel hears nothing of Growth"

    # SPEC section 8: reopening raises `cycle.closed` too, saying the cycle is open again.
    client.post(f"/api/v1/cycles/{s.cycle}/reopen")
    with session_scope() as db:
        events = db.scalars(select(NotificationEvent).order_by(NotificationEvent.id)).all()
        reopened = [json.loads(e.body) for e in events]
    assert [(b["type"], b["data"]["cycle"]["status"]) for b in reopened] == [
        ("cycle.closed", "closed"),
        ("cycle.closed", "open"),
    ]
