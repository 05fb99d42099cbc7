"""The OAuth apps page (SPEC section 6: "The OAuth app ... is stored per provider, encrypted"):
an admin registers, changes and removes a platform's app in the browser, the secret write-only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from web.browser_session import sign_in

from app.core.settings import get_settings
from conftest import ADMIN_KEY
from factories import create

SECRET = "oauth-app-secret-canary-91d0"


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KRSYNC_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("KRSYNC_PUBLIC_URL", "https://okr.example.com")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def register(anon: TestClient, csrf: str, **fields: str) -> object:
    form = {"csrf_token": csrf, "client_id": "", "client_secret": "", **fields}
    return anon.post("/oauth-apps/hubspot", data=form, follow_redirects=False)


def test_an_admin_registers_changes_and_removes_an_app(
    env: None, client: TestClient, anon: TestClient
) -> None:
    csrf = sign_in(anon, ADMIN_KEY, https=True)
    page = anon.get("/oauth-apps")
    assert page.status_code == 200
    assert "https://okr.example.com/oauth/callback" in page.text
    assert page.text.count('class="card oauth-app"') == 7  # one per provider

    done = register(anon, csrf, client_id="app-123", client_secret=SECRET)
    assert done.status_code == 303
    app = client.get("/api/v1/oauth-apps/hubspot").json()
    assert app["client_id"] == "app-123"
    assert app["client_secret_set"] is True
    assert SECRET not in anon.get("/oauth-apps").text

    # A blank secret keeps the stored one: the change is the endpoint only.
    changed = register(
        anon, csrf, client_id="app-123", token_url="https://auth.example.com/oauth/v1/token"
    )
    assert changed.status_code == 303
    app = client.get("/api/v1/oauth-apps/hubspot").json()
    assert app["token_url"] == "https://auth.example.com/oauth/v1/token"
    assert app["client_secret_set"] is True

    confirm = anon.get("/oauth-apps/hubspot/delete")
    assert "keep their tokens" in confirm.text
    gone = anon.post(
        "/oauth-apps/hubspot/delete", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert gone.status_code == 303
    assert client.get("/api/v1/oauth-apps/hubspot").status_code == 404


def test_a_refusal_shows_beside_its_field_and_stores_nothing(
    env: None, client: TestClient, anon: TestClient
) -> None:
    csrf = sign_in(anon, ADMIN_KEY, https=True)
    bad = register(anon, csrf, client_id="app-1", client_secret=SECRET, authorize_url="ftp://x")
    assert bad.status_code == 422
    assert 'id="hubspot-authorize_url-error"' in bad.text
    assert "http:// or https://" in bad.text
    assert SECRET not in bad.text  # write-only, even on a refusal
    assert client.get("/api/v1/oauth-apps/hubspot").status_code == 404

    # The first registration needs a secret: there is none to keep.
    no_secret = register(anon, csrf, client_id="app-1")
    assert no_secret.status_code == 422
    assert 'id="hubspot-client_secret-error"' in no_secret.text
    assert client.get("/api/v1/oauth-apps/hubspot").status_code == 404

    unknown = anon.post("/oauth-apps/myspace", data={"csrf_token": csrf, "client_id": "x"})
    assert unknown.status_code == 404


def test_forms_without_the_token_or_the_role_change_nothing(
    env: None, client: TestClient, anon: TestClient
) -> None:
    sign_in(anon, ADMIN_KEY, https=True)
    forged = register(anon, "not-the-token", client_id="app-1", client_secret=SECRET)
    assert forged.status_code == 403
    assert client.get("/api/v1/oauth-apps/hubspot").status_code == 404

    editor = create(client, "api-keys", name="editor", role="editor")["key"]
    anon.cookies.clear()
    csrf = sign_in(anon, editor, https=True)
    assert anon.get("/oauth-apps").status_code == 403
    refused = register(anon, csrf, client_id="app-1", client_secret=SECRET)
    assert refused.status_code == 403
    assert client.get("/api/v1/oauth-apps/hubspot").status_code == 404


def test_the_source_page_says_to_register_the_app_before_connecting(
    env: None, client: TestClient, anon: TestClient
) -> None:
    csrf = sign_in(anon, ADMIN_KEY, https=True)
    source = create(client, "data-sources", name="HubSpot", connector="hubspot", config={})["id"]
    before = anon.get(f"/sources/{source}").text
    assert 'id="oauth-app-missing"' in before
    assert "/oauth/hubspot/authorize" not in before

    register(anon, csrf, client_id="app-1", client_secret=SECRET)
    after = anon.get(f"/sources/{source}").text
    assert 'id="oauth-app-missing"' not in after
    assert f"/oauth/hubspot/authorize?data_source_id={source}" in after
