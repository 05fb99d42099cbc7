"""Each quality rule of SPEC section 8, firing and not firing, and over the API."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.core.db import session_scope
from app.core.settings import get_settings
from app.models import Cycle, DataSource, KeyResult, Objective
from app.review.findings import Finding, MeasureFacts, find, names_an_activity
from factories import check_in, create, cycle, key_result, mapping, objective

Q3 = Cycle(id=1, name="2026-Q3", start_date=date(2026, 7, 1), end_date=date(2026, 9, 30))
MID = date(2026, 8, 20)


def _kr(kid: int, title: str = "3,000 new followers", **over: object) -> KeyResult:
    values: dict[str, object] = {
        "owner": "ana",
        "kind": "metric",
        "target_value": 3000.0,
        "target_change_pct": None,
    } | over
    return KeyResult(id=kid, title=title, **values)


def _objective(*krs: KeyResult, **over: object) -> Objective:
    values: dict[str, object] = {
        "id": 10,
        "title": "Grow the audience",
        "owner": "ana",
        "level": "company",
        "team": "",
        "cycle_id": 1,
        "parent_key_result_id": None,
    } | over
    obj = Objective(**values)
    obj.key_results = list(krs)
    return obj


def _rules(
    obj: Objective,
    *,
    mapped: frozenset[int] = frozenset(),
    checked: dict[int, date] | None = None,
    stale: frozenset[int] = frozenset(),
    as_of: date = MID,
) -> list[tuple[str, str, int | None]]:
    facts = MeasureFacts(mapped=mapped, last_check_in=checked or {})
    found: list[Finding] = find([obj], {1: Q3}, facts, stale, as_of)
    return [(f.rule, f.severity, f.key_result_id) for f in found]


#: Every key result mapped, so `unmeasured` stays out of the rules under test.
ALL = frozenset(range(1, 20))


def test_a_good_objective_has_no_findings() -> None:
    assert _rules(_objective(_kr(1), _kr(2, "25% more sign-ups")), mapped=ALL) == []


@pytest.mark.parametrize(
    ("count", "severity"), [(3, None), (4, "warning"), (5, "warning"), (6, "error")]
)
def test_too_many_key_results(count: int, severity: str | None) -> None:
    obj = _objective(*(_kr(i, f"{i}0 new followers") for i in range(1, count + 1)))
    found = [r for r in _rules(obj, mapped=ALL) if r[0] == "too_many_key_results"]
    assert found == ([] if severity is None else [("too_many_key_results", severity, None)])


def test_no_key_results() -> None:
    assert _rules(_objective()) == [("no_key_results", "error", None)]
    assert "no_key_results" not in {r[0] for r in _rules(_objective(_kr(1)), mapped=ALL)}


@pytest.mark.parametrize(
    ("over", "fires"),
    [
        ({"target_value": None}, True),
        ({"target_value": None, "target_change_pct": 20.0}, False),
        ({"target_value": None, "kind": "milestone"}, False),
        ({"target_value": None, "kind": "rollup"}, False),
        ({}, False),
    ],
)
def test_not_measurable(over: dict[str, object], fires: bool) -> None:
    found = _rules(_objective(_kr(1, **over)), mapped=ALL)
    assert (("not_measurable", "error", 1) in found) is fires


@pytest.mark.parametrize(
    ("title", "fires"),
    [
        ("Launch the new website", True),
        ("Write the content strategy", True),
        ("Publishing a podcast", True),
        ("Create a partner programme", True),
        ("launched the app in Spain", True),
        ("Launch 3 markets with 500 sign-ups each", False),  # a figure makes it measurable
        ("Write 12 posts", False),
        ("Double the newsletter's open rate", False),
        ("Website visitors who sign up", False),
        ("Relaunch-ready brand", False),
    ],
)
def test_task_not_outcome(title: str, fires: bool) -> None:
    assert names_an_activity(title) is fires
    found = _rules(_objective(_kr(1, title)), mapped=ALL)
    assert (("task_not_outcome", "warning", 1) in found) is fires


def test_task_not_outcome_says_what_to_change() -> None:
    facts = MeasureFacts(mapped=ALL)
    found = find([_objective(_kr(1, "Launch the new website"))], {1: Q3}, facts, (), MID)
    assert [f.message for f in found] == [
        "'Launch the new website' names an activity: what outcome shows it worked?"
    ]


def test_no_owner() -> None:
    found = _rules(_objective(_kr(1, owner=" "), owner=""), mapped=ALL)
    assert found == [("no_owner", "warning", None), ("no_owner", "warning", 1)]
    assert _rules(_objective(_kr(1)), mapped=ALL) == []


@pytest.mark.parametrize(
    ("level", "parent", "fires"),
    [
        ("team", None, True),
        ("individual", None, True),
        ("team", 7, False),
        ("individual", 7, False),
        ("company", None, False),
    ],
)
def test_not_aligned(level: str, parent: int | None, fires: bool) -> None:
    found = _rules(_objective(_kr(1), level=level, parent_key_result_id=parent), mapped=ALL)
    assert (("not_aligned", "warning", None) in found) is fires


@pytest.mark.parametrize(
    ("kind", "mapped", "last", "as_of", "fires"),
    [
        ("metric", False, None, MID, True),  # nothing in 51 days of cycle
        ("metric", False, date(2026, 8, 6), MID, True),  # 14 days ago
        ("metric", False, date(2026, 8, 7), MID, False),  # 13 days ago
        ("metric", True, None, MID, False),  # a source measures it
        ("milestone", False, None, MID, False),  # reached or not: no weekly figure
        ("metric", False, None, date(2026, 7, 13), False),  # the cycle's first 13 days
        ("metric", False, None, date(2026, 7, 14), True),  # its 14th day
        ("metric", False, None, date(2026, 6, 20), False),  # being set up: not started
        ("metric", False, date(2026, 9, 20), date(2026, 12, 1), False),  # read from the end
    ],
)
def test_unmeasured(kind: str, mapped: bool, last: date | None, as_of: date, fires: bool) -> None:
    kr = _kr(1, kind=kind, target_value=None if kind == "milestone" else 3000.0)
    found = _rules(
        _objective(kr),
        mapped=frozenset({1}) if mapped else frozenset(),
        checked={1: last} if last else {},
        as_of=as_of,
    )
    assert (("unmeasured", "warning", 1) in found) is fires


def test_stale_source() -> None:
    assert ("stale_source", "warning", 1) in _rules(
        _objective(_kr(1)), mapped=ALL, stale=frozenset({1})
    )
    assert _rules(_objective(_kr(1)), mapped=ALL) == []


def test_the_api_finds_unmeasured_and_stale_key_results(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The facts the rules read come from the database: check-ins, mappings, sync times."""
    monkeypatch.setenv("KRSYNC_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()
    c = cycle(client)["id"]
    o = objective(client, c, level="company", owner="ana")["id"]
    typed = key_result(client, o, title="3,000 new followers", owner="ana")["id"]
    check_in(client, typed, "2026-08-01", 10)
    synced = key_result(client, o, title="5,000 sessions", owner="ana", target_value=5000)["id"]
    source = create(
        client,
        "data-sources",
        name="Pushed",
        connector="push",
        config={},
        credentials={"secret": "a-push-secret-0123456789abcdef"},
    )
    mapping(client, synced, source["id"], metric="sessions")

    def rules(as_of: str) -> list[tuple[str, int | None]]:
        body = client.get(f"/api/v1/objectives/{o}/review?as_of={as_of}").json()
        return [(f["rule"], f["key_result_id"]) for f in body["findings"]]

    assert rules("2026-08-10") == []  # checked in 9 days before; the source synced just now
    assert rules("2026-08-15") == [("unmeasured", typed)]  # 14 days since 08-01
    long_ago = datetime.now(UTC) - timedelta(days=5)
    with session_scope() as session:
        session.execute(update(DataSource).values(last_success_at=long_ago, created_at=long_ago))
    assert rules("2026-08-10") == [("stale_source", synced)]
