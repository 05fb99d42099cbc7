"""Factories for domain objects over the API: tests build what they need, nothing shared."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def create(client: TestClient, path: str, **body: Any) -> dict[str, Any]:
    response = client.post(f"/api/v1/{path}", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def cycle(client: TestClient, **over: Any) -> dict[str, Any]:
    body = {"name": "2026-Q3", "start_date": "2026-07-01", "end_date": "2026-09-30"} | over
    return create(client, "cycles", **body)


def objective(client: TestClient, cycle_id: int, **over: Any) -> dict[str, Any]:
    body = {"title": "Build an engaged audience on social", "cycle_id": cycle_id} | over
    return create(client, "objectives", **body)


def key_result(client: TestClient, objective_id: int, **over: Any) -> dict[str, Any]:
    body = {"title": "3,000 new followers", "objective_id": objective_id, "target_value": 3000}
    return create(client, "key-results", **(body | over))


def check_in(
    client: TestClient, kr_id: int, day: str, value: float | None, **over: Any
) -> dict[str, Any]:
    """`value=None` leaves the value out: a note or a confidence only (say which in `over`)."""
    figure = {} if value is None else {"value": value}
    return create(client, f"key-results/{kr_id}/check-ins", date=day, **figure, **over)


def workspace(client: TestClient) -> tuple[int, int, int]:
    """A cycle, an objective and a key result: the smallest thing progress can be read on."""
    c = cycle(client)
    o = objective(client, c["id"])
    k = key_result(client, o["id"])
    return c["id"], o["id"], k["id"]


def api_key_headers(client: TestClient, role: str) -> dict[str, str]:
    """Authorization headers of a fresh API key with this role, for use with `anon`."""
    created = create(client, "api-keys", name=f"{role}-key", role=role)
    return {"Authorization": f"Bearer {created['key']}"}


def data_source(client: TestClient, **over: Any) -> dict[str, Any]:
    body = {"name": "Demo web analytics", "connector": "demo", "config": {"seed": 7}} | over
    return create(client, "data-sources", **body)


def mapping(
    client: TestClient, kr_id: int, source_id: int, metric: str = "sessions", **over: Any
) -> dict[str, Any]:
    body = {"key_result_id": kr_id, "data_source_id": source_id, "metric": metric} | over
    return create(client, "mappings", **body)


def every_read(client: TestClient, kr_id: int, as_of: str) -> dict[str, Any]:
    """Every read that reports on a key result answers 200; returns its progress block.

    The key result's own read, its objective's, the dashboard of its cycle, the lists that
    carry them, and its daily series as JSON and CSV.
    """
    kr = client.get(f"/api/v1/key-results/{kr_id}?as_of={as_of}")
    assert kr.status_code == 200, kr.text
    objective_id = kr.json()["objective_id"]
    obj = client.get(f"/api/v1/objectives/{objective_id}?as_of={as_of}")
    assert obj.status_code == 200, obj.text
    cycle_id = obj.json()["cycle_id"]
    for path in (
        f"/api/v1/dashboard?cycle_id={cycle_id}&as_of={as_of}",
        f"/api/v1/objectives?cycle_id={cycle_id}&as_of={as_of}",
        f"/api/v1/key-results?objective_id={objective_id}&as_of={as_of}",
        f"/api/v1/key-results/{kr_id}/series",
        f"/api/v1/key-results/{kr_id}/series?format=csv",
    ):
        response = client.get(path)
        assert response.status_code == 200, f"{path}: {response.text}"
    progress: dict[str, Any] = kr.json()["progress"]
    return progress


def closing_quarter(
    client: TestClient, tag: str = "", *, with_source: bool = True
) -> dict[str, int]:
    """Q3 (07-01..09-30, 92 days) to close and carry from, Q4 (10-01..12-31) after it and Q2
    before it; ``tag`` ends the cycles' and source's names, so one database can hold two.

    - "Grow demo requests by 20%": a relative sum. Its Q3 baseline (the 92 days to 06-30) is
      100, so its Q3 target is 120; Q3 brought 50 + 40 = 90 → 0.75, not done.
    - "500 sign-ups": 500 of 500 → done, so not carried by default.
    - "Pushed revenue": mapped to a push source (``source``, ``mapping``), no data → not done,
      carried with its mapping; unmapped without ``with_source`` (set ``KRSYNC_SECRET_KEY``
      for the source's secret).
    - A team objective aligned to the demo requests key result.
    """
    c3 = cycle(client, name=f"2026-Q3{tag}")["id"]
    c4 = cycle(client, name=f"2026-Q4{tag}", start_date="2026-10-01", end_date="2026-12-31")["id"]
    c2 = cycle(client, name=f"2026-Q2{tag}", start_date="2026-04-01", end_date="2026-06-30")["id"]
    company = objective(client, c3, title="More pipeline", level="company", owner="ana")["id"]
    demos = key_result(
        client,
        company,
        title="Grow demo requests by 20%",
        target_value=None,
        target_change_pct=20,
        owner="ana",
    )["id"]
    check_in(client, demos, "2026-06-15", 100)  # the Q3 baseline
    check_in(client, demos, "2026-07-10", 50)
    check_in(client, demos, "2026-08-10", 40)
    signups = key_result(client, company, title="500 sign-ups", target_value=500)["id"]
    check_in(client, signups, "2026-08-12", 500)
    pushed = key_result(client, company, title="Pushed revenue", target_value=1000)["id"]
    ids = {"q2": c2, "q3": c3, "q4": c4, "company": company, "demos": demos}
    if with_source:
        ids["source"] = create(
            client,
            "data-sources",
            name=f"Pushed{tag}",
            connector="push",
            config={},
            credentials={"secret": f"{CARRY_PUSH_SECRET}{tag}"},
        )["id"]
        ids["mapping"] = mapping(
            client, pushed, ids["source"], metric="revenue", group="eu", scale=2
        )["id"]
    team = objective(
        client, c3, title="Demos from content", team="Content", parent_key_result_id=demos
    )["id"]
    content = key_result(client, team, title="20 demo requests from the blog", target_value=20)
    return ids | {"signups": signups, "pushed": pushed, "team": team, "content": content["id"]}


#: The push secret of :func:`closing_quarter`'s source (its ``tag`` appended).
CARRY_PUSH_SECRET = "carry-push-secret-0123456789abcdef"
