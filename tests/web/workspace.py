"""A small marketing workspace for the dashboard-page tests, built over the API.

It takes any httpx client pointed at the app (a TestClient, or an httpx.Client on a live server),
so the TestClient tests and the browser test read the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx

from app.core import clock
from factories import check_in, cycle, data_source, key_result, mapping, objective

INJECTION = "<script>alert(1)</script><b>x</b>"
AS_OF = "2026-08-15"


@dataclass
class Workspace:
    cycle_id: int
    objective_titles: list[str]
    kr_ids: list[int]
    source_id: int
    mapped_kr_ids: list[int] = field(default_factory=list)


def build(client: httpx.Client, *, with_source: bool = True) -> Workspace:
    """Two objectives: summed, level, ratio, grouped `each` and milestone KRs, with check-ins."""
    c = cycle(client)["id"]  # 2026-07-01 .. 2026-09-30
    pipeline = objective(
        client, c, title="Grow qualified pipeline", level="company", owner="CMO", team=""
    )["id"]
    social = objective(
        client,
        c,
        title=INJECTION,
        description=f"described as {INJECTION}",
        level="team",
        team="Social",
        owner="Dana",
    )["id"]

    leads = key_result(
        client, pipeline, title="Generate 600 marketing leads", unit="leads", target_value=600
    )["id"]
    for day, value in [("2026-07-02", 40), ("2026-07-20", 90), ("2026-08-03", 70), (AS_OF, 55)]:
        check_in(client, leads, day, value)

    audience = key_result(
        client,
        pipeline,
        title="Newsletter audience of at least 9,000",
        unit="subscribers",
        direction="at_least",
        aggregation="last",
        target_value=9000,
    )["id"]
    for day, value in [("2026-07-05", 8100), ("2026-07-26", 8350), ("2026-08-10", 8600)]:
        check_in(client, audience, day, value)

    launch = key_result(
        client, pipeline, title="Launch the partner programme", kind="milestone", target_value=None
    )["id"]

    injected = key_result(
        client, social, title=INJECTION, unit="<i>posts</i>", target_value=120, owner=INJECTION
    )["id"]
    check_in(client, injected, "2026-07-10", 30, note=INJECTION)
    check_in(client, injected, "2026-08-01", 25)

    kr_ids = [leads, audience, launch, injected]
    mapped: list[int] = []
    source_id = 0
    if with_source:
        source_id = data_source(client, name="Demo social & web")["id"]
        followers = key_result(
            client,
            social,
            title="3,000 new followers on each platform",
            unit="followers",
            target_value=3000,
            group_rule="each",
        )["id"]
        for platform in ("linkedin", "instagram"):
            mapping(
                client,
                followers,
                source_id,
                "new_followers",
                group=platform,
                filters=[{"field": "platform", "op": "eq", "value": platform}],
            )
        conversion = key_result(
            client,
            social,
            title="Site conversion rate of 1.2 %",
            unit="%",
            aggregation="ratio",
            start_value=0.5,
            target_value=1.2,
        )["id"]
        mapping(client, conversion, source_id, "signups", role="numerator", scale=100)
        mapping(client, conversion, source_id, "sessions", role="denominator")
        kr_ids += [followers, conversion]
        mapped = [followers, conversion]
    return Workspace(
        cycle_id=c,
        objective_titles=["Grow qualified pipeline", INJECTION],
        kr_ids=kr_ids,
        source_id=source_id,
        mapped_kr_ids=mapped,
    )


def api_dashboard(client: httpx.Client, cycle_id: int, as_of: str, **kw: Any) -> dict[str, Any]:
    response = client.get("/api/v1/dashboard", params={"cycle_id": cycle_id, "as_of": as_of}, **kw)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def api_progress(dashboard: dict[str, Any]) -> dict[int, float | None]:
    """Each key result's clamped progress, by id."""
    return {
        kr["id"]: (kr["progress"] or {}).get("progress")
        for obj in dashboard["objectives"]
        for kr in obj["key_results"]
    }


@dataclass
class Tree:
    cycle_id: int
    company: int
    company_kr: int
    team: int
    team_kr: int
    individual: int
    other_team: int


def seed_tree(client: httpx.Client) -> Tree:
    """An alignment tree for the OKRs page, in a cycle around today: the company objective,
    Social's aligned to its key result, Sam's aligned to Social's (done), and Email's alone."""
    today = clock.today()
    c = cycle(
        client,
        start_date=(today - timedelta(days=30)).isoformat(),
        end_date=(today + timedelta(days=60)).isoformat(),
    )["id"]
    company = objective(client, c, title="Grow qualified pipeline", level="company", owner="CMO")
    company_kr = key_result(client, company["id"], title="600 marketing leads", unit="leads")
    team = objective(
        client,
        c,
        title="Social brings leads",
        level="team",
        team="Social",
        owner="Dana",
        parent_key_result_id=company_kr["id"],
    )
    team_kr = key_result(client, team["id"], title="200 leads from LinkedIn", target_value=200)
    check_in(client, team_kr["id"], (today - timedelta(days=2)).isoformat(), 250)  # done
    individual = objective(
        client,
        c,
        title="Weekly LinkedIn posts",
        level="individual",
        team="Social",
        owner="Sam",
        parent_key_result_id=team_kr["id"],
    )
    key_result(client, individual["id"], title="12 posts", target_value=12)
    other = objective(client, c, title="Newsletter grows", level="team", team="Email", owner="Lee")
    key_result(client, other["id"], title="9,000 subscribers", target_value=9000)
    return Tree(
        c, company["id"], company_kr["id"], team["id"], team_kr["id"], individual["id"], other["id"]
    )
