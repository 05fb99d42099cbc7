"""The events of SPEC section 7, evaluated and written to the outbox with their cause.

One change gives one event, never one per evaluation: re-evaluating (the hourly job, another
check-in, `krsync notify evaluate`) finds what was announced and says nothing; a status that
flaps within a day sends one event; `key_result.done` goes once; a failing source raises one
`source.failing`, one `source.paused`, then `source.recovered`; reminders go once per 7-day
gap; the Monday digest once per week, whoever runs the evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from notify.receivers import channel, dispatch, receiver
from sqlalchemy import select
from standardwebhooks import Webhook
from sync_factories import make_mapping, make_source, sync_source
from typer.testing import CliRunner

from app.cli import cli
from app.core import clock
from app.core.db import session_scope
from app.core.settings import get_settings
from app.models import (
    DataSource,
    KeyResultEventState,
    NotificationChannel,
    NotificationDelivery,
    NotificationEvent,
)
from app.notify.evaluate import FLAP_WINDOW, evaluate_all
from connectors.base import ConnectorAuthError
from connectors.demo import DemoConnector
from tests.sync.test_source_health import _demo_source, _platform

TODAY = date(2026, 8, 16)
PAUSE_AFTER = 3
BLACKHOLE = "http://127.0.0.1:9/hook"  # deliveries stay pending: these tests read the outbox


class Now:
    """The clock every part of krsync reads (`app.core.clock.utcnow`), moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> Now:
    holder = Now(datetime(TODAY.year, TODAY.month, TODAY.day, 12, tzinfo=UTC))
    monkeypatch.setattr(clock, "utcnow", holder)
    return holder


@pytest.fixture
def pause_after(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KRSYNC_PAUSE_AFTER_FAILURES", str(PAUSE_AFTER))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _post(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _okr(
    client: TestClient,
    *,
    team: str = "Growth",
    owner: str = "ana",
    cycle: tuple[date, date] = (date(2026, 7, 1), date(2026, 9, 30)),
) -> dict[str, int]:
    """A manual key result, 0 → 100 over the cycle, its progress the last check-in's value."""
    c = _post(
        client,
        "/api/v1/cycles",
        {"name": f"Q {team}", "start_date": str(cycle[0]), "end_date": str(cycle[1])},
    )
    o = _post(
        client,
        "/api/v1/objectives",
        {"title": f"Grow {team}", "cycle_id": c["id"], "team": team, "owner": "lead"},
    )
    kr = _post(
        client,
        "/api/v1/key-results",
        {
            "objective_id": o["id"],
            "title": f"Signups {team}",
            "owner": owner,
            "unit": "signups",
            "start_value": 0,
            "target_value": 100,
            "aggregation": "last",
        },
    )
    return {"cycle": c["id"], "objective": o["id"], "kr": kr["id"]}


def _check_in(client: TestClient, kr: int, value: float, day: date = TODAY) -> int:
    return int(
        _post(client, f"/api/v1/key-results/{kr}/check-ins", {"date": str(day), "value": value})[
            "id"
        ]
    )


def _edit(client: TestClient, kr: int, check_in: int, value: float) -> None:
    response = client.patch(f"/api/v1/key-results/{kr}/check-ins/{check_in}", json={"value": value})
    assert response.status_code == 200, response.text


def _events(type_: str | None = None) -> list[dict[str, Any]]:
    """Event bodies in the outbox, oldest first, with their scope."""
    with session_scope() as s:
        query = select(NotificationEvent).order_by(NotificationEvent.id)
        if type_ is not None:
            query = query.where(NotificationEvent.type == type_)
        return [{**json.loads(e.body), "scope": e.scope} for e in s.scalars(query)]


def _statuses() -> list[tuple[str, str]]:
    return [
        (e["data"]["old_status"], e["data"]["new_status"])
        for e in _events("key_result.status_changed")
    ]


def test_krsync_timezone_must_be_a_real_zone() -> None:
    from pydantic import ValidationError

    from app.core.settings import Settings

    assert Settings(timezone="Europe/Paris").timezone == "Europe/Paris"
    with pytest.raises(ValidationError, match="KRSYNC_TIMEZONE must be an IANA time zone"):
        Settings(timezone="Mars/Olympus_Mons")


# --- key results -------------------------------------------------------------------------------


def test_a_check_in_that_moves_a_key_result_off_track_raises_one_event_with_its_data(
    client: TestClient, now: Now
) -> None:
    channel(client, "webhook", config={"url": BLACKHOLE})
    ids = _okr(client)
    kr = ids["kr"]
    assert _events() == []  # a new key result's first status is recorded, not announced
    first = _check_in(client, kr, 50)  # half way, half the cycle gone: on track
    assert _statuses() == [("no_data", "on_track")]

    _edit(client, kr, first, 10)  # 10% where ~50% is expected
    assert _statuses() == [("no_data", "on_track"), ("on_track", "off_track")]
    event = _events("key_result.status_changed")[-1]
    data = event["data"]
    assert data["key_result"] == {
        "id": kr,
        "title": "Signups Growth",
        "owner": "ana",
        "unit": "signups",
        "kind": "metric",
    }
    assert data["objective"] == {
        "id": ids["objective"],
        "title": "Grow Growth",
        "team": "Growth",
        "owner": "lead",
    }
    assert data["progress"]["progress"] == pytest.approx(0.1)
    assert data["progress"]["current_value"] == 10
    assert data["progress"]["target_value"] == 100
    assert 0.45 < data["progress"]["expected_progress"] < 0.55
    assert set(data["forecast"]) == {"value", "progress"}
    assert event["scope"] == {
        "cycle_id": ids["cycle"],
        "objective_id": ids["objective"],
        "team": "Growth",
        "owner": ["ana", "lead"],
    }

    # Nothing moved since: no evaluation, however often or by whom, says it again.
    client.post(f"/api/v1/key-results/{kr}/check-ins", json={"date": str(TODAY), "note": "hm"})
    client.patch(f"/api/v1/key-results/{kr}", json={"title": "Signups Growth"})
    evaluate_all()
    evaluate_all()
    result = CliRunner().invoke(cli, ["notify", "evaluate"])
    assert result.exit_code == 0, result.output
    assert "1 key results evaluated" in result.output
    assert "0 status change(s)" in result.output
    assert len(_events("key_result.status_changed")) == 2


def test_a_status_flapping_within_a_day_sends_one_event_and_the_net_change_after(
    client: TestClient, now: Now
) -> None:
    channel(client, "webhook", config={"url": BLACKHOLE})
    kr = _okr(client)["kr"]
    ci = _check_in(client, kr, 50)
    before = len(_events())
    for value in (10, 50, 10, 50):  # off, on, off, on: all within minutes
        now.advance(minutes=10)
        _edit(client, kr, ci, value)
    assert _statuses()[before:] == [("on_track", "off_track")]
    evaluate_all()  # within the day the return is still held
    assert _statuses()[before:] == [("on_track", "off_track")]

    # Still on track once the day is over: the net change goes out, once.
    now.advance(seconds=FLAP_WINDOW.total_seconds())
    evaluate_all()
    evaluate_all()
    assert _statuses()[before:] == [("on_track", "off_track"), ("off_track", "on_track")]


def test_a_flap_that_ends_where_it_was_announced_sends_nothing_more(
    client: TestClient, now: Now
) -> None:
    channel(client, "webhook", config={"url": BLACKHOLE})
    kr = _okr(client)["kr"]
    ci = _check_in(client, kr, 50)
    for value in (10, 50, 10):
        _edit(client, kr, ci, value)
    now.advance(days=1, hours=1)
    evaluate_all()
    assert _statuses() == [("no_data", "on_track"), ("on_track", "off_track")]


def test_a_move_to_a_third_status_is_announced_at_once(client: TestClient, now: Now) -> None:
    channel(client, "webhook", config={"url": BLACKHOLE})
    kr = _okr(client)["kr"]
    ci = _check_in(client, kr, 50)
    _edit(client, kr, ci, 35)  # at risk
    _edit(client, kr, ci, 10)  # off track: not a return, so not held
    assert _statuses()[1:] == [("on_track", "at_risk"), ("at_risk", "off_track")]


def test_a_check_in_moves_the_roll_up_above_its_key_result_too(
    client: TestClient, now: Now
) -> None:
    channel(client, "webhook", config={"url": BLACKHOLE})
    top = _okr(client, team="Company")
    rollup = _post(
        client,
        "/api/v1/key-results",
        {"objective_id": top["objective"], "title": "Teams on track", "kind": "rollup"},
    )
    team = _post(
        client,
        "/api/v1/objectives",
        {"title": "Team", "cycle_id": top["cycle"], "parent_key_result_id": rollup["id"]},
    )
    kr = _post(
        client,
        "/api/v1/key-results",
        {
            "objective_id": team["id"],
            "title": "Leads",
            "start_value": 0,
            "target_value": 100,
            "aggregation": "last",
        },
    )
    _check_in(client, kr["id"], 50)
    moved = {
        e["data"]["key_result"]["id"]: e["data"]["new_status"]
        for e in _events("key_result.status_changed")
    }
    assert moved == {kr["id"]: "on_track", rollup["id"]: "on_track"}


def test_key_result_done_goes_once(client: TestClient, now: Now) -> None:
    channel(client, "webhook", config={"url": BLACKHOLE})
    kr = _okr(client)["kr"]
    ci = _check_in(client, kr, 100)
    [done] = _events("key_result.done")
    assert done["data"]["new_status"] == "done"
    assert done["data"]["key_result"]["id"] == kr
    _check_in(client, kr, 120, TODAY)
    evaluate_all()
    # Falls back, a day later done again: a status change, but done was said already.
    now.advance(days=2)
    _edit(client, kr, ci, 60)
    _check_in(client, kr, 60, TODAY + timedelta(days=2))
    now.advance(days=2)
    _check_in(client, kr, 100, TODAY + timedelta(days=4))
    assert _statuses()[-1][1] == "done"
    assert len(_events("key_result.done")) == 1


def test_the_calendar_moves_a_status_and_the_evaluation_announces_it_once(
    client: TestClient, now: Now
) -> None:
    channel(client, "webhook", config={"url": BLACKHOLE})
    kr = _okr(client)["kr"]
    _check_in(client, kr, 50)
    now.advance(days=30)  # 50% where ~85% is expected by now, with no new figure
    evaluate_all()
    evaluate_all()
    assert _statuses() == [("no_data", "on_track"), ("on_track", "off_track")]


def test_events_reach_only_the_channels_whose_events_and_scope_match(
    client: TestClient, now: Now
) -> None:
    growth = channel(client, "webhook", name="growth", config={"url": BLACKHOLE})
    client.patch(
        f"/api/v1/notification-channels/{growth['id']}",
        json={"scope": {"team": "Growth"}, "events": ["key_result.status_changed"]},
    )
    channel(
        client,
        "webhook",
        name="sales",
        config={"url": BLACKHOLE},
        scope={"team": "Sales"},
    )
    channel(client, "webhook", name="done", config={"url": BLACKHOLE}, events=["key_result.done"])
    channel(client, "webhook", name="ana", config={"url": BLACKHOLE}, scope={"owner": "ana"})
    kr = _okr(client)["kr"]
    _check_in(client, kr, 10)
    with session_scope() as s:
        rows = s.execute(
            select(NotificationChannel.name, NotificationEvent.type)
            .join(NotificationDelivery, NotificationDelivery.channel_id == NotificationChannel.id)
            .join(NotificationEvent, NotificationEvent.id == NotificationDelivery.event_id)
        ).all()
    assert sorted(tuple(r) for r in rows) == [
        ("ana", "key_result.status_changed"),
        ("growth", "key_result.status_changed"),
    ]


# --- check-in reminders ------------------------------------------------------------------------


def test_a_silent_manual_key_result_gets_one_reminder_per_7_day_gap(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rows are stamped by the wall clock: the test's clock starts from it.
    start = datetime.now(UTC)
    holder = Now(start)
    monkeypatch.setattr(clock, "utcnow", holder)
    today = start.date()
    span = (today - timedelta(days=10), today + timedelta(days=60))
    channel(client, "webhook", config={"url": BLACKHOLE})
    growth = _okr(client, team="Growth", owner="ana", cycle=span)
    manual = growth["kr"]
    mapped = _okr(client, team="Data", owner="bo", cycle=span)["kr"]
    make_mapping(mapped, make_source(), "sessions")
    _check_in(client, manual, 20, today)

    holder.advance(days=6, hours=23)
    evaluate_all()
    assert _events("check_in.reminder") == []
    holder.advance(hours=2)
    evaluate_all()
    evaluate_all()
    [reminder] = _events("check_in.reminder")
    assert reminder["data"]["key_result"]["id"] == manual
    assert reminder["data"]["days_since_check_in"] == 7
    assert reminder["scope"]["owner"] == ["ana"]  # its owner's, not the objective owner's

    holder.advance(days=6)
    evaluate_all()
    assert len(_events("check_in.reminder")) == 1
    holder.advance(days=1, hours=1)  # a second week of silence
    evaluate_all()
    assert len(_events("check_in.reminder")) == 2

    _check_in(client, manual, 30, holder.at.date())  # a check-in starts the count again
    holder.advance(days=6)
    evaluate_all()
    assert len(_events("check_in.reminder")) == 2

    # Once its cycle is closed, its figures are final: nobody is asked to check in.
    assert client.post(f"/api/v1/cycles/{growth['cycle']}/close").status_code == 200
    holder.advance(days=8)
    evaluate_all()
    assert len(_events("check_in.reminder")) == 2


# --- the weekly digest -------------------------------------------------------------------------


def test_the_weekly_digest_goes_on_monday_0900_in_krsync_timezone_once_per_week(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, now: Now
) -> None:
    monkeypatch.setenv("KRSYNC_TIMEZONE", "America/New_York")
    get_settings.cache_clear()
    channel(client, "webhook", config={"url": BLACKHOLE})
    kr = _okr(client)["kr"]
    _check_in(client, kr, 10)  # off track
    src = make_source("broken")
    with session_scope() as s:
        source = s.get(DataSource, src)
        assert source is not None
        source.last_run_status, source.consecutive_failures = "failed", 2

    # Monday 17 August 2026, 08:59 in New York (12:59 UTC): not yet.
    now.at = datetime(2026, 8, 17, 12, 59, tzinfo=UTC)
    evaluate_all()
    assert _events("digest.weekly") == []
    now.at = datetime(2026, 8, 17, 13, 0, tzinfo=UTC)  # 09:00 in New York
    assert evaluate_all().digest
    assert not evaluate_all().digest  # the job ran twice, or two replicas ran it
    [digest] = _events("digest.weekly")
    data = digest["data"]
    assert data["week"] == "2026-W34"
    assert [m["id"] for m in data["moved"]] == [kr]
    assert data["moved"][0]["new_status"] == "off_track"
    assert [(r["id"], r["status"]) for r in data["at_risk"]] == [(kr, "off_track")]
    assert data["stale"] == []
    assert data["unhealthy_sources"] == [{"id": src, "name": "broken", "health": "failing"}]

    now.at = datetime(2026, 8, 20, 13, 0, tzinfo=UTC)  # Thursday
    evaluate_all()
    now.at = datetime(2026, 8, 24, 13, 30, tzinfo=UTC)  # the next Monday, after 09:00
    evaluate_all()
    evaluate_all()
    assert [d["data"]["week"] for d in _events("digest.weekly")] == ["2026-W34", "2026-W35"]


# --- sources -----------------------------------------------------------------------------------


def test_a_failing_source_raises_one_failing_one_paused_then_recovered(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, pause_after: None
) -> None:
    channel(client, "webhook", config={"url": BLACKHOLE})
    src, _kr = _demo_source(monkeypatch)
    sync_source(src)
    _platform(monkeypatch, "down")
    for _ in range(PAUSE_AFTER):
        sync_source(src)
    resumed = client.post(f"/api/v1/data-sources/{src}/resume")
    assert resumed.status_code == 200, resumed.text
    _platform(monkeypatch, "fine")
    sync_source(src)
    sync_source(src)
    source_events = [e for e in _events() if e["type"].startswith("source.")]
    assert [e["type"] for e in source_events] == [
        "source.failing",
        "source.paused",
        "source.recovered",
    ]
    failing, paused, recovered = source_events
    assert failing["data"]["source"]["id"] == src
    assert failing["data"]["consecutive_failures"] == 1
    assert "down for maintenance" in failing["data"]["error"]
    assert paused["data"]["consecutive_failures"] == PAUSE_AFTER
    assert recovered["data"]["health"] == "healthy"
    assert recovered["data"]["previous_health"] == "failing"
    assert failing["scope"]["cycle_id"]
    assert failing["scope"]["objective_id"]


def test_a_refused_credential_raises_needs_reauth_and_an_ending_one_is_announced_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel(client, "webhook", config={"url": BLACKHOLE})
    src, _ = _demo_source(monkeypatch)

    async def refused(self: DemoConnector, *args: Any) -> Any:
        raise ConnectorAuthError("the API key was revoked")

    monkeypatch.setattr(DemoConnector, "fetch", refused)
    sync_source(src)
    sync_source(src)
    [event] = _events("source.needs_reauth")
    assert event["data"]["health"] == "needs_reauth"

    other = make_source("ending")
    with session_scope() as s:
        source = s.get(DataSource, other)
        assert source is not None
        source.credentials_expire_at = clock.utcnow() + timedelta(days=3)
    evaluate_all()
    evaluate_all()
    ending = [e for e in _events("source.needs_reauth") if e["data"]["source"]["id"] == other]
    assert len(ending) == 1
    assert "credentials_expire_at" in ending[0]["data"]


def test_an_api_version_retiring_within_60_days_is_announced_once_per_version(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, now: Now
) -> None:
    channel(client, "webhook", config={"url": BLACKHOLE})
    src = make_source("old-api")
    versions = {"v1": TODAY + timedelta(days=90)}
    monkeypatch.setattr(DemoConnector, "api_version_for", classmethod(lambda cls, c: "v1"))
    monkeypatch.setattr(
        DemoConnector, "api_version_sunset", classmethod(lambda cls, c: versions["v1"])
    )
    evaluate_all()
    assert _events("source.api_version_sunset") == []
    now.advance(days=31)  # 59 days ahead
    evaluate_all()
    evaluate_all()
    [event] = _events("source.api_version_sunset")
    assert event["data"]["source"]["id"] == src
    assert event["data"]["api_version"] == "v1"
    assert event["data"]["api_version_sunset"] == str(TODAY + timedelta(days=90))


# --- end to end --------------------------------------------------------------------------------


def test_a_check_ins_status_change_arrives_signed_at_a_webhook(
    client: TestClient, now: Now
) -> None:
    with receiver() as hook:
        created = channel(
            client,
            "webhook",
            config={"url": f"{hook.url}/krsync"},
            events=["key_result.status_changed"],
        )
        kr = _okr(client)["kr"]
        ci = _check_in(client, kr, 50)
        _edit(client, kr, ci, 10)
        assert dispatch().delivered == 2
        got = hook.requests
    bodies = [Webhook(created["signing_secret"]).verify(r.body, r.headers) for r in got]
    assert [(b["data"]["old_status"], b["data"]["new_status"]) for b in bodies] == [
        ("no_data", "on_track"),
        ("on_track", "off_track"),
    ]
    assert bodies[1]["type"] == "key_result.status_changed"
    assert bodies[1]["data"]["key_result"]["id"] == kr
    with session_scope() as s:
        state = s.get(KeyResultEventState, kr)
        assert state is not None
        assert state.status == "off_track"
