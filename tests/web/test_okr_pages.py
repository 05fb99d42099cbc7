"""The OKRs page (SPEC section 6: objectives "with alignment to a parent key result, shown as a
tree from company to team to individual"; filters by team, owner and status; editors write)."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from fastapi.testclient import TestClient
from web.browser_session import sign_in
from web.workspace import seed_tree as seed

from factories import create

_VOID = {"input", "meta", "link", "br", "img", "hr", "col", "source", "wbr", "area"}


class _Ancestry(HTMLParser):
    """The ids of the elements enclosing each element with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.ancestors: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element_id = dict(attrs).get("id") or ""
        if element_id:
            self.ancestors[element_id] = [i for i in self.stack if i]
        if tag not in _VOID:
            self.stack.append(element_id)

    def handle_endtag(self, tag: str) -> None:
        if tag not in _VOID and self.stack:
            self.stack.pop()


def ancestors(page: str) -> dict[str, list[str]]:
    parser = _Ancestry()
    parser.feed(page)
    return parser.ancestors


def key_of(client: TestClient, role: str) -> str:
    key: str = create(client, "api-keys", name=f"{role} person", role=role)["key"]
    return key


def shown_objectives(page: str) -> set[int]:
    return {int(i) for i in re.findall(r'data-objective-id="(\d+)"', page)}


def test_the_tree_nests_aligned_objectives_under_their_key_result(
    client: TestClient, anon: TestClient
) -> None:
    tree = seed(client)
    sign_in(anon, key_of(client, "viewer"))
    page = anon.get("/okrs", params={"cycle_id": tree.cycle_id})
    assert page.status_code == 200
    found = ancestors(page.text)
    team_path = found[f"objective-{tree.team}"]
    assert team_path[-2:] == [f"objective-{tree.company}", f"kr-{tree.company_kr}"]
    individual_path = found[f"objective-{tree.individual}"]
    assert individual_path[-4:] == [
        f"objective-{tree.company}",
        f"kr-{tree.company_kr}",
        f"objective-{tree.team}",
        f"kr-{tree.team_kr}",
    ]
    assert f"objective-{tree.company}" not in found[f"objective-{tree.other_team}"]
    assert f'href="/key-results/{tree.company_kr}"' in page.text
    assert ">OKRs</a>" in page.text  # in the top bar, for viewers too


def test_filters_narrow_the_tree_and_refuse_as_the_api_does(
    client: TestClient, anon: TestClient
) -> None:
    tree = seed(client)
    sign_in(anon, key_of(client, "viewer"))
    base = {"cycle_id": tree.cycle_id}
    for params, expected in (
        ({}, {tree.company, tree.team, tree.individual, tree.other_team}),
        ({"team": "Social"}, {tree.team, tree.individual}),
        ({"owner": "Dana"}, {tree.team}),
        ({"status": "done"}, {tree.team}),
        ({"team": "Email", "status": "done"}, set()),
    ):
        page = anon.get("/okrs", params=base | params)
        assert page.status_code == 200, params
        assert shown_objectives(page.text) == expected, params
    # Filtered out, the parent leaves a link to the key result it is aligned to.
    social = anon.get("/okrs", params=base | {"team": "Social"}).text
    assert f'Aligned to <a href="/key-results/{tree.company_kr}">' in social
    done = anon.get("/okrs", params=base | {"status": "done"}).text
    assert f'id="kr-{tree.team_kr}"' in done
    assert 'data-status="no_data"' not in done

    for name, value, api_path in (
        ("status", "nope", "/api/v1/key-results"),
        ("cycle_id", "abc", "/api/v1/objectives"),
        ("owner", "x" * 201, "/api/v1/objectives"),
    ):
        api = client.get(api_path, params={name: value})
        assert api.status_code == 422
        message = api.json()["errors"][0]["msg"]
        page = anon.get("/okrs", params={name: value})
        assert page.status_code == 422, name
        beside = re.search(
            rf'<p class="field-error" id="filter-{name}-error">([^<]*)</p>', page.text
        )
        assert beside, page.text[-600:]
        assert html.unescape(beside.group(1)) == message


def test_a_viewer_sees_no_form_and_may_not_post(client: TestClient, anon: TestClient) -> None:
    tree = seed(client)
    token = sign_in(anon, key_of(client, "viewer"))
    page = anon.get("/okrs").text
    assert "New objective" not in page
    assert 'action="/okrs/objectives"' not in page
    refused = anon.post(
        "/okrs/objectives",
        data={"csrf_token": token, "cycle_id": tree.cycle_id, "title": "Sneaky"},
    )
    assert refused.status_code == 403
    assert "needs the editor role" in refused.text
    assert client.get("/api/v1/objectives", params={"cycle_id": tree.cycle_id}).json()["total"] == 4


def test_an_editor_creates_an_objective_aligned_to_a_company_key_result(
    client: TestClient, anon: TestClient
) -> None:
    tree = seed(client)
    token = sign_in(anon, key_of(client, "editor"))
    page = anon.get("/okrs").text
    assert (
        f'<option value="{tree.company_kr}">600 marketing leads — Grow qualified pipeline' in page
    )
    made = anon.post(
        "/okrs/objectives",
        data={
            "csrf_token": token,
            "cycle_id": tree.cycle_id,
            "title": "Paid search brings leads",
            "description": "",
            "level": "team",
            "team": "Paid",
            "owner": "Ari",
            "parent_key_result_id": tree.company_kr,
        },
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text[-600:]
    listed = client.get("/api/v1/objectives", params={"team": "Paid"}).json()["items"]
    assert [(o["title"], o["owner"], o["level"], o["parent_key_result_id"]) for o in listed] == [
        ("Paid search brings leads", "Ari", "team", tree.company_kr)
    ]
    assert made.headers["location"] == f"/okrs?cycle_id={tree.cycle_id}#objective-{listed[0]['id']}"
    found = ancestors(anon.get(made.headers["location"]).text)
    assert found[f"objective-{listed[0]['id']}"][-1] == f"kr-{tree.company_kr}"


def test_a_refused_form_shows_the_api_message_beside_the_field(
    client: TestClient, anon: TestClient
) -> None:
    tree = seed(client)
    token = sign_in(anon, key_of(client, "editor"))
    for form, field in (
        ({"title": "   "}, "title"),
        ({"title": "Fine", "level": "department"}, "level"),
        ({"title": "Fine", "parent_key_result_id": 999999}, "parent_key_result_id"),
    ):
        api = client.post("/api/v1/objectives", json={"cycle_id": tree.cycle_id, **form})
        assert api.status_code == 422
        body = api.json()
        # Refused by the schema, the API lists errors; by the service, it names the field.
        message = body["errors"][0]["msg"] if body["errors"] else body["detail"]
        assert body["errors"] or body["field"] == field
        posted = {"level": "team", **form}
        page = anon.post(
            "/okrs/objectives",
            data={"csrf_token": token, "cycle_id": tree.cycle_id, **posted},
        )
        assert page.status_code == 422, field
        beside = re.search(
            rf'<p class="field-error" id="objective-{field}-error">([^<]*)</p>', page.text
        )
        assert beside, page.text[-800:]
        assert html.unescape(beside.group(1)) == message
        assert f'aria-describedby="objective-{field}-error"' in page.text
    assert client.get("/api/v1/objectives", params={"cycle_id": tree.cycle_id}).json()["total"] == 4


def test_a_form_without_its_csrf_token_changes_nothing(
    client: TestClient, anon: TestClient
) -> None:
    tree = seed(client)
    sign_in(anon, key_of(client, "editor"))
    form = {"cycle_id": str(tree.cycle_id), "title": "Forged", "level": "team"}
    for extra, headers in (
        ({}, {}),
        ({"csrf_token": "not-the-token"}, {}),
        ({"csrf_token": ""}, {"Origin": "https://evil.example"}),
    ):
        refused = anon.post("/okrs/objectives", data=form | extra, headers=headers)
        assert refused.status_code == 403
        assert "Nothing was changed" in refused.text
    assert client.get("/api/v1/objectives", params={"cycle_id": tree.cycle_id}).json()["total"] == 4
