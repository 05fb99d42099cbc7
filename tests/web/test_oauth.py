"""Connect with OAuth (SPEC section 6), over HTTP against a local authorization server.

The OAuth apps are stored per provider with their secret encrypted; `GET
/oauth/{provider}/authorize` sends the admin's browser to the platform with a state bound to
that browser (single use, ten minutes) and PKCE where the platform takes it; `GET
/oauth/callback` exchanges the code through the engine's HTTP layer and stores the tokens on
the source. Every refusal leaves the source's credentials as they were and says why.

Vendor pages the flows follow (see ``app/sources/oauth_providers.py``):
- HubSpot, "Working with OAuth" / "OAuth quickstart guide":
  https://developers.hubspot.com/docs/api/working-with-oauth — the token request is a form POST
  with `grant_type=authorization_code`, `client_id`, `client_secret`, `redirect_uri`, `code`.
- Google, "Using OAuth 2.0 for Web Server Applications":
  https://developers.google.com/identity/protocols/oauth2/web-server — `access_type=offline`,
  `prompt=consent`, `code_challenge`/`code_challenge_method=S256`.
- Salesforce, "OAuth 2.0 Web Server Flow for Web App Integration":
  https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_web_server_flow.htm —
  `code_challenge` recommended; the token answer carries `instance_url`.
- LinkedIn, "Authorization Code Flow (3-legged OAuth)":
  https://learn.microsoft.com/en-us/linkedin/shared/authentication/authorization-code-flow —
  PKCE is for native apps enabled by LinkedIn only (authorization-code-flow-native).
- Meta, "Long-Lived Access Tokens":
  https://developers.facebook.com/docs/facebook-login/guides/access-tokens/get-long-lived —
  `GET oauth/access_token?grant_type=fb_exchange_token&client_id&client_secret&fb_exchange_token`.
- Pipedrive, "OAuth authorization": https://pipedrive.readme.io/docs/marketplace-oauth-authorization
  — no scope parameter (scopes live on the app), HTTP Basic client authentication.
- Mailchimp, "Access user data with OAuth 2":
  https://mailchimp.com/developer/marketing/guides/access-user-data-oauth-2/ — no scopes; the
  data centre from `https://login.mailchimp.com/oauth2/metadata` with `Authorization: OAuth`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import stamina
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from web.browser_session import sign_in
from web.oauth_platform import Platform, running

from app.core import clock
from app.core.secrets import SecretBox
from app.core.settings import get_settings
from app.main import app
from conftest import ADMIN_KEY
from factories import api_key_headers, create

PUBLIC_URL = "https://krsync.example.com"
REDIRECT_URI = PUBLIC_URL + "/oauth/callback"
CLIENT_ID = "client-7fff1e36"
CLIENT_SECRET = "oauth-client-secret-canary-5f2c"
OLD_TOKEN = "pat-na1-old-private-app-token"


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("KRSYNC_SECRET_KEY", key)
    monkeypatch.setenv("KRSYNC_PUBLIC_URL", PUBLIC_URL)
    monkeypatch.setenv("KRSYNC_ALLOW_PRIVATE_NETWORKS", "true")
    get_settings.cache_clear()
    with stamina.set_testing(True, attempts=3, cap=True):
        yield key
    get_settings.cache_clear()


@pytest.fixture
def browser(env: str, anon: TestClient) -> TestClient:
    """An admin signed in in the browser (a session cookie, as the sign-in form gives)."""
    sign_in(anon, ADMIN_KEY, https=True)
    return anon


def stored_credentials(db_url: str, key: str, source_id: int) -> dict[str, Any]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            token = conn.execute(
                text("SELECT credentials_encrypted FROM data_sources WHERE id = :id"),
                {"id": source_id},
            ).scalar_one()
    finally:
        engine.dispose()
    return SecretBox.from_keys(key).decrypt_json(token) if token else {}


def put_app(client: TestClient, provider: str, platform: Platform) -> None:
    response = client.put(
        f"/api/v1/oauth-apps/{provider}",
        json={
            "client_id": platform.client_id,
            "client_secret": platform.client_secret,
            "authorize_url": f"{platform.url}/authorize",
            "token_url": f"{platform.url}/token",
        },
    )
    assert response.status_code == 200, response.text


def hubspot_source(client: TestClient, platform: Platform) -> int:
    source = create(
        client,
        "data-sources",
        name="HubSpot CRM",
        connector="hubspot",
        config={"base_url": platform.url},
        credentials={"access_token": OLD_TOKEN},
    )
    return int(source["id"])


def consent(browser: TestClient, provider: str, source_id: int) -> str:
    """Click "Connect", consent on the platform: the callback path the platform sends back."""
    started = browser.get(
        f"/oauth/{provider}/authorize?data_source_id={source_id}", follow_redirects=False
    )
    assert started.status_code == 302, started.text
    platform_answer = httpx.get(started.headers["location"], follow_redirects=False)
    assert platform_answer.status_code == 302
    back = platform_answer.headers["location"]
    assert back.startswith(REDIRECT_URI + "?"), back
    return back[len(PUBLIC_URL) :]


def state_of(path: str) -> str:
    return parse_qs(urlsplit(path).query)["state"][0]


@pytest.fixture
def hubspot(env: str, client: TestClient) -> Iterator[tuple[Platform, int]]:
    with running(Platform(CLIENT_ID, CLIENT_SECRET)) as platform:
        put_app(client, "hubspot", platform)
        yield platform, hubspot_source(client, platform)


# --- the whole flow ---------------------------------------------------------------------------


def test_hubspot_connects_end_to_end(
    hubspot: tuple[Platform, int],
    browser: TestClient,
    client: TestClient,
    db_url: str,
    env: str,
) -> None:
    """HubSpot's documented exchange: the client in the form body, the same redirect URI, a
    code that works once; the refresh token ends up encrypted on the source, and it works."""
    platform, source_id = hubspot
    callback = consent(browser, "hubspot", source_id)
    done = browser.get(callback, follow_redirects=False)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/sources/{source_id}"
    assert platform.problems == []
    assert platform.token_requests == 1

    creds = stored_credentials(db_url, env, source_id)
    assert creds["client_id"] == CLIENT_ID
    assert creds["client_secret"] == CLIENT_SECRET
    assert creds["refresh_token"].startswith("refresh-")
    assert creds["access_token"] == platform.issued[-1]
    assert creds["expires_at"] > 0

    checked = client.post(f"/api/v1/data-sources/{source_id}/test")
    assert checked.status_code == 200, checked.text
    assert checked.json()["ok"] is True, checked.text
    assert "62515" in checked.json()["message"]

    audit = client.get("/api/v1/audit-events", params={"entity": "data_source"}).json()
    connect = [e for e in audit["items"] if e["changes"].get("oauth") == "hubspot"]
    assert connect
    assert connect[0]["changes"]["credentials"] == "changed"
    for secret in (CLIENT_SECRET, creds["refresh_token"], creds["access_token"]):
        assert secret not in str(audit)

    # The same answer again: the state was used, and the platform's code too.
    again = browser.get(callback, follow_redirects=False)
    assert again.status_code == 400
    assert "already used" in again.text or "unknown" in again.text
    assert platform.token_requests == 1


# --- refusals ---------------------------------------------------------------------------------


def refused(
    browser: TestClient, path: str, db_url: str, key: str, source_id: int, reason: str
) -> None:
    before = stored_credentials(db_url, key, source_id)
    response = browser.get(path, follow_redirects=False)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert reason in response.text, response.text
    assert CLIENT_SECRET not in response.text
    assert stored_credentials(db_url, key, source_id) == before == {"access_token": OLD_TOKEN}


def test_denied_consent_changes_nothing(
    hubspot: tuple[Platform, int], browser: TestClient, db_url: str, env: str
) -> None:
    platform, source_id = hubspot
    state = state_of(consent(browser, "hubspot", source_id))
    path = f"/oauth/callback?error=access_denied&state={state}"
    refused(browser, path, db_url, env, source_id, "consent was denied")
    assert platform.token_requests == 0
    # The state is spent, even by a refusal.
    refused(browser, path, db_url, env, source_id, "unknown or was already used")


def test_an_unknown_state_changes_nothing(
    hubspot: tuple[Platform, int], browser: TestClient, db_url: str, env: str
) -> None:
    platform, source_id = hubspot
    refused(browser, "/oauth/callback?code=x&state=forged", db_url, env, source_id, "unknown")
    refused(browser, "/oauth/callback?code=x", db_url, env, source_id, "no state")
    assert platform.token_requests == 0


def test_a_reused_state_changes_nothing(
    hubspot: tuple[Platform, int], browser: TestClient, db_url: str, env: str
) -> None:
    """A second callback with a used state is refused before any exchange is tried."""
    platform, source_id = hubspot
    first = consent(browser, "hubspot", source_id)
    second = consent(browser, "hubspot", source_id)
    # The second state is spent by a denied answer; reusing it with a fresh code fails.
    code = parse_qs(urlsplit(first).query)["code"][0]
    deny = f"/oauth/callback?error=access_denied&state={state_of(second)}"
    assert browser.get(deny).status_code == 400
    reuse = f"/oauth/callback?code={code}&state={state_of(second)}"
    refused(browser, reuse, db_url, env, source_id, "already used")
    assert platform.token_requests == 0


def test_an_expired_state_changes_nothing(
    hubspot: tuple[Platform, int],
    browser: TestClient,
    db_url: str,
    env: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    platform, source_id = hubspot
    callback = consent(browser, "hubspot", source_id)
    later = clock.utcnow() + timedelta(minutes=10, seconds=1)
    monkeypatch.setattr(clock, "utcnow", lambda: later)
    refused(browser, callback, db_url, env, source_id, "expired")
    assert platform.token_requests == 0


def test_a_state_from_another_browser_changes_nothing(
    hubspot: tuple[Platform, int],
    browser: TestClient,
    client: TestClient,
    db_url: str,
    env: str,
) -> None:
    """Another admin's browser can't finish this one's authorization (login CSRF), and the
    state still works where it started."""
    platform, source_id = hubspot
    callback = consent(browser, "hubspot", source_id)
    other_key = api_key_headers(client, "admin")["Authorization"].partition(" ")[2]
    with TestClient(app) as other:
        sign_in(other, other_key, https=True)
        refused(other, callback, db_url, env, source_id, "another browser")
    assert platform.token_requests == 0
    assert browser.get(callback, follow_redirects=False).status_code == 303


def test_a_failed_exchange_changes_nothing(
    hubspot: tuple[Platform, int],
    browser: TestClient,
    db_url: str,
    env: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    platform, source_id = hubspot
    callback = consent(browser, "hubspot", source_id)
    platform.fail_with = 500
    with caplog.at_level(logging.DEBUG):
        refused(browser, callback, db_url, env, source_id, "did not give a token")
    assert platform.token_requests == 3, "a 500 is retried by the HTTP layer"
    code = parse_qs(urlsplit(callback).query)["code"][0]
    assert code not in caplog.text
    assert CLIENT_SECRET not in caplog.text


def test_a_refused_code_changes_nothing(
    hubspot: tuple[Platform, int], browser: TestClient, db_url: str, env: str
) -> None:
    """The platform's own `invalid_grant` (a wrong client secret here) is shown, not stored."""
    platform, source_id = hubspot
    callback = consent(browser, "hubspot", source_id)
    platform.client_secret = "rotated-on-the-platform"
    refused(browser, callback, db_url, env, source_id, "invalid_client")


# --- authorize: who may start, and what goes to each platform ---------------------------------


SOURCES: dict[str, dict[str, Any]] = {
    "ga4": {"config": {"property_id": "123456789"}},
    "search_console": {"config": {"site_url": "https://example.com/"}},
    "youtube": {"config": {}},
    "hubspot": {"config": {}},
    "salesforce": {"config": {}},
    "linkedin": {"config": {"organization_id": "2414183"}},
    "meta": {"config": {"page_id": "1234567890"}},
    "pipedrive": {"config": {"company_domain": "acme"}},
    "mailchimp": {"config": {"list_id": "abc123"}},
}

#: connector -> (provider, authorization endpoint, scope, PKCE, extra parameters)
EXPECTED: dict[str, tuple[str, str, str | None, bool, dict[str, str]]] = {
    "ga4": (
        "google",
        "https://accounts.google.com/o/oauth2/v2/auth",
        "https://www.googleapis.com/auth/analytics.readonly",
        True,
        {"access_type": "offline", "prompt": "consent"},
    ),
    "search_console": (
        "google",
        "https://accounts.google.com/o/oauth2/v2/auth",
        "https://www.googleapis.com/auth/webmasters.readonly",
        True,
        {"access_type": "offline", "prompt": "consent"},
    ),
    "youtube": (
        "google",
        "https://accounts.google.com/o/oauth2/v2/auth",
        "https://www.googleapis.com/auth/yt-analytics.readonly",
        True,
        {"access_type": "offline", "prompt": "consent"},
    ),
    "hubspot": (
        "hubspot",
        "https://app.hubspot.com/oauth/authorize",
        "crm.objects.contacts.read crm.objects.companies.read crm.objects.deals.read",
        False,
        {
            "optional_scope": "tickets crm.schemas.contacts.read crm.schemas.companies.read "
            "crm.schemas.deals.read"
        },
    ),
    "salesforce": (
        "salesforce",
        "https://login.salesforce.com/services/oauth2/authorize",
        "api refresh_token",
        True,
        {},
    ),
    "linkedin": (
        "linkedin",
        "https://www.linkedin.com/oauth/v2/authorization",
        "rw_organization_admin r_organization_social",
        False,
        {},
    ),
    "meta": (
        "meta",
        "https://www.facebook.com/v25.0/dialog/oauth",
        "read_insights,pages_read_engagement,instagram_basic,instagram_manage_insights",
        False,
        {},
    ),
    "pipedrive": ("pipedrive", "https://oauth.pipedrive.com/oauth/authorize", None, False, {}),
    "mailchimp": ("mailchimp", "https://login.mailchimp.com/oauth2/authorize", None, False, {}),
}


@pytest.mark.parametrize("connector", sorted(EXPECTED))
def test_the_authorization_url_is_the_platforms(
    connector: str, env: str, client: TestClient, browser: TestClient
) -> None:
    provider, endpoint, scope, pkce, extra = EXPECTED[connector]
    assert (
        client.put(
            f"/api/v1/oauth-apps/{provider}",
            json={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        ).status_code
        == 200
    )
    source = create(
        client, "data-sources", name=connector, connector=connector, **SOURCES[connector]
    )
    started = browser.get(
        f"/oauth/{provider}/authorize?data_source_id={source['id']}", follow_redirects=False
    )
    assert started.status_code == 302, started.text
    location = started.headers["location"]
    assert location.startswith(endpoint + "?"), location
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == REDIRECT_URI
    assert len(query["state"]) >= 32
    assert query.get("scope") == scope
    assert ("code_challenge" in query) == pkce
    if pkce:
        assert query["code_challenge_method"] == "S256"
        assert len(query["code_challenge"]) == 43
    else:
        assert "code_challenge_method" not in query
    for name, value in extra.items():
        assert query[name] == value
    assert CLIENT_SECRET not in location


def test_authorize_refusals_say_why(env: str, client: TestClient, anon: TestClient) -> None:
    source = create(client, "data-sources", name="crm", connector="hubspot", config={})
    path = f"/oauth/hubspot/authorize?data_source_id={source['id']}"
    assert anon.get(path, follow_redirects=False).status_code == 401
    viewer = api_key_headers(client, "viewer")
    assert anon.get(path, headers=viewer, follow_redirects=False).status_code == 403
    sign_in(anon, ADMIN_KEY, https=True)
    no_app = anon.get(path, follow_redirects=False)
    assert no_app.status_code == 409
    assert "PUT /api/v1/oauth-apps/hubspot" in no_app.text
    client.put("/api/v1/oauth-apps/hubspot", json={"client_id": "c", "client_secret": "s"})
    assert anon.get("/oauth/nope/authorize?data_source_id=1").status_code == 404
    assert anon.get("/oauth/hubspot/authorize?data_source_id=x").status_code == 422
    assert anon.get("/oauth/hubspot/authorize?data_source_id=999").status_code == 404
    wrong = anon.get(f"/oauth/google/authorize?data_source_id={source['id']}")
    assert wrong.status_code == 422
    assert "hubspot connector" in wrong.text
    # A key in a header but no signed-in browser: the callback could never match it.
    anon.cookies.clear()
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    assert anon.get(path, headers=headers, follow_redirects=False).status_code == 409
    sign_in(anon, ADMIN_KEY, https=True)
    assert anon.get(path, follow_redirects=False).status_code == 302


def test_authorize_needs_the_public_url(
    env: str, client: TestClient, browser: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KRSYNC_PUBLIC_URL")
    get_settings.cache_clear()
    client.put("/api/v1/oauth-apps/hubspot", json={"client_id": "c", "client_secret": "s"})
    source = create(client, "data-sources", name="crm", connector="hubspot", config={})
    response = browser.get(f"/oauth/hubspot/authorize?data_source_id={source['id']}")
    assert response.status_code == 409
    assert "KRSYNC_PUBLIC_URL" in response.text


def test_a_private_authorize_url_is_refused_without_the_setting(
    env: str, client: TestClient, browser: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KRSYNC_ALLOW_PRIVATE_NETWORKS", "false")
    get_settings.cache_clear()
    client.put(
        "/api/v1/oauth-apps/hubspot",
        json={
            "client_id": "c",
            "client_secret": "s",
            "authorize_url": "http://127.0.0.1:9/authorize",
        },
    )
    source = create(client, "data-sources", name="crm", connector="hubspot", config={})
    response = browser.get(f"/oauth/hubspot/authorize?data_source_id={source['id']}")
    assert response.status_code == 422
    assert "loopback" in response.text


def test_the_callback_needs_a_signed_in_admin(
    env: str, client: TestClient, anon: TestClient
) -> None:
    assert anon.get("/oauth/callback?code=c&state=s").status_code == 401
    sign_in(anon, api_key_headers(client, "editor")["Authorization"][7:], https=True)
    assert anon.get("/oauth/callback?code=c&state=s").status_code == 403


# --- what each platform's answer adds ---------------------------------------------------------


def connect(
    client: TestClient, browser: TestClient, provider: str, platform: Platform, **source: Any
) -> int:
    put_app(client, provider, platform)
    created = create(client, "data-sources", name=provider, **source)
    callback = consent(browser, provider, created["id"])
    done = browser.get(callback, follow_redirects=False)
    assert done.status_code == 303, done.text
    assert platform.problems == []
    return int(created["id"])


def test_salesforce_keeps_the_instance_url(
    env: str, client: TestClient, browser: TestClient, db_url: str
) -> None:
    """Salesforce's token answer names the org's `instance_url`; PKCE is checked."""
    extras = {"instance_url": "https://acme.my.salesforce.com", "id": "https://x/id/00D/005"}
    with running(Platform(CLIENT_ID, CLIENT_SECRET, token_extras=extras)) as platform:
        source_id = connect(
            client, browser, "salesforce", platform, connector="salesforce", config={}
        )
    creds = stored_credentials(db_url, env, source_id)
    assert creds["instance_url"] == "https://acme.my.salesforce.com"
    assert creds["refresh_token"].startswith("refresh-")
    source = client.get(f"/api/v1/data-sources/{source_id}").json()
    assert source["config"]["instance_url"] == "https://acme.my.salesforce.com"


@pytest.mark.parametrize(
    ("connector", "config"),
    [
        ("linkedin", {"organization_id": "2414183"}),
        # Salesforce's credentials keep no end of their own: the source's health does.
        ("salesforce", {"instance_url": "https://acme.my.salesforce.com"}),
    ],
)
@pytest.mark.parametrize(("days", "health"), [(3, "needs_reauth"), (365, "healthy")])
def test_a_refresh_token_ending_within_a_week_asks_for_a_new_connection(
    env: str,
    client: TestClient,
    browser: TestClient,
    connector: str,
    config: dict[str, Any],
    days: int,
    health: str,
) -> None:
    """LinkedIn's token answer says when its refresh token dies (`refresh_token_expires_in`,
    https://learn.microsoft.com/en-us/linkedin/shared/authentication/programmatic-refresh-tokens)."""
    extras = {"refresh_token_expires_in": days * 86400, "instance_url": config.get("instance_url")}
    with running(Platform(CLIENT_ID, CLIENT_SECRET, token_extras=extras)) as platform:
        source_id = connect(
            client, browser, connector, platform, connector=connector, config=config
        )
    source = client.get(f"/api/v1/data-sources/{source_id}").json()
    assert source["health"] == health
    if health == "needs_reauth":
        assert "connect the source again" in source["health_reason"]


def test_mailchimp_learns_its_data_centre(
    env: str, client: TestClient, browser: TestClient, db_url: str
) -> None:
    with running(Platform(CLIENT_ID, CLIENT_SECRET, refresh=False, dc="us19")) as platform:
        source_id = connect(
            client, browser, "mailchimp", platform, connector="mailchimp", config={"list_id": "a1"}
        )
    creds = stored_credentials(db_url, env, source_id)
    assert creds == {"access_token": platform.issued[-1], "data_center": "us19"}
    source = client.get(f"/api/v1/data-sources/{source_id}").json()
    assert source["config"]["data_center"] == "us19"


def test_meta_exchanges_for_a_long_lived_token(
    env: str, client: TestClient, browser: TestClient, db_url: str
) -> None:
    with running(Platform(CLIENT_ID, CLIENT_SECRET, refresh=False)) as platform:
        source_id = connect(
            client, browser, "meta", platform, connector="meta", config={"page_id": "42"}
        )
    creds = stored_credentials(db_url, env, source_id)
    assert creds == {"access_token": platform.long_lived[-1]}


def test_pipedrive_authenticates_with_http_basic(
    env: str, client: TestClient, browser: TestClient, db_url: str
) -> None:
    platform_ = Platform(CLIENT_ID, CLIENT_SECRET, client_auth="client_secret_basic")
    with running(platform_) as platform:
        source_id = connect(
            client,
            browser,
            "pipedrive",
            platform,
            connector="pipedrive",
            config={"company_domain": "acme"},
        )
    creds = stored_credentials(db_url, env, source_id)
    assert creds["refresh_token"].startswith("refresh-")
    assert creds["client_secret"] == CLIENT_SECRET


def test_google_stores_a_refresh_token_with_pkce(
    env: str, client: TestClient, browser: TestClient, db_url: str
) -> None:
    with running(Platform(CLIENT_ID, CLIENT_SECRET)) as platform:
        source_id = connect(
            client, browser, "google", platform, connector="ga4", config={"property_id": "1"}
        )
    creds = stored_credentials(db_url, env, source_id)
    assert set(creds) == {"client_id", "client_secret", "refresh_token", "token_uri"}
    assert creds["token_uri"] == f"{platform.url}/token"


# --- the apps ---------------------------------------------------------------------------------


def test_oauth_apps_keep_their_secret_encrypted_and_unread(
    env: str, client: TestClient, db_url: str
) -> None:
    assert client.get("/api/v1/oauth-apps/hubspot").status_code == 404
    assert (
        client.put(
            "/api/v1/oauth-apps/myspace", json={"client_id": "c", "client_secret": "s"}
        ).status_code
        == 404
    )
    bad = client.put("/api/v1/oauth-apps/hubspot", json={"client_id": "c", "client_secret": ""})
    assert bad.status_code == 422
    bad = client.put(
        "/api/v1/oauth-apps/hubspot",
        json={"client_id": "c", "client_secret": CLIENT_SECRET, "token_url": "file:///etc/passwd"},
    )
    assert bad.status_code == 422
    assert CLIENT_SECRET not in bad.text
    put = client.put(
        "/api/v1/oauth-apps/hubspot", json={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    )
    assert put.status_code == 200
    read = client.get("/api/v1/oauth-apps/hubspot").json()
    assert read["client_secret_set"] is True
    assert read["client_id"] == CLIENT_ID
    assert read["redirect_uri"] == REDIRECT_URI
    assert read["default_token_url"] == "https://api.hubapi.com/oauth/v1/token"
    assert "client_secret" not in read
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT * FROM oauth_apps")).one()
    finally:
        engine.dispose()
    assert CLIENT_SECRET not in str(tuple(row))
    audit = client.get("/api/v1/audit-events", params={"entity": "oauth_app"}).json()
    assert audit["total"] == 1
    assert CLIENT_SECRET not in str(audit)
    assert client.delete("/api/v1/oauth-apps/hubspot").status_code == 204
    assert client.get("/api/v1/oauth-apps/hubspot").status_code == 404
