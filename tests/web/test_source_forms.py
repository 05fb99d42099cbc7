"""Data sources in the browser (SPEC section 6, "Data sources"): the connector gallery, the form
generated from each connector's JSON Schemas (secrets write-only: "set", "replace"), edit and
delete, "Test connection" and "Sync now". Admins only; every write carries the CSRF token; a
refusal reads in the API's words beside the field it names; no page ever shows a secret."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from web.browser_session import csrf_token, sign_in

from app.core import clock
from app.core.db import session_scope
from app.core.settings import get_settings
from app.models import DataSource
from app.sources import service
from conftest import ADMIN_KEY
from connectors.registry import load_connectors
from factories import api_key_headers, data_source, key_result, mapping, workspace

CANARY = "canary-s3cr3t-7c1d-do-not-show"
OTHER_CANARY = "canary-second-s3cr3t-55aa"


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KRSYNC_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def admin(anon: TestClient) -> tuple[TestClient, str]:
    """A browser signed in as the admin, and its CSRF token."""
    return anon, sign_in(anon, ADMIN_KEY)


def _sources(client: TestClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get("/api/v1/data-sources").json()["items"]
    return items


def _stored_credentials(source_id: int) -> dict[str, Any]:
    with session_scope() as s:
        row = s.get(DataSource, source_id)
        assert row is not None
        return service.stored_credentials(row)


def _error_beside(html: str, field_id: str) -> str:
    """The message shown under the field with this id (and the field says it is invalid); a
    section (`f-config`, `f-credentials`) shows a message about no one field at its top."""
    found = re.search(rf'<p class="field-error" id="{re.escape(field_id)}-error">([^<]*)</p>', html)
    assert found, f"no error beside {field_id}"
    control = re.search(rf'<(input|select|textarea) id="{re.escape(field_id)}"[^>]*>', html)
    if field_id not in ("f-config", "f-credentials"):
        assert control, field_id
        assert 'aria-invalid="true"' in control.group(0), control
    return found.group(1)


def _value_of(html: str, field_id: str) -> str:
    found = re.search(rf'id="{re.escape(field_id)}"[^>]*value="([^"]*)"', html)
    assert found, field_id
    return found.group(1)


# --- the gallery ------------------------------------------------------------------------------


def test_the_gallery_lists_every_installed_connector_by_category(
    client: TestClient, admin: tuple[TestClient, str]
) -> None:
    browser, _ = admin
    page = browser.get("/sources/new")
    assert page.status_code == 200
    listed = client.get("/api/v1/connectors", params={"limit": 100}).json()["items"]
    for item in listed:
        assert f'href="/sources/new/{item["key"]}"' in page.text, item["key"]
        assert item["name"] in page.text.replace("&amp;", "&")
    headings = re.findall(r'<h2 id="cat-\d+">([^<]*)</h2>', page.text)
    assert headings[:2] == ["Analytics", "CRM"]
    hubspot = re.search(r'data-connector="hubspot">.*?</li>', page.text, re.S)
    assert hubspot
    assert "Connect with HubSpot" in hubspot.group(0)
    ga4 = re.search(r'data-connector="ga4">.*?</li>', page.text, re.S)
    assert ga4
    assert "Connect with Google" in ga4.group(0)
    demo = re.search(r'data-connector="demo">.*?</li>', page.text, re.S)
    assert demo
    assert "Connect with" not in demo.group(0)
    assert "Synthetic figures for the embedded demo" in demo.group(0)  # from its docstring
    assert 'href="/sources/new"' in browser.get("/sources").text


@pytest.mark.parametrize("key", sorted(load_connectors()))
def test_every_connector_has_a_form(admin: tuple[TestClient, str], key: str) -> None:
    browser, _ = admin
    page = browser.get(f"/sources/new/{key}")
    assert page.status_code == 200, page.text[-500:]
    assert f'action="/sources/new/{key}"' in page.text
    assert 'name="csrf_token"' in page.text
    for name in ("name", "timezone", "schedule", "lookback_days", "enabled"):
        assert f'name="{name}"' in page.text, name
    schema = load_connectors()[key].describe()
    for prop in schema["config"].get("properties", {}):
        assert f'name="config.{prop}"' in page.text, prop
    for prop in schema["credentials"].get("properties", {}):
        control = re.search(rf'<(input|textarea)[^>]*name="credentials\.{prop}"[^>]*>', page.text)
        assert control, prop
        assert "value=" not in control.group(0)  # write-only: never a value, not even a default


def test_the_forms_say_what_each_field_is(admin: tuple[TestClient, str]) -> None:
    browser, _ = admin
    ga4 = browser.get("/sources/new/ga4").text
    assert "The GA4 property&#39;s numeric ID" in ga4  # the schema's description, as help
    assert re.search(r'for="f-config-property_id">Property ID <span class="req">required', ga4)
    assert "Connect with Google" in ga4  # credentials may wait for the button
    rest = browser.get("/sources/new/rest_json").text
    assert re.search(r'<select id="f-config-method" name="config.method"', rest)
    assert '<option value="GET" selected>GET</option>' in rest  # the default, pre-selected
    assert 'name="config.pagination.page.size"' in rest  # a variant's own fields
    assert 'type="checkbox" name="config.follow_other_origins"' in rest
    mailchimp = browser.get("/sources/new/mailchimp").text
    assert re.search(
        r'name="config.page_size" type="number" step="1" min="1" max="1000"', mailchimp
    )
    assert _value_of(mailchimp, "f-config-page_size") == "1000"
    assert 'value="1000"' in mailchimp
    assert browser.get("/sources/new/no-such").status_code == 404


# --- create -----------------------------------------------------------------------------------


def _demo_form(token: str, **over: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "name": "Web analytics (demo)",
        "timezone": "Europe/Berlin",
        "schedule": "30 4 * * *",
        "lookback_days": "5",
        "enabled": "on",
        "config.seed": "11",
    } | over


def test_an_admin_creates_a_source(client: TestClient, admin: tuple[TestClient, str]) -> None:
    browser, token = admin
    response = browser.post("/sources/new/demo", data=_demo_form(token), follow_redirects=False)
    assert response.status_code == 303, response.text[-800:]
    [made] = _sources(client)
    assert response.headers["location"] == f"/sources/{made['id']}"
    assert made["config"] == {"seed": 11}  # a number, as the API would store it
    assert (made["timezone"], made["schedule"], made["lookback_days"], made["enabled"]) == (
        "Europe/Berlin",
        "30 4 * * *",
        5,
        True,
    )


def test_a_source_with_credentials_never_shows_them(
    client: TestClient, admin: tuple[TestClient, str], secret_key: None
) -> None:
    browser, token = admin
    form = {
        "csrf_token": token,
        "name": "HubSpot",
        "timezone": "UTC",
        "schedule": "0 3 * * *",
        "lookback_days": "7",
        "enabled": "on",
        "config.base_url": "https://api.hubapi.com",
        "credentials.access_token": CANARY,
    }
    response = browser.post("/sources/new/hubspot", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text[-800:]
    sid = int(response.headers["location"].rsplit("/", 1)[1])
    assert _stored_credentials(sid) == {"access_token": CANARY}
    for path in ("/sources", f"/sources/{sid}", f"/sources/{sid}/edit", f"/sources/{sid}/delete"):
        page = browser.get(path)
        assert page.status_code == 200, path
        assert CANARY not in page.text, path
    edit = browser.get(f"/sources/{sid}/edit").text
    assert re.search(
        r'for="f-credentials-access_token">Access token <span class="tag tag-set">set', edit
    )
    assert re.search(
        r'for="f-credentials-client_id">Client ID <span class="tag tag-unset">not set', edit
    )
    assert "Replace (blank keeps it)" in edit

    # Saved with the secrets left blank: they stay as stored.
    kept = {**form, "name": "HubSpot CRM", "credentials.access_token": ""}
    response = browser.post(f"/sources/{sid}/edit", data=kept, follow_redirects=False)
    assert response.status_code == 303, response.text[-800:]
    assert _stored_credentials(sid) == {"access_token": CANARY}
    assert client.get(f"/api/v1/data-sources/{sid}").json()["name"] == "HubSpot CRM"

    # Typed in: over what is stored, checked whole by the connector's model as the API does.
    incomplete = {**kept, "credentials.client_id": "app-1"}
    response = browser.post(f"/sources/{sid}/edit", data=incomplete)
    assert response.status_code == 422
    assert "OAuth needs `client_id`, `client_secret` and `refresh_token`" in _error_beside(
        response.text, "f-credentials"
    ).replace("&#96;", "`")
    replaced = {
        **incomplete,
        "credentials.client_secret": OTHER_CANARY,
        "credentials.refresh_token": "rt-1",
    }
    response = browser.post(f"/sources/{sid}/edit", data=replaced, follow_redirects=False)
    assert response.status_code == 303, response.text[-800:]
    both = {
        "access_token": CANARY,
        "client_id": "app-1",
        "client_secret": OTHER_CANARY,
        "refresh_token": "rt-1",
    }
    assert _stored_credentials(sid) == both
    assert OTHER_CANARY not in browser.get(f"/sources/{sid}/edit").text

    # A refusal re-shows the form without the secret typed into it.
    refused = {**kept, "schedule": "every day", "credentials.access_token": OTHER_CANARY}
    response = browser.post(f"/sources/{sid}/edit", data=refused)
    assert response.status_code == 422
    assert OTHER_CANARY not in response.text
    assert CANARY not in response.text
    assert "not a 5-field cron expression" in _error_beside(response.text, "f-schedule")
    assert _value_of(response.text, "f-schedule") == "every day"  # kept as typed
    assert _stored_credentials(sid) == both

    # Removing them is a choice of its own.
    cleared = {**kept, "credentials_clear": "yes"}
    assert browser.post(f"/sources/{sid}/edit", data=cleared).status_code == 200
    assert client.get(f"/api/v1/data-sources/{sid}").json()["credentials_set"] is False


def test_a_bad_config_is_refused_beside_its_field(
    client: TestClient, admin: tuple[TestClient, str], secret_key: None
) -> None:
    browser, token = admin
    form = {
        "csrf_token": token,
        "name": "GA4 main",
        "timezone": "Europe/Paris",
        "schedule": "0 3 * * *",
        "lookback_days": "3",
        "enabled": "on",
        "config.property_id": "not-a-number",
        "credentials.client_secret": CANARY,
    }
    response = browser.post("/sources/new/ga4", data=form)
    assert response.status_code == 422
    api = client.post(
        "/api/v1/data-sources",
        json={"name": "GA4 main", "connector": "ga4", "config": {"property_id": "not-a-number"}},
    ).json()
    message = _error_beside(response.text, "f-config-property_id")
    assert api["field"] == "config.property_id"
    assert api["detail"] == f"config.property_id: {message}".replace("&#39;", "'")
    assert _value_of(response.text, "f-config-property_id") == "not-a-number"
    assert _value_of(response.text, "f-name") == "GA4 main"
    assert _value_of(response.text, "f-timezone") == "Europe/Paris"
    assert CANARY not in response.text
    assert _sources(client) == []

    missing = browser.post("/sources/new/ga4", data={**form, "config.property_id": ""})
    assert missing.status_code == 422
    assert _error_beside(missing.text, "f-config-property_id") == "Field required"

    nested = browser.post(
        "/sources/new/rest_json",
        data={
            **form,
            "config.url": "https://api.example.com/x",
            "config.pagination": "page",
            "config.pagination.page.size": "lots",
            "config.headers": "no equals sign",
        },
    )
    assert nested.status_code == 422
    assert "name=value" in _error_beside(nested.text, "f-config-headers")
    fixed = browser.post(
        "/sources/new/rest_json",
        data={
            **form,
            "config.url": "https://api.example.com/x",
            "config.pagination": "page",
            "config.pagination.page.size": "lots",
        },
    )
    assert fixed.status_code == 422
    assert "valid integer" in _error_beside(fixed.text, "f-config-pagination-page-size")


def test_the_source_fields_are_checked_as_the_api_checks_them(
    client: TestClient, admin: tuple[TestClient, str]
) -> None:
    browser, token = admin
    bad = _demo_form(token, name="", timezone="Mars/Olympus", lookback_days="91")
    response = browser.post("/sources/new/demo", data=bad)
    assert response.status_code == 422
    assert "IANA timezone" in _error_beside(response.text, "f-timezone")
    assert "less than or equal to 90" in _error_beside(response.text, "f-lookback_days")
    assert _error_beside(response.text, "f-name")
    data_source(client, name="Taken")
    taken = browser.post("/sources/new/demo", data=_demo_form(token, name="Taken"))
    assert taken.status_code == 409
    assert "already exists" in _error_beside(taken.text, "f-name")
    assert len(_sources(client)) == 1


def test_a_push_source_shows_its_generated_secret_once(
    client: TestClient, admin: tuple[TestClient, str], secret_key: None
) -> None:
    browser, token = admin
    form = {"csrf_token": token, "name": "Pushed", "timezone": "UTC", "schedule": "0 3 * * *"}
    response = browser.post("/sources/new/push", data=form)
    assert response.status_code == 201
    secret = re.search(r'<code class="secret" id="push-secret">([^<]+)</code>', response.text)
    assert secret
    [made] = _sources(client)
    assert _stored_credentials(made["id"]) == {"secret": secret.group(1)}
    assert secret.group(1) not in browser.get(f"/sources/{made['id']}").text


# --- refusals ---------------------------------------------------------------------------------


def test_a_write_without_the_csrf_token_changes_nothing(
    client: TestClient, admin: tuple[TestClient, str]
) -> None:
    browser, token = admin
    source = data_source(client, name="Kept")
    sid = source["id"]
    without = {k: v for k, v in _demo_form(token).items() if k != "csrf_token"}
    forged = {**without, "csrf_token": "forged"}
    for data in (without, forged):
        for path in (
            "/sources/new/demo",
            f"/sources/{sid}/edit",
            f"/sources/{sid}/delete",
            f"/sources/{sid}/sync",
            f"/sources/{sid}/test",
        ):
            response = browser.post(path, data={**data, "cascade": "yes"})
            assert response.status_code == 403, path
            assert "Nothing was changed" in response.text
    [kept] = _sources(client)
    assert kept["name"] == "Kept"
    assert client.get("/api/v1/sync-runs", params={"data_source_id": sid}).json()["total"] == 0


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_below_admin_every_source_form_is_refused(
    client: TestClient, anon: TestClient, role: str
) -> None:
    sid = data_source(client, name="Kept")["id"]
    token = sign_in(anon, api_key_headers(client, role)["Authorization"][7:])
    for path in ("/sources/new", "/sources/new/demo", f"/sources/{sid}/edit"):
        assert anon.get(path).status_code == 403, path
        assert anon.get(f"/sources/{sid}/delete").status_code == 403
    for path in (
        "/sources/new/demo",
        f"/sources/{sid}/edit",
        f"/sources/{sid}/delete",
        f"/sources/{sid}/sync",
        f"/sources/{sid}/test",
    ):
        response = anon.post(path, data={**_demo_form(token), "cascade": "yes"})
        assert response.status_code == 403, path
        assert "needs the admin role" in response.text
    [kept] = _sources(client)
    assert kept["name"] == "Kept"
    assert client.get("/api/v1/sync-runs", params={"data_source_id": sid}).json()["total"] == 0


# --- edit, delete -----------------------------------------------------------------------------


def test_an_admin_edits_a_source(client: TestClient, admin: tuple[TestClient, str]) -> None:
    browser, token = admin
    sid = data_source(client, name="Demo", config={"seed": 7})["id"]
    page = browser.get(f"/sources/{sid}/edit")
    assert page.status_code == 200
    assert _value_of(page.text, "f-config-seed") == "7"
    assert _value_of(page.text, "f-name") == "Demo"
    assert re.search(r'id="f-enabled" type="checkbox" name="enabled" value="on" checked', page.text)
    form = _demo_form(token, name="Demo, renamed", **{"config.seed": "8"})
    del form["enabled"]  # unticked
    response = browser.post(f"/sources/{sid}/edit", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text[-800:]
    read = client.get(f"/api/v1/data-sources/{sid}").json()
    assert (read["name"], read["config"], read["enabled"]) == ("Demo, renamed", {"seed": 8}, False)
    refused = browser.post(f"/sources/{sid}/edit", data={**form, "config.seed": "many"})
    assert refused.status_code == 422
    assert "valid integer" in _error_beside(refused.text, "f-config-seed")
    assert browser.get("/sources/999/edit").status_code == 404


def test_deleting_a_source_says_what_goes_with_it(
    client: TestClient, admin: tuple[TestClient, str]
) -> None:
    browser, token = admin
    _, obj, kr = workspace(client)
    sid = data_source(client)["id"]
    mapping(client, kr, sid)
    mapping(client, key_result(client, obj, title="Signups")["id"], sid, metric="signups")
    page = browser.get(f"/sources/{sid}/delete")
    assert page.status_code == 200
    text = re.sub(r"<[^>]+>", "", page.text)
    assert "2 mappings" in text
    assert "sync run" in text
    assert 'name="cascade"' in page.text

    # Unconfirmed, as the API without ?cascade=true: refused in its words, nothing deleted.
    refused = browser.post(f"/sources/{sid}/delete", data={"csrf_token": token})
    assert refused.status_code == 409
    assert "still feeds 2 mapping(s)" in refused.text
    assert len(_sources(client)) == 1

    done = browser.post(
        f"/sources/{sid}/delete",
        data={"csrf_token": token, "cascade": "yes"},
        follow_redirects=False,
    )
    assert (done.status_code, done.headers["location"]) == (303, "/sources")
    assert _sources(client) == []
    assert client.get("/api/v1/mappings").json()["total"] == 0


def test_a_source_without_mappings_is_deleted_without_more_ado(
    client: TestClient, admin: tuple[TestClient, str]
) -> None:
    browser, token = admin
    sid = data_source(client)["id"]
    page = browser.get(f"/sources/{sid}/delete").text
    assert 'name="cascade"' not in page
    assert "no mapping" in page
    done = browser.post(
        f"/sources/{sid}/delete", data={"csrf_token": token}, follow_redirects=False
    )
    assert done.status_code == 303
    assert _sources(client) == []
    assert browser.post(f"/sources/{sid}/delete", data={"csrf_token": token}).status_code == 404


# --- test connection, sync now ----------------------------------------------------------------


def test_test_connection_shows_the_answer(
    client: TestClient, admin: tuple[TestClient, str]
) -> None:
    browser, token = admin
    sid = data_source(client)["id"]
    page = browser.get(f"/sources/{sid}").text
    assert f'action="/sources/{sid}/test"' in page
    assert f'href="/sources/{sid}/edit"' in page
    response = browser.post(f"/sources/{sid}/test", data={"csrf_token": token})
    assert response.status_code == 200
    api = client.post(f"/api/v1/data-sources/{sid}/test").json()
    assert api["ok"] is True
    assert '<p class="check-result check-ok" role="status"><strong>Connected.</strong>' in (
        response.text
    )
    assert api["message"] in response.text


def test_a_failed_check_shows_the_redacted_message(
    client: TestClient, admin: tuple[TestClient, str], secret_key: None
) -> None:
    """A platform that refuses the token: the engine's message, with no secret in it."""
    browser, token = admin
    sid = client.post(
        "/api/v1/data-sources",
        json={
            "name": "X",
            "connector": "x",
            "config": {"user_id": "2244994945", "base_url": "http://127.0.0.1:9"},
            "credentials": {"bearer_token": CANARY},
        },
    ).json()["id"]
    response = browser.post(f"/sources/{sid}/test", data={"csrf_token": token})
    assert response.status_code == 200
    assert "check-failed" in response.text
    assert "Not connected." in response.text
    assert CANARY not in response.text


def test_sync_now_starts_a_run_that_shows_in_the_history(
    client: TestClient, admin: tuple[TestClient, str]
) -> None:
    browser, token = admin
    _, _, kr = workspace(client)
    sid = data_source(client)["id"]
    mapping(client, kr, sid)
    before = client.get("/api/v1/sync-runs", params={"data_source_id": sid}).json()["total"]
    response = browser.post(
        f"/sources/{sid}/sync",
        data={"csrf_token": token, "from": "2026-07-01", "to": "2026-07-10"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[-800:]
    runs = client.get("/api/v1/sync-runs", params={"data_source_id": sid}).json()
    assert runs["total"] == before + 1
    run = runs["items"][0] if runs["items"][0]["trigger"] == "manual" else runs["items"][-1]
    assert response.headers["location"] == f"/sources/{sid}?started={run['id']}#runs"
    page = browser.get(response.headers["location"]).text
    row = re.search(rf'<tr class="run-(\w+)" data-run-id="{run["id"]}">.*?</tr>', page, re.S)
    assert row, page[-1500:]
    assert row.group(1) == "succeeded"
    assert "2026-07-01 → 2026-07-10" in row.group(0)
    assert f"Sync run {run['id']} started" in page


def test_sync_now_refuses_a_bad_window_beside_its_field(
    client: TestClient, admin: tuple[TestClient, str]
) -> None:
    browser, token = admin
    sid = data_source(client)["id"]
    late = (clock.today() + timedelta(days=30)).isoformat()
    for window, where, words in (
        ({"from": "2026-07-10", "to": ""}, None, "give both `from` and `to`"),
        ({"from": "2026-07-10", "to": "2026-07-01"}, None, "`to` must be on or after `from`"),
        ({"from": "2026-07-10", "to": "next week"}, "sync-to", "YYYY-MM-DD"),
        ({"from": "2026-07-10", "to": late}, "sync-to", "can&#39;t be after"),
    ):
        response = browser.post(f"/sources/{sid}/sync", data={"csrf_token": token, **window})
        assert response.status_code == 422, window
        if where:
            assert words in _error_beside(response.text, where).replace("'", "&#39;"), window
        else:
            assert words in response.text, window
        assert _value_of(response.text, "sync-from") == "2026-07-10"
    assert client.get("/api/v1/sync-runs", params={"data_source_id": sid}).json()["total"] == 0
    client.patch(f"/api/v1/data-sources/{sid}", json={"enabled": False})
    disabled = browser.post(f"/sources/{sid}/sync", data={"csrf_token": token})
    assert disabled.status_code == 409
    assert "is disabled" in disabled.text


def test_the_source_page_offers_its_actions_to_admins(
    client: TestClient, admin: tuple[TestClient, str]
) -> None:
    browser, _ = admin
    sid = data_source(client)["id"]
    page = browser.get(f"/sources/{sid}").text
    for shown in (
        f'action="/sources/{sid}/test"',
        f'action="/sources/{sid}/sync"',
        f'href="/sources/{sid}/edit"',
        f'href="/sources/{sid}/delete"',
    ):
        assert shown in page, shown
    assert csrf_token(page)
