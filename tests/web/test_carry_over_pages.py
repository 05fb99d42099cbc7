"""Carrying unfinished key results into the next cycle in the browser (SPEC sections 6 and 8):
the checklist with the unfinished ticked, the same copies as the API's carry-over, the API's
refusals on the form, and no write for a viewer or without the CSRF token."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from web.browser_session import sign_in
from web.live import (
    ARTIFACTS,
    PHONE_WIDTH,
    at_phone_width,
    no_sideways_scroll,
    signed_in_page,
    unexpected,
)

from app.core.settings import get_settings
from factories import closing_quarter, create, cycle, key_result, objective


def key_of(client: TestClient, role: str) -> str:
    key: str = create(client, "api-keys", name=f"{role} person", role=role)["key"]
    return key


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A push source's secret is stored encrypted."""
    monkeypatch.setenv("KRSYNC_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()


@pytest.fixture
def q3(client: TestClient, secret_key: None) -> dict[str, int]:
    return closing_quarter(client)


def ticked(page: str) -> set[int]:
    return {int(v) for v in re.findall(r'name="key_result_ids" value="(\d+)" checked', page)}


def listed(page: str) -> set[int]:
    return {int(v) for v in re.findall(r'name="key_result_ids" value="(\d+)"', page)}


def selected(page: str) -> str:
    found = re.search(r'<option value="(\d*)" selected>', page)
    assert found, "no cycle chosen"
    return found.group(1)


def beside(page: str, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="carry-{field}-error">([^<]*)</p>', page)
    assert found, f"no message beside {field}:\n{page[-1500:]}"
    return html.unescape(found.group(1))


def q4_snapshot(client: TestClient, cycle_id: int) -> list[dict[str, Any]]:
    """What a cycle holds after a carry-over, without ids: objectives, their alignment, key
    results with their definitions, mappings and check-ins."""
    objectives = client.get(f"/api/v1/objectives?cycle_id={cycle_id}").json()["items"]
    titles = {kr["id"]: kr["title"] for o in objectives for kr in o["key_results"]}
    shown = []
    for o in objectives:
        krs = []
        for kr in o["key_results"]:
            maps = client.get(f"/api/v1/mappings?key_result_id={kr['id']}").json()["items"]
            days = client.get(f"/api/v1/key-results/{kr['id']}/check-ins").json()["items"]
            krs.append(
                {
                    **{
                        k: kr[k]
                        for k in (
                            "title",
                            "owner",
                            "kind",
                            "target_value",
                            "target_change_pct",
                            "start_value",
                        )
                    },
                    "mappings": [(m["metric"], m["group"], m["scale"]) for m in maps],
                    "check_ins": sorted((d["date"], d["value"]) for d in days),
                }
            )
        shown.append(
            {
                **{k: o[k] for k in ("title", "level", "owner", "team")},
                "aligned_to": titles.get(o["parent_key_result_id"]),
                "key_results": krs,
            }
        )
    return shown


def test_the_form_lists_every_key_result_and_ticks_the_unfinished(
    anon: TestClient, client: TestClient, q3: dict[str, int]
) -> None:
    sign_in(anon, key_of(client, "editor"))
    page = anon.get(f"/cycles/{q3['q3']}/carry-over")
    assert page.status_code == 200
    text = page.text
    assert listed(text) == {q3["demos"], q3["signups"], q3["pushed"], q3["content"]}
    # The API's default: everything not done as the cycle ended.
    assert ticked(text) == {q3["demos"], q3["pushed"], q3["content"]}
    assert selected(text) == str(q3["q4"])  # the next cycle by start date
    assert f'<option value="{q3["q2"]}">' in text  # the other cycles are there to pick
    assert f'<option value="{q3["q3"]}"' not in text  # never the cycle itself
    assert "3 of 4 key results are not done and ticked" in text
    signups = text.split(f'data-kr-id="{q3["signups"]}"', 1)[1].split("</li>", 1)[0]
    assert "Done" in signups
    assert "100%" in signups
    team = text.split(f'id="carry-objective-{q3["team"]}"', 1)[1].split("</ul>", 1)[0]
    assert "Demos from content" in team
    assert "20 demo requests from the blog" in team
    # An editor finds the way in from the cycles page and from the retrospective.
    assert f'href="/cycles/{q3["q3"]}/carry-over"' in anon.get("/cycles").text
    assert (
        f'href="/cycles/{q3["q3"]}/carry-over"'
        in anon.get(f"/cycles/{q3['q3']}/retrospective").text
    )


def test_without_another_cycle_the_page_says_so(
    anon: TestClient, client: TestClient, secret_key: None
) -> None:
    only = cycle(client)["id"]
    key_result(client, objective(client, only)["id"])
    sign_in(anon, key_of(client, "editor"))
    page = anon.get(f"/cycles/{only}/carry-over").text
    assert 'id="carry-no-cycle"' in page
    assert 'href="/cycles#new-cycle-title"' in page
    assert 'action="/cycles/' not in page.split("</header>", 1)[1]
    # Only an earlier cycle: none is chosen for the person, and the way forward is named.
    cycle(client, name="2026-Q2", start_date="2026-04-01", end_date="2026-06-30")
    page = anon.get(f"/cycles/{only}/carry-over").text
    assert selected(page) == ""
    assert "No cycle starts after this one" in page


def test_a_carry_over_in_the_browser_copies_what_the_api_copies(
    anon: TestClient, client: TestClient, q3: dict[str, int]
) -> None:
    twin = closing_quarter(client, " (API)")
    token = sign_in(anon, key_of(client, "editor"))
    url = f"/cycles/{q3['q3']}/carry-over"
    chosen = sorted(ticked(anon.get(url).text))
    done = anon.post(
        url,
        data={"csrf_token": token, "to_cycle_id": str(q3["q4"]), "key_result_ids": chosen},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text[-800:]
    assert done.headers["location"] == f"/okrs?cycle_id={q3['q4']}&carried_from={q3['q3']}"
    api = client.post(f"/api/v1/cycles/{twin['q3']}/carry-over", json={"to_cycle_id": twin["q4"]})
    assert api.status_code == 200
    assert len(api.json()["key_results"]) == 3
    assert len(api.json()["objectives"]) == 2

    browser_copy = q4_snapshot(client, q3["q4"])
    assert browser_copy == q4_snapshot(client, twin["q4"])
    assert [len(o["key_results"]) for o in browser_copy] == [2, 1]
    assert browser_copy[0]["key_results"][1]["mappings"] == [("revenue", "eu", 2.0)]
    assert browser_copy[1]["aligned_to"] == "Grow demo requests by 20%"

    landed = anon.get(done.headers["location"]).text
    note = re.search(r'<p class="carried-note"[^>]*>(.*?)</p>', landed, re.S)
    assert note, landed[:2000]
    said = re.sub(r"<[^>]+>", "", html.unescape(note.group(1)))
    assert "Carried over from 2026-Q3: 3 key results under 2 objectives" in said
    assert landed.count('class="tag tag-carried"') == 3
    audit = client.get(
        "/api/v1/audit-events", params={"entity": "cycle", "entity_id": q3["q3"]}
    ).json()
    assert audit["items"][0]["action"] == "carry_over"
    assert audit["items"][0]["actor"] == "key:editor person"


def test_only_the_ticked_key_results_go(
    anon: TestClient, client: TestClient, q3: dict[str, int]
) -> None:
    token = sign_in(anon, key_of(client, "editor"))
    done = anon.post(
        f"/cycles/{q3['q3']}/carry-over",
        data={
            "csrf_token": token,
            "to_cycle_id": str(q3["q4"]),
            "key_result_ids": [str(q3["signups"])],
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    [company] = q4_snapshot(client, q3["q4"])
    assert [kr["title"] for kr in company["key_results"]] == ["500 sign-ups"]
    landed = anon.get(done.headers["location"]).text
    assert "1 key result</strong> under <strong>1 objective</strong>" in landed


@pytest.mark.parametrize(
    ("target", "ids", "field", "words"),
    [
        ("q3", "default", "to_cycle_id", "not into their own"),
        ("q2", "default", "to_cycle_id", "into a later cycle"),
        ("999999", "default", "to_cycle_id", "does not exist"),
        ("q4", "foreign", "key_result_ids", "not in cycle"),
        ("q4", "none", "key_result_ids", "at least 1"),
        ("", "default", "to_cycle_id", ""),
    ],
)
def test_a_refusal_shows_the_apis_message_on_the_form(
    anon: TestClient,
    client: TestClient,
    q3: dict[str, int],
    target: str,
    ids: str,
    field: str,
    words: str,
) -> None:
    token = sign_in(anon, key_of(client, "editor"))
    to = str(q3[target]) if target in q3 else target
    kr_ids = {
        "default": [str(q3["demos"]), str(q3["pushed"])],
        "foreign": [str(q3["demos"]), "999999"],
        "none": [],
    }[ids]
    page = anon.post(
        f"/cycles/{q3['q3']}/carry-over",
        data={"csrf_token": token, "to_cycle_id": to, "key_result_ids": kr_ids},
    )
    assert page.status_code == 422, page.text[-800:]
    message = beside(page.text, field)
    assert words in message
    if ids != "none" and target:
        api = client.post(
            f"/api/v1/cycles/{q3['q3']}/carry-over",
            json={"to_cycle_id": int(to), "key_result_ids": [int(i) for i in kr_ids]},
        )
        assert api.status_code == 422
        assert message == api.json()["detail"]
    # What the person chose is shown again, and nothing was copied.
    if ids == "default":
        assert ticked(page.text) == {q3["demos"], q3["pushed"]}
    assert client.get(f"/api/v1/objectives?cycle_id={q3['q4']}").json()["total"] == 0


def test_a_viewer_sees_no_form_and_is_refused_as_is_a_post_without_the_token(
    anon: TestClient, client: TestClient, q3: dict[str, int]
) -> None:
    url = f"/cycles/{q3['q3']}/carry-over"
    body = {"to_cycle_id": str(q3["q4"]), "key_result_ids": [str(q3["demos"])]}
    sign_in(anon, key_of(client, "editor"))
    missing = anon.post(url, data=body)
    assert missing.status_code == 403
    assert "Form refused" in missing.text
    anon.cookies.clear()
    token = sign_in(anon, key_of(client, "viewer"))
    refused = anon.post(url, data={"csrf_token": token, **body})
    assert refused.status_code == 403
    assert "needs the editor role" in refused.text
    assert anon.get(url).status_code == 403
    assert f'href="{url}"' not in anon.get("/cycles").text
    assert f'href="{url}"' not in anon.get(f"/cycles/{q3['q3']}/retrospective").text
    assert client.get(f"/api/v1/objectives?cycle_id={q3['q4']}").json()["total"] == 0


@pytest.mark.one_database
def test_an_editor_closes_a_cycle_and_carries_it_over_in_a_real_browser(
    chromium_path: str, client: TestClient, live_server: str
) -> None:
    """After closing, the way a person finishing a cycle goes: the cycles page, the checklist
    at desktop and phone width, the carry-over, and the next cycle's OKRs saying what came."""

    ids = closing_quarter(client, with_source=False)
    editor = create(client, "api-keys", name="Ana (marketing ops)", role="editor")["key"]
    problems: list[str] = []
    with signed_in_page(chromium_path, problems, f"{live_server}/", editor) as page:
        page.click("nav.nav >> text=Cycles")
        page.click(f"a[href='/cycles/{ids['q3']}/close']")
        page.click("text=Close the cycle and freeze its figures")
        page.wait_for_selector(f"#cycle-{ids['q3']}-frozen")
        page.click(f"a[href='/cycles/{ids['q3']}/carry-over']")
        page.wait_for_selector("h1:has-text('Carry over to the next cycle')")
        assert page.locator("#carry-open").count() == 0  # closed: nothing to warn of
        assert page.input_value("#carry-to_cycle_id") == str(ids["q4"])
        boxes = page.locator("input[name=key_result_ids]:checked")
        assert sorted(int(v) for v in boxes.evaluate_all("bs => bs.map(b => b.value)")) == (
            sorted([ids["demos"], ids["pushed"], ids["content"]])
        )
        page.screenshot(path=str(ARTIFACTS / "carry-over-1400.png"), full_page=True)
        at_phone_width(page, "carry-over-375.png")

        # A refusal at phone width: an earlier cycle, in the API's words, on the form.
        page.select_option("#carry-to_cycle_id", str(ids["q2"]))
        page.click("text=Carry over the ticked key results")
        assert "into a later cycle" in page.locator("#carry-to_cycle_id-error").inner_text()
        no_sideways_scroll(page, PHONE_WIDTH)
        page.screenshot(path=str(ARTIFACTS / "carry-over-refused-375.png"), full_page=True)

        page.select_option("#carry-to_cycle_id", str(ids["q4"]))
        page.uncheck(f"#carry-kr-{ids['content']}")
        page.click("text=Carry over the ticked key results")
        page.wait_for_selector("#carried-note")
        note = page.locator("#carried-note").inner_text()
        assert "2 key results under 1 objective" in note, note
        assert page.locator(".tag-carried").count() == 2
        at_phone_width(page, "carry-over-done-375.png")
        page.set_viewport_size({"width": 1400, "height": 900})
        page.screenshot(path=str(ARTIFACTS / "carry-over-done-1400.png"), full_page=True)
    assert unexpected(problems) == []
