"""Every date krsync reads is exactly `YYYY-MM-DD` (SPEC 2: `?as_of=YYYY-MM-DD`).

Pydantic alone reads `0` or `1700000000` as a Unix time and `2026-07-15T00:00:00` as a day, and
`date.fromisoformat` takes `20260815` and `2026-W29-3`: each would be answered as a plausible
day (1970-01-01 for `as_of=0`) instead of a 422 naming the field and the format.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from app.core.settings import get_settings
from connectors import registry
from connectors.push import PushConnector
from factories import check_in, data_source, mapping, workspace

# Dates are refused before any query: the PostgreSQL run of `make test` leaves these out.
pytestmark = pytest.mark.one_database

PUSH_SECRET = "push-secret-for-dates-0123456789"
#: What a caller might send for a day: numbers (Unix times, a packed date), and strings that
#: are not `YYYY-MM-DD` though some parser would take them.
BAD_STRINGS = [
    "0",
    "20260815",
    "1700000000",
    "2026-8-1",
    "2026-07-15T00:00:00",
    "2026-W29-3",
    " 2026-07-15",
    "2026-07-15\n",
    "２０２６-０７-１５",  # noqa: RUF001 - full-width digits match `\d`, not `[0-9]`
]
BAD_BODY_VALUES: list[Any] = [0, 1_700_000_000, 20260815, 1.5, True, *BAD_STRINGS]


@pytest.fixture
def world(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """One of everything a dated route reads: cycle, objective, key result, mapping, push source."""
    discover = registry._discover
    monkeypatch.setattr(
        registry, "_discover", lambda: {**discover(), PushConnector.key: PushConnector}
    )
    monkeypatch.setattr(registry, "_cache", None)
    monkeypatch.setenv("KRSYNC_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()
    c, o, kr = workspace(client)
    check_in(client, kr, "2026-07-01", 1)
    sid = data_source(client)["id"]
    other_kr = client.post(
        "/api/v1/key-results", json={"title": "signups", "objective_id": o, "target_value": 10}
    ).json()["id"]
    mid = mapping(client, other_kr, sid, "signups")["id"]
    push = client.post(
        "/api/v1/data-sources",
        json={
            "name": "pushed",
            "connector": "push",
            "config": {},
            "credentials": {"secret": PUSH_SECRET},
        },
    )
    assert push.status_code == 201, push.text
    return {"c": c, "o": o, "kr": kr, "sid": sid, "mid": mid, "push": push.json()["id"]}


def _refused(response: Any, field: str) -> None:
    assert response.status_code == 422, (response.request.url, response.text)
    detail = response.json()["detail"]
    assert field in detail, detail
    assert "YYYY-MM-DD" in detail, detail


QUERY_ROUTES = [
    ("GET", "/api/v1/objectives", "as_of"),
    ("GET", "/api/v1/objectives/{o}", "as_of"),
    ("POST", "/api/v1/objectives", "as_of"),
    ("PATCH", "/api/v1/objectives/{o}", "as_of"),
    ("GET", "/api/v1/key-results", "as_of"),
    ("GET", "/api/v1/key-results/{kr}", "as_of"),
    ("POST", "/api/v1/key-results", "as_of"),
    ("PATCH", "/api/v1/key-results/{kr}", "as_of"),
    ("GET", "/api/v1/key-results/{kr}/series", "from"),
    ("GET", "/api/v1/key-results/{kr}/series", "to"),
    ("GET", "/api/v1/dashboard", "as_of"),
]


@pytest.mark.parametrize("value", BAD_STRINGS)
@pytest.mark.parametrize(("method", "path", "param"), QUERY_ROUTES)
def test_a_date_query_parameter_is_strict(
    client: TestClient, world: dict[str, int], method: str, path: str, param: str, value: str
) -> None:
    bodies = {
        "/api/v1/objectives": {"title": "new", "cycle_id": world["c"]},
        "/api/v1/key-results": {"title": "new", "objective_id": world["o"], "target_value": 5},
    }
    before = client.get("/api/v1/key-results").json()["total"]
    response = client.request(
        method,
        path.format(**world),
        params={param: value},
        json=bodies.get(path, {}) if method in ("POST", "PATCH") else None,
    )
    _refused(response, param)
    assert client.get("/api/v1/key-results").json()["total"] == before


def _cycle(w: dict[str, int], field: str, v: Any) -> tuple[str, str, Any]:
    body = {"name": "Q4", "start_date": "2026-10-01", "end_date": "2026-12-31", field: v}
    return "POST", "/api/v1/cycles", body


BODY_ROUTES: dict[str, Callable[[dict[str, int], Any], tuple[str, str, Any]]] = {
    "start_date": lambda w, v: _cycle(w, "start_date", v),
    "end_date": lambda w, v: _cycle(w, "end_date", v),
    "cycle start_date": lambda w, v: ("PATCH", f"/api/v1/cycles/{w['c']}", {"start_date": v}),
    "check-in date": lambda w, v: (
        "POST",
        f"/api/v1/key-results/{w['kr']}/check-ins",
        {"date": v, "value": 1},
    ),
    "sync from": lambda w, v: (
        "POST",
        f"/api/v1/data-sources/{w['sid']}/sync",
        {"from": v, "to": "2026-07-03"},
    ),
    "sync to": lambda w, v: (
        "POST",
        f"/api/v1/data-sources/{w['sid']}/sync",
        {"from": "2026-07-01", "to": v},
    ),
    "preview from": lambda w, v: (
        "POST",
        f"/api/v1/mappings/{w['mid']}/preview",
        {"from": v, "to": "2026-07-03"},
    ),
    "preview to": lambda w, v: (
        "POST",
        f"/api/v1/mappings/{w['mid']}/preview",
        {"from": "2026-07-01", "to": v},
    ),
}


@pytest.mark.parametrize("value", BAD_BODY_VALUES)
@pytest.mark.parametrize("route", BODY_ROUTES)
def test_a_date_in_a_body_is_strict(
    client: TestClient, world: dict[str, int], route: str, value: Any
) -> None:
    method, path, body = BODY_ROUTES[route](world, value)
    runs = client.get("/api/v1/sync-runs").json()["total"]
    response = client.request(method, path, json=body)
    _refused(response, route.split()[-1])
    assert client.get("/api/v1/cycles").json()["total"] == 1
    assert client.get(f"/api/v1/cycles/{world['c']}").json()["start_date"] == "2026-07-01"
    assert client.get(f"/api/v1/key-results/{world['kr']}/check-ins").json()["total"] == 1
    assert client.get("/api/v1/sync-runs").json()["total"] == runs


@pytest.mark.parametrize("value", BAD_BODY_VALUES)
def test_a_pushed_date_is_strict(
    client: TestClient, anon: TestClient, world: dict[str, int], value: Any
) -> None:
    body = json.dumps([{"date": value, "metric": "signups", "value": 1}]).encode()
    stamp = str(int(time.time()))
    digest = hmac.new(PUSH_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    headers = {
        "X-Krsync-Timestamp": stamp,
        "X-Krsync-Signature": f"sha256={digest.hexdigest()}",
        "Content-Type": "application/json",
    }
    response = anon.post(f"/api/v1/push/{world['push']}", content=body, headers=headers)
    _refused(response, "date")


@pytest.mark.parametrize("value", BAD_STRINGS)
def test_the_dashboard_page_says_a_bad_date_is_not_one(client: TestClient, value: str) -> None:
    workspace(client)
    page = client.get("/", params={"as_of": value})
    assert page.status_code == 422
    assert "The date must look like 2026-08-15; showing today instead." in page.text


def test_good_dates_still_read(client: TestClient, world: dict[str, int]) -> None:
    for path in ("/api/v1/dashboard", f"/api/v1/key-results/{world['kr']}"):
        response = client.get(path, params={"as_of": "2026-07-15"})
        assert response.status_code == 200, response.text
        assert response.json()["progress" if "key-results" in path else "as_of"]
    series = client.get(
        f"/api/v1/key-results/{world['kr']}/series",
        params={"from": "2026-07-01", "to": "2026-07-02"},
    ).json()
    assert [p["date"] for p in series["points"]] == ["2026-07-01"]


def test_the_message_names_the_field_and_the_format(client: TestClient) -> None:
    response = client.get("/api/v1/dashboard", params={"as_of": "0"})
    assert (
        response.json()["detail"] == "as_of: must be a date written YYYY-MM-DD, such as 2026-08-15"
    )
    assert response.json()["field"] == "as_of"
    response = client.post(
        "/api/v1/cycles", json={"name": "Q", "start_date": "2026-02-30", "end_date": "2026-03-01"}
    )
    assert response.json()["detail"] == "start_date: is not a day of the calendar (YYYY-MM-DD)"


def test_python_callers_may_pass_a_date_but_not_a_datetime() -> None:
    from datetime import date, datetime

    from app.core.schemas import iso_date

    assert iso_date(date(2026, 7, 15)) == date(2026, 7, 15)
    assert iso_date("2026-07-15") == date(2026, 7, 15)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        iso_date(datetime(2026, 7, 15))  # noqa: DTZ001 - the type is what is refused


def test_the_openapi_schema_still_says_format_date(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    cycle = schema["components"]["schemas"]["CycleCreate"]["properties"]["start_date"]
    assert cycle["format"] == "date"
    [as_of] = [
        p for p in schema["paths"]["/api/v1/dashboard"]["get"]["parameters"] if p["name"] == "as_of"
    ]
    assert {"type": "string", "format": "date"} in as_of["schema"]["anyOf"]
