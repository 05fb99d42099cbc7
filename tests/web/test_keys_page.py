"""The API keys page (SPEC section 6, "API keys: create (secret shown once), list, revoke")."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from web.browser_session import sign_in

from conftest import ADMIN_KEY
from factories import create


def test_a_key_made_in_the_browser_is_shown_once_and_works(
    client: TestClient, anon: TestClient
) -> None:
    token = sign_in(anon, ADMIN_KEY)
    made = anon.post("/keys", data={"name": "BI export", "role": "editor", "csrf_token": token})
    assert made.status_code == 201
    assert "Copy it now" in made.text
    secret = re.search(r'<code class="secret" id="new-key">([^<]+)</code>', made.text)
    assert secret
    key = secret.group(1)
    listed = client.get("/api/v1/api-keys").json()["items"]
    assert [(k["name"], k["role"]) for k in listed] == [("BI export", "editor")]
    as_key = client.get("/api/v1/cycles", headers={"Authorization": f"Bearer {key}"})
    assert as_key.status_code == 200
    page = anon.get("/keys")
    assert "BI export" in page.text
    assert key not in page.text  # never again
    assert key[:10] in page.text  # its prefix, to tell keys apart
    events = client.get("/api/v1/audit-events", params={"entity": "api_key"}).json()["items"]
    assert events[0]["actor"] == "bootstrap-admin"


def test_a_refused_form_says_what_the_api_says_beside_the_field(
    client: TestClient, anon: TestClient
) -> None:
    token = sign_in(anon, ADMIN_KEY)
    for form, field in (
        ({"name": "   ", "role": "viewer"}, "name"),
        ({"name": "ok", "role": "root"}, "role"),
    ):
        api = client.post("/api/v1/api-keys", json=form)
        assert api.status_code == 422
        message = api.json()["errors"][0]["msg"]
        page = anon.post("/keys", data={**form, "csrf_token": token})
        assert page.status_code == 422
        beside = re.search(rf'<p class="field-error" id="key-{field}-error">([^<]*)</p>', page.text)
        assert beside, page.text[-800:]
        assert beside.group(1).replace("&#39;", "'").replace("&#34;", '"') == message
        assert f'aria-describedby="key-{field}-error"' in page.text
    assert client.get("/api/v1/api-keys").json()["total"] == 0


def test_revoking_asks_first_then_the_key_stops(client: TestClient, anon: TestClient) -> None:
    victim = create(client, "api-keys", name="old laptop", role="viewer")
    token = sign_in(anon, ADMIN_KEY)
    listing = anon.get("/keys").text
    assert f'href="/keys/{victim["id"]}/revoke"' in listing
    confirm = anon.get(f"/keys/{victim['id']}/revoke")
    assert "Revoke “old laptop”?" in confirm.text
    assert (
        client.get(
            "/api/v1/cycles", headers={"Authorization": f"Bearer {victim['key']}"}
        ).status_code
        == 200
    )
    done = anon.post(
        f"/keys/{victim['id']}/revoke", data={"csrf_token": token}, follow_redirects=False
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/keys"
    refused = client.get("/api/v1/cycles", headers={"Authorization": f"Bearer {victim['key']}"})
    assert refused.status_code == 401
    row = re.search(rf'<tr class="(\w+)" data-key-id="{victim["id"]}">', anon.get("/keys").text)
    assert row
    assert row.group(1) == "revoked"


def test_an_unknown_or_malformed_key_id_is_a_404_page(anon: TestClient) -> None:
    token = sign_in(anon, ADMIN_KEY)
    for key_id in ("999999", "abc", "-1", "0", "99999999999999999999", "\uff11"):
        assert anon.get(f"/keys/{key_id}/revoke").status_code == 404, key_id
        response = anon.post(f"/keys/{key_id}/revoke", data={"csrf_token": token})
        assert response.status_code == 404, key_id
        assert "does not exist" in response.text
