"""Cycles, objectives and key results written in the browser (SPEC section 6, "OKRs": "create,
edit and delete cycles, objectives ... and key results (every kind, direction, aggregation and
relative target, with the form explaining each choice)").

Every form goes through the API's schema and service, so each refusal is compared with the
API's own answer to the same input, and read beside the field it names. A refusal changes
nothing: no row and no audit event.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from web.browser_session import sign_in
from web.workspace import Tree, seed_tree

from app.core.db import get_engine
from factories import check_in, create, cycle, data_source, key_result, mapping, objective


def key_of(client: TestClient, role: str) -> str:
    key: str = create(client, "api-keys", name=f"{role} person", role=role)["key"]
    return key


def state(client: TestClient) -> tuple[Any, ...]:
    """Everything a form could change, and the audit trail every write adds to."""

    def items(path: str) -> list[dict[str, Any]]:
        body = client.get(path, params={"limit": 500}).json()
        return [{k: v for k, v in row.items() if k != "progress"} for row in body["items"]]

    audit = client.get("/api/v1/audit-events", params={"limit": 500}).json()["total"]
    return (
        items("/api/v1/cycles"),
        items("/api/v1/objectives"),
        items("/api/v1/key-results"),
        audit,
    )


def beside(page: str, prefix: str, field: str) -> str:
    """The message shown beside a field; the test fails if there is none."""
    found = re.search(rf'<p class="field-error" id="{prefix}-{field}-error">([^<]*)</p>', page)
    assert found, f"no message beside {prefix}-{field}:\n{page[-1500:]}"
    return html.unescape(found.group(1))


def api_message(response: Any) -> str:
    body = response.json()
    message: str = body["errors"][0]["msg"] if body["errors"] else body["detail"]
    return message


@pytest.fixture
def tree(client: TestClient) -> Tree:
    return seed_tree(client)


# --- cycles -----------------------------------------------------------------------------------


def test_an_editor_creates_edits_and_deletes_a_cycle(client: TestClient, anon: TestClient) -> None:
    token = sign_in(anon, key_of(client, "editor"))
    page = anon.get("/cycles")
    assert page.status_code == 200
    assert 'action="/cycles"' in page.text
    assert '<a href="/cycles" aria-current="page">Cycles</a>' in page.text

    made = anon.post(
        "/cycles",
        data={
            "csrf_token": token,
            "name": "2026-Q4",
            "start_date": "2026-10-01",
            "end_date": "2026-12-31",
        },
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text[-800:]
    [row] = client.get("/api/v1/cycles").json()["items"]
    assert (row["name"], row["start_date"], row["end_date"]) == (
        "2026-Q4",
        "2026-10-01",
        "2026-12-31",
    )
    listed = anon.get("/cycles").text
    assert f'<a href="/okrs?cycle_id={row["id"]}">2026-Q4</a>' in listed

    form = anon.get(f"/cycles/{row['id']}/edit").text
    assert 'value="2026-Q4"' in form
    edited = anon.post(
        f"/cycles/{row['id']}/edit",
        data={
            "csrf_token": token,
            "name": "Q4 2026",
            "start_date": "2026-10-01",
            "end_date": "2026-12-20",
        },
        follow_redirects=False,
    )
    assert edited.status_code == 303
    after = client.get(f"/api/v1/cycles/{row['id']}").json()
    assert (after["name"], after["end_date"]) == ("Q4 2026", "2026-12-20")
    # As a PATCH: the unchanged start date is not in the audit's changes.
    audit = client.get(
        "/api/v1/audit-events", params={"entity": "cycle", "entity_id": row["id"]}
    ).json()["items"]
    update = next(e for e in audit if e["action"] == "update")
    assert set(update["changes"]) == {"name", "end_date"}

    confirm = anon.get(f"/cycles/{row['id']}/delete").text
    assert "It holds nothing else" in confirm
    assert 'name="cascade"' not in confirm
    gone = anon.post(
        f"/cycles/{row['id']}/delete", data={"csrf_token": token}, follow_redirects=False
    )
    assert gone.status_code == 303
    assert client.get(f"/api/v1/cycles/{row['id']}").status_code == 404


def test_a_cycle_holding_objectives_goes_only_with_everything_in_it(
    client: TestClient, anon: TestClient, tree: Tree
) -> None:
    token = sign_in(anon, key_of(client, "editor"))
    confirm = anon.get(f"/cycles/{tree.cycle_id}/delete").text
    assert "<li>4 objectives</li>" in confirm
    assert "<li>4 key results</li>" in confirm
    assert "<li>1 check-in</li>" in confirm
    assert "(409)" in confirm
    assert '<input type="hidden" name="cascade" value="true">' in confirm

    # Without asking for everything (a form read before objectives were added): the API's 409.
    api = client.delete(f"/api/v1/cycles/{tree.cycle_id}")
    assert api.status_code == 409
    before = state(client)
    refused = anon.post(f"/cycles/{tree.cycle_id}/delete", data={"csrf_token": token})
    assert refused.status_code == 409
    assert html.unescape(refused.text).count(api.json()["detail"]) == 1
    assert state(client) == before

    gone = anon.post(
        f"/cycles/{tree.cycle_id}/delete",
        data={"csrf_token": token, "cascade": "true"},
        follow_redirects=False,
    )
    assert gone.status_code == 303
    assert client.get("/api/v1/objectives").json()["total"] == 0


def test_an_editor_may_not_delete_a_cycle_holding_mappings_and_is_told_so(
    client: TestClient, anon: TestClient, tree: Tree
) -> None:
    mapping(client, tree.company_kr, data_source(client)["id"])
    token = sign_in(anon, key_of(client, "editor"))
    confirm = anon.get(f"/cycles/{tree.cycle_id}/delete").text
    assert 'id="delete-needs-admin"' in confirm
    assert 'action="/cycles/' not in confirm  # no delete button an editor would be refused
    before = state(client)
    refused = anon.post(
        f"/cycles/{tree.cycle_id}/delete", data={"csrf_token": token, "cascade": "true"}
    )
    assert refused.status_code == 403
    assert "managed by admins" in refused.text
    assert state(client) == before

    admin_token = sign_in(anon, key_of(client, "admin"))
    confirm = anon.get(f"/cycles/{tree.cycle_id}/delete").text
    assert "<li>1 mapping to a data source</li>" in confirm
    assert 'id="delete-needs-admin"' not in confirm
    gone = anon.post(
        f"/cycles/{tree.cycle_id}/delete",
        data={"csrf_token": admin_token, "cascade": "true"},
        follow_redirects=False,
    )
    assert gone.status_code == 303
    assert client.get("/api/v1/mappings").json()["total"] == 0


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"name": "   ", "start_date": "2026-10-01", "end_date": "2026-12-31"}, "name"),
        ({"name": "Q4", "start_date": "2026-13-01", "end_date": "2026-12-31"}, "start_date"),
        ({"name": "Q4", "start_date": "01/10/2026", "end_date": "2026-12-31"}, "start_date"),
        ({"name": "Q4", "start_date": "2026-10-01", "end_date": "2026-09-30"}, "end_date"),
    ],
)
def test_a_refused_cycle_shows_the_api_message_beside_its_field(
    client: TestClient, anon: TestClient, form: dict[str, str], field: str
) -> None:
    token = sign_in(anon, key_of(client, "editor"))
    api = client.post("/api/v1/cycles", json=form)
    assert api.status_code == 422
    before = state(client)
    page = anon.post("/cycles", data={"csrf_token": token, **form})
    assert page.status_code == 422
    assert beside(page.text, "cycle", field) == api_message(api)
    assert f'aria-describedby="cycle-{field}-error"' in page.text
    for value in form.values():  # what the person typed is still there
        assert f'value="{value}"' in page.text
    assert state(client) == before


def test_a_refused_cycle_edit_keeps_the_cycle(client: TestClient, anon: TestClient) -> None:
    token = sign_in(anon, key_of(client, "editor"))
    c = cycle(client)
    api = client.patch(f"/api/v1/cycles/{c['id']}", json={"end_date": "2026-06-30"})
    assert api.status_code == 422
    before = state(client)
    form = {"name": "2026-Q3", "start_date": "2026-07-01", "end_date": "2026-06-30"}
    page = anon.post(f"/cycles/{c['id']}/edit", data={"csrf_token": token, **form})
    assert page.status_code == 422
    assert beside(page.text, "cycle", "end_date") == api_message(api)
    assert 'value="2026-06-30"' in page.text
    assert state(client) == before


# --- objectives -------------------------------------------------------------------------------


def test_an_editor_edits_an_objective_and_its_alignment(
    client: TestClient, anon: TestClient, tree: Tree
) -> None:
    token = sign_in(anon, key_of(client, "editor"))
    tree_page = anon.get("/okrs", params={"cycle_id": tree.cycle_id}).text
    assert f'href="/okrs/objectives/{tree.individual}/edit"' in tree_page
    assert f'href="/okrs/objectives/{tree.individual}/delete"' in tree_page
    assert f'href="/okrs/objectives/{tree.individual}/key-results/new"' in tree_page
    assert f'href="/key-results/{tree.team_kr}/edit"' in tree_page

    form = anon.get(f"/okrs/objectives/{tree.individual}/edit").text
    offered = {int(v) for v in re.findall(r'<option value="(\d+)"', form)}
    # An individual objective: the company's and the team's key results, not its own.
    own = client.get(f"/api/v1/objectives/{tree.individual}").json()["key_results"][0]["id"]
    assert {tree.company_kr, tree.team_kr} <= offered
    assert own not in offered
    assert f'<option value="{tree.team_kr}" selected>' in form

    # The team objective may not be offered the key result of the individual's under it.
    team_form = anon.get(f"/okrs/objectives/{tree.team}/edit").text
    team_offered = {int(v) for v in re.findall(r'<option value="(\d+)"', team_form)}
    assert team_offered == {tree.company_kr}

    edited = anon.post(
        f"/okrs/objectives/{tree.individual}/edit",
        data={
            "csrf_token": token,
            "title": "Weekly LinkedIn videos",
            "description": "Video does better",
            "level": "individual",
            "team": "Video",
            "owner": "Kim",
            "parent_key_result_id": str(tree.company_kr),
        },
        follow_redirects=False,
    )
    assert edited.status_code == 303, edited.text[-800:]
    after = client.get(f"/api/v1/objectives/{tree.individual}").json()
    assert (
        after["title"],
        after["description"],
        after["team"],
        after["owner"],
        after["parent_key_result_id"],
    ) == ("Weekly LinkedIn videos", "Video does better", "Video", "Kim", tree.company_kr)

    unaligned = anon.post(
        f"/okrs/objectives/{tree.individual}/edit",
        data={
            "csrf_token": token,
            "title": "Weekly LinkedIn videos",
            "level": "team",
            "parent_key_result_id": "",
        },
        follow_redirects=False,
    )
    assert unaligned.status_code == 303
    after = client.get(f"/api/v1/objectives/{tree.individual}").json()
    assert (after["level"], after["parent_key_result_id"], after["owner"]) == ("team", None, "")


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"title": "  "}, "title"),
        ({"title": "Fine", "level": "department"}, "level"),
        ({"title": "Fine", "parent_key_result_id": "999999"}, "parent_key_result_id"),
        ({"title": "Fine", "parent_key_result_id": "team_kr"}, "parent_key_result_id"),
    ],
)
def test_a_refused_objective_edit_shows_the_api_message_beside_its_field(
    client: TestClient, anon: TestClient, tree: Tree, form: dict[str, str], field: str
) -> None:
    token = sign_in(anon, key_of(client, "editor"))
    if form.get("parent_key_result_id") == "team_kr":  # a loop: the company under its own team
        form = {**form, "parent_key_result_id": str(tree.team_kr)}
    body: dict[str, Any] = {"level": "company", **form}
    if "parent_key_result_id" in body:
        body["parent_key_result_id"] = int(body["parent_key_result_id"])
    api = client.patch(f"/api/v1/objectives/{tree.company}", json=body)
    assert api.status_code == 422
    before = state(client)
    page = anon.post(
        f"/okrs/objectives/{tree.company}/edit",
        data={"csrf_token": token, "level": "company", **form},
    )
    assert page.status_code == 422
    assert beside(page.text, "objective", field) == api_message(api)
    assert state(client) == before


def test_deleting_an_objective_says_what_goes_and_what_stays(
    client: TestClient, anon: TestClient, tree: Tree
) -> None:
    token = sign_in(anon, key_of(client, "editor"))
    confirm = anon.get(f"/okrs/objectives/{tree.team}/delete").text
    assert "<li>1 key result</li>" in confirm
    assert "<li>1 check-in</li>" in confirm
    assert "1 objective is aligned to its key results: it stays" in confirm
    gone = anon.post(
        f"/okrs/objectives/{tree.team}/delete",
        data={"csrf_token": token, "cascade": "true"},
        follow_redirects=False,
    )
    assert gone.status_code == 303
    assert gone.headers["location"] == f"/okrs?cycle_id={tree.cycle_id}"
    assert client.get(f"/api/v1/objectives/{tree.team}").status_code == 404
    assert client.get(f"/api/v1/key-results/{tree.team_kr}").status_code == 404
    orphan = client.get(f"/api/v1/objectives/{tree.individual}").json()
    assert orphan["parent_key_result_id"] is None

    # An objective that holds nothing goes without asking for everything.
    empty = objective(client, tree.cycle_id, title="Nothing yet")["id"]
    assert 'name="cascade"' not in anon.get(f"/okrs/objectives/{empty}/delete").text
    assert (
        anon.post(
            f"/okrs/objectives/{empty}/delete", data={"csrf_token": token}, follow_redirects=False
        ).status_code
        == 303
    )
    assert client.get(f"/api/v1/objectives/{empty}").status_code == 404


def test_an_objective_delete_without_cascade_is_the_api_409(
    client: TestClient, anon: TestClient, tree: Tree
) -> None:
    token = sign_in(anon, key_of(client, "editor"))
    api = client.delete(f"/api/v1/objectives/{tree.company}")
    assert api.status_code == 409
    before = state(client)
    page = anon.post(f"/okrs/objectives/{tree.company}/delete", data={"csrf_token": token})
    assert page.status_code == 409
    assert api.json()["detail"] in html.unescape(page.text)
    assert state(client) == before


# --- key results ------------------------------------------------------------------------------

EVERY_FIELD = {
    "title": "Average search position better than 8",
    "owner": "Lee",
    "unit": "position",
    "kind": "metric",
    "direction": "at_most",
    "aggregation": "avg",
    "group_rule": "each",
    "start_value": "12.5",
    "target_value": "8",
    "target_change_pct": "",
    "weight": "2",
}


def test_the_key_result_form_explains_every_choice(
    client: TestClient, anon: TestClient, tree: Tree
) -> None:
    sign_in(anon, key_of(client, "editor"))
    page = anon.get(f"/okrs/objectives/{tree.other_team}/key-results/new")
    assert page.status_code == 200
    text = page.text
    for name in (
        "objective_id",
        "title",
        "owner",
        "unit",
        "kind",
        "direction",
        "aggregation",
        "group_rule",
        "start_value",
        "target_value",
        "target_change_pct",
        "weight",
    ):
        assert f'name="{name}"' in text, name
    for choices, values in (
        ("kind", ("metric", "milestone", "rollup")),
        ("aggregation", ("sum", "last", "avg", "min", "max", "ratio")),
        ("direction", ("increase", "decrease", "at_least", "at_most")),
        ("group_rule", ("combine", "each")),
    ):
        options = re.search(rf'<select id="kr-{choices}".*?</select>', text, re.S)
        assert options, choices
        assert re.findall(r'<option value="(\w+)"', options.group(0)) == list(values)
        explained = re.search(
            rf'<dl class="choices" id="kr-{choices}-choices">(.*?)</dl>', text, re.S
        )
        assert explained, choices
        assert explained.group(1).count("<dd>") == len(values), choices
    assert text.count('class="applies"') >= 5
    assert f'<option value="{tree.other_team}" selected>' in text


def test_an_editor_creates_a_key_result_with_every_field(
    client: TestClient, anon: TestClient, tree: Tree
) -> None:
    token = sign_in(anon, key_of(client, "editor"))
    made = anon.post(
        f"/okrs/objectives/{tree.other_team}/key-results",
        data={"csrf_token": token, "objective_id": str(tree.other_team), **EVERY_FIELD},
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text[-1500:]
    kr_id = int(made.headers["location"].rsplit("/", 1)[1])
    kr = client.get(f"/api/v1/key-results/{kr_id}").json()
    assert {k: kr[k] for k in EVERY_FIELD} == {
        **EVERY_FIELD,
        "start_value": 12.5,
        "target_value": 8.0,
        "target_change_pct": None,
        "weight": 2.0,
    }
    assert kr["objective_id"] == tree.other_team

    relative = anon.post(
        f"/okrs/objectives/{tree.other_team}/key-results",
        data={
            "csrf_token": token,
            **EVERY_FIELD,
            "title": "Sessions from the Email channel +30 %",
            "direction": "increase",
            "aggregation": "sum",
            "group_rule": "combine",
            "start_value": "",
            "target_value": "",
            "target_change_pct": "30",
            "weight": "",
        },
        follow_redirects=False,
    )
    assert relative.status_code == 303, relative.text[-1500:]
    rel = client.get(relative.headers["location"].replace("/key-results", "/api/v1/key-results"))
    assert (rel.json()["target_change_pct"], rel.json()["weight"]) == (30.0, 1.0)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": ""}, "title"),
        ({"kind": "kpi"}, "kind"),
        ({"aggregation": "median"}, "aggregation"),
        ({"weight": "heavy"}, "weight"),
        ({"target_value": "3,000"}, "target_value"),
        ({"target_value": "", "target_change_pct": ""}, "target_value"),
        ({"target_change_pct": "25"}, "target_value"),  # both a target and a relative one
        ({"direction": "increase", "start_value": "8"}, "target_value"),  # target = start
        (
            {"direction": "decrease", "aggregation": "sum", "target_value": "", "start_value": ""}
            | {"target_change_pct": "-10"},
            "direction",
        ),
    ],
)
def test_a_refused_key_result_shows_the_api_message_beside_its_field(
    client: TestClient, anon: TestClient, tree: Tree, change: dict[str, str], field: str
) -> None:
    token = sign_in(anon, key_of(client, "editor"))
    form = {**EVERY_FIELD, **change}
    body: dict[str, Any] = {k: (v if v != "" else None) for k, v in form.items()}
    for name in ("title", "owner", "unit"):
        body[name] = form[name]
    api = client.post("/api/v1/key-results", json={"objective_id": tree.other_team, **body})
    assert api.status_code == 422, api.text
    before = state(client)
    page = anon.post(
        f"/okrs/objectives/{tree.other_team}/key-results",
        data={"csrf_token": token, "objective_id": str(tree.other_team), **form},
    )
    assert page.status_code == 422
    assert beside(page.text, "kr", field) == api_message(api)
    assert f'aria-describedby="kr-{field}-error"' in page.text
    assert f'<a href="#kr-{field}">' in page.text  # listed at the top, a phone's first screen
    for name in ("title", "start_value", "target_value", "weight"):
        if form[name]:
            assert f'value="{html.escape(form[name])}"' in page.text, name
    assert state(client) == before


def test_an_editor_edits_a_key_result_and_empties_its_target(
    client: TestClient, anon: TestClient, tree: Tree
) -> None:
    token = sign_in(anon, key_of(client, "editor"))
    page = anon.get(f"/key-results/{tree.team_kr}").text
    assert f'href="/key-results/{tree.team_kr}/edit"' in page
    assert f'href="/key-results/{tree.team_kr}/delete"' in page
    form = anon.get(f"/key-results/{tree.team_kr}/edit").text
    assert 'id="kr-target_value" name="target_value"' in form
    assert 'value="200"' in form

    edited = anon.post(
        f"/key-results/{tree.team_kr}/edit",
        data={
            "csrf_token": token,
            "objective_id": str(tree.team),
            "title": "LinkedIn lead-gen form live",
            "owner": "Dana",
            "unit": "",
            "kind": "milestone",
            "direction": "increase",
            "aggregation": "last",
            "group_rule": "combine",
            "start_value": "",
            "target_value": "",
            "target_change_pct": "",
            "weight": "1",
        },
        follow_redirects=False,
    )
    assert edited.status_code == 303, edited.text[-1500:]
    kr = client.get(f"/api/v1/key-results/{tree.team_kr}").json()
    assert (kr["title"], kr["kind"], kr["aggregation"], kr["target_value"]) == (
        "LinkedIn lead-gen form live",
        "milestone",
        "last",
        None,
    )

    # A metric needs a target: emptied, the edit is refused and the key result kept.
    before = state(client)
    refused = anon.post(
        f"/key-results/{tree.team_kr}/edit",
        data={
            "csrf_token": token,
            **EVERY_FIELD,
            "objective_id": str(tree.team),
            "target_value": "",
        },
    )
    assert refused.status_code == 422
    assert "needs target_value or target_change_pct" in beside(refused.text, "kr", "target_value")
    assert state(client) == before


def test_deleting_a_key_result_with_check_ins_takes_them_along_when_asked(
    client: TestClient, anon: TestClient, tree: Tree
) -> None:
    token = sign_in(anon, key_of(client, "editor"))
    confirm = anon.get(f"/key-results/{tree.team_kr}/delete").text
    assert "<li>1 check-in</li>" in confirm
    assert "(409)" in confirm
    assert "1 objective is aligned to it: it stays, no longer aligned" in confirm

    api = client.delete(f"/api/v1/key-results/{tree.team_kr}")
    assert api.status_code == 409
    before = state(client)
    refused = anon.post(f"/key-results/{tree.team_kr}/delete", data={"csrf_token": token})
    assert refused.status_code == 409
    assert api.json()["detail"] in html.unescape(refused.text)
    assert state(client) == before

    gone = anon.post(
        f"/key-results/{tree.team_kr}/delete",
        data={"csrf_token": token, "cascade": "true"},
        follow_redirects=False,
    )
    assert gone.status_code == 303
    assert gone.headers["location"] == f"/okrs?cycle_id={tree.cycle_id}#objective-{tree.team}"
    assert client.get(f"/api/v1/key-results/{tree.team_kr}").status_code == 404


def test_an_editor_may_not_delete_a_mapped_key_result(
    client: TestClient, anon: TestClient, tree: Tree
) -> None:
    mapping(client, tree.company_kr, data_source(client)["id"])
    token = sign_in(anon, key_of(client, "editor"))
    confirm = anon.get(f"/key-results/{tree.company_kr}/delete").text
    assert 'id="delete-needs-admin"' in confirm
    assert f'action="/key-results/{tree.company_kr}/delete"' not in confirm
    before = state(client)
    refused = anon.post(
        f"/key-results/{tree.company_kr}/delete", data={"csrf_token": token, "cascade": "true"}
    )
    assert refused.status_code == 403
    assert "managed by admins" in refused.text
    assert state(client) == before


# --- who may, and with which token ------------------------------------------------------------


def writes(tree: Tree, kr_id: int) -> list[tuple[str, dict[str, str]]]:
    """Every form that writes, with input it would accept."""
    return [
        ("/cycles", {"name": "Q9", "start_date": "2026-10-01", "end_date": "2026-12-31"}),
        (
            f"/cycles/{tree.cycle_id}/edit",
            {"name": "Renamed", "start_date": "2026-01-01", "end_date": "2026-12-31"},
        ),
        (f"/cycles/{tree.cycle_id}/delete", {"cascade": "true"}),
        (f"/okrs/objectives/{tree.other_team}/edit", {"title": "Renamed", "level": "team"}),
        (f"/okrs/objectives/{tree.other_team}/delete", {"cascade": "true"}),
        (
            f"/okrs/objectives/{tree.other_team}/key-results",
            {**EVERY_FIELD, "objective_id": str(tree.other_team)},
        ),
        (f"/key-results/{kr_id}/edit", {**EVERY_FIELD, "objective_id": str(tree.other_team)}),
        (f"/key-results/{kr_id}/delete", {"cascade": "true"}),
    ]


def _other_kr(client: TestClient, tree: Tree) -> int:
    kr_id: int = client.get(f"/api/v1/objectives/{tree.other_team}").json()["key_results"][0]["id"]
    return kr_id


def test_a_form_without_its_csrf_token_changes_nothing(
    client: TestClient, anon: TestClient, tree: Tree
) -> None:
    kr_id = _other_kr(client, tree)
    mine, theirs = key_of(client, "editor"), key_of(client, "editor")
    other = TestClient(anon.app)
    foreign = sign_in(other, theirs)  # another session's token is foreign here
    sign_in(anon, mine)
    before = state(client)
    for path, form in writes(tree, kr_id):
        for extra, headers in (
            ({}, {}),
            ({"csrf_token": "not-the-token"}, {}),
            ({"csrf_token": foreign}, {}),
            ({"csrf_token": ""}, {"Origin": "https://evil.example"}),
        ):
            refused = anon.post(path, data=form | extra, headers=headers, follow_redirects=False)
            assert refused.status_code == 403, (path, extra)
            assert "Nothing was changed" in refused.text
    assert state(client) == before


def test_a_viewer_sees_no_control_and_may_not_post(
    client: TestClient, anon: TestClient, tree: Tree
) -> None:
    kr_id = _other_kr(client, tree)
    token = sign_in(anon, key_of(client, "viewer"))
    before = state(client)
    for path, form in writes(tree, kr_id):
        refused = anon.post(path, data=form | {"csrf_token": token}, follow_redirects=False)
        assert refused.status_code == 403, path
        assert "needs the editor role" in refused.text
    assert state(client) == before

    for path in (
        f"/cycles/{tree.cycle_id}/edit",
        f"/cycles/{tree.cycle_id}/delete",
        f"/okrs/objectives/{tree.team}/edit",
        f"/okrs/objectives/{tree.team}/delete",
        f"/okrs/objectives/{tree.team}/key-results/new",
        f"/key-results/{kr_id}/edit",
        f"/key-results/{kr_id}/delete",
    ):
        assert anon.get(path).status_code == 403, path

    for path in ("/cycles", f"/okrs?cycle_id={tree.cycle_id}", f"/key-results/{kr_id}"):
        page = anon.get(path)
        assert page.status_code == 200, path
        text = page.text
        assert ">Cycles</a>" in text
        for control in ("/edit", "/delete", "/key-results/new"):
            assert control not in text, (path, control)
        forms = re.findall(r'<form[^>]*method="post"[^>]*action="([^"]*)"', text)
        assert forms == ["/logout"], (path, forms)


# --- a fixed number of statements per page ----------------------------------------------------


@contextmanager
def count_statements() -> Iterator[list[str]]:
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_the_form_pages_cost_the_same_statements_for_few_and_many_objectives(
    client: TestClient,
) -> None:
    def seed(n: int, name: str) -> tuple[int, int, int]:
        c = cycle(client, name=name)["id"]
        top = objective(client, c, title="top", level="company")["id"]
        first_kr = key_result(client, top, title="top kr")["id"]
        check_in(client, first_kr, "2026-07-03", 5)
        last = top
        for i in range(n):
            last = objective(client, c, title=f"o{i}", level="team", parent_key_result_id=first_kr)[
                "id"
            ]
            kr = key_result(client, last, title=f"kr {i}")["id"]
            check_in(client, kr, "2026-07-03", 50 + i)
        return c, last, first_kr

    counts: dict[str, list[int]] = {}
    for n, name in ((1, "small"), (12, "large")):
        c, obj, kr = seed(n, name)
        for page in (
            "/cycles",
            f"/cycles/{c}/edit",
            f"/cycles/{c}/delete",
            f"/okrs/objectives/{obj}/edit",
            f"/okrs/objectives/{obj}/delete",
            f"/okrs/objectives/{obj}/key-results/new",
            f"/key-results/{kr}/edit",
            f"/key-results/{kr}/delete",
        ):
            key = re.sub(r"\d+", "N", page)
            with count_statements() as statements:
                assert client.get(page).status_code == 200, page
            counts.setdefault(key, []).append(len(statements))
    uneven = {page: n for page, n in counts.items() if n[0] != n[1]}
    assert not uneven
