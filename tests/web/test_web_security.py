"""The browser's security (SPEC section 6): the session cookie, CSRF, roles, CSP and proxies.

"The browser session is an HttpOnly, SameSite=Lax cookie, `Secure` behind HTTPS; every form
that writes carries a CSRF token; the role of the key decides what the page offers."
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from web.browser_session import sign_in

from app.core.clock import utcnow
from app.core.db import get_engine
from app.core.settings import Settings, get_settings
from app.models import ApiKey, WebSession
from app.web.session import COOKIE, IDLE_TIMEOUT
from conftest import ADMIN_KEY
from factories import create

CSP_MUST = ("default-src 'none'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'")


def _key(client: TestClient, role: str, name: str | None = None) -> tuple[int, str]:
    created = create(client, "api-keys", name=name or f"web-{role}", role=role)
    return created["id"], created["key"]


def _sessions() -> list[WebSession]:
    with Session(get_engine()) as db:
        return list(db.scalars(select(WebSession)))


def _key_names(client: TestClient) -> list[str]:
    return [k["name"] for k in client.get("/api/v1/api-keys").json()["items"]]


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set KRSYNC_* variables for one test; the settings are read afresh."""
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def _set(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv(name, value)
    get_settings.cache_clear()


# --- the cookie --------------------------------------------------------------------------------


def test_the_cookie_is_a_random_session_token_never_the_key(
    client: TestClient, anon: TestClient
) -> None:
    _, key = _key(client, "viewer")
    response = anon.post("/login", data={"key": key}, follow_redirects=False)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    token = anon.cookies[COOKIE]
    assert key not in cookie
    assert token != key
    assert len(token) >= 40
    flags = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "path=/" in flags
    assert "secure" not in flags  # plain http, no trusted proxy, no https public URL
    [row] = _sessions()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (row.token_hash, row.csrf_secret)
    assert row.role == "viewer"
    assert row.api_key_id is not None
    assert row.expires_at - row.created_at == timedelta(days=30)


def test_an_https_request_gets_a_secure_cookie(client: TestClient, db_url: str) -> None:
    from app.main import app

    _, key = _key(client, "viewer")
    with TestClient(app, base_url="https://testserver") as https:
        response = https.post("/login", data={"key": key}, follow_redirects=False)
    assert "secure" in response.headers["set-cookie"].lower()


def test_forwarded_proto_is_believed_from_trusted_proxies_only(
    client: TestClient, db_url: str, settings_env: pytest.MonkeyPatch
) -> None:
    from app.main import app

    _, key = _key(client, "viewer")
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}

    def cookie_via(peer: str) -> str:
        with TestClient(app, client=(peer, 40000)) as browser:
            response = browser.post(
                "/login", data={"key": key}, headers=forwarded, follow_redirects=False
            )
        assert response.status_code == 303
        return response.headers["set-cookie"].lower()

    assert "secure" not in cookie_via("10.1.2.3")  # no proxy is trusted by default
    _set(settings_env, "KRSYNC_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7")
    assert "secure" in cookie_via("10.1.2.3")
    assert "secure" in cookie_via("192.0.2.7")
    assert "secure" not in cookie_via("198.51.100.4")  # a client claiming https by header


def test_an_https_public_url_makes_the_cookie_secure(
    client: TestClient, anon: TestClient, settings_env: pytest.MonkeyPatch
) -> None:
    _, key = _key(client, "viewer")
    _set(settings_env, "KRSYNC_PUBLIC_URL", "https://okr.example.com/")
    assert get_settings().public_url == "https://okr.example.com"
    response = anon.post("/login", data={"key": key}, follow_redirects=False)
    assert "secure" in response.headers["set-cookie"].lower()


@pytest.mark.parametrize(
    "value",
    [
        "ftp://okr.example.com",
        "okr.example.com",
        "https://",
        "https://x.example/?a=1",
        "https://x.example/#top",
        "https://user:pw@x.example",
    ],
)
def test_a_public_url_that_is_not_a_plain_http_url_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="KRSYNC_PUBLIC_URL"):
        Settings(public_url=value)


def test_trusted_proxies_must_be_addresses() -> None:
    with pytest.raises(ValidationError, match="not an IP address or CIDR"):
        Settings(trusted_proxies="10.0.0.0/8,proxy.internal")  # type: ignore[arg-type]
    assert Settings(trusted_proxies=" 127.0.0.1 , ::1 ").trusted_proxies == (  # type: ignore[arg-type]
        "127.0.0.1/32",
        "::1/128",
    )


# --- the session's life -----------------------------------------------------------------------


def test_revoking_the_key_ends_its_sessions_at_once(client: TestClient, anon: TestClient) -> None:
    key_id, key = _key(client, "admin")
    sign_in(anon, key)
    assert anon.get("/keys").status_code == 200
    assert client.delete(f"/api/v1/api-keys/{key_id}").status_code == 204
    assert anon.get("/keys", follow_redirects=False).headers["location"] == "/"
    assert anon.get("/api/v1/cycles").status_code == 401
    page = anon.get("/")
    assert 'action="/login"' in page.text
    assert f'{COOKIE}=""' in page.headers["set-cookie"]
    assert _sessions() == []


def test_sign_out_deletes_the_session_so_a_copied_cookie_opens_nothing(
    client: TestClient, anon: TestClient
) -> None:
    _, key = _key(client, "viewer")
    token = sign_in(anon, key)
    copied = anon.cookies[COOKIE]
    assert anon.post("/logout", data={"csrf_token": token}).status_code == 200
    assert _sessions() == []
    anon.cookies.set(COOKIE, copied)
    assert 'action="/login"' in anon.get("/").text
    assert anon.get("/api/v1/cycles").status_code == 401


def test_a_bootstrap_session_ends_when_the_admin_key_changes(
    anon: TestClient, settings_env: pytest.MonkeyPatch
) -> None:
    sign_in(anon, ADMIN_KEY)
    [row] = _sessions()
    assert row.api_key_id is None
    assert row.name == "bootstrap-admin"
    assert ADMIN_KEY not in (row.admin_key_hash, row.name, row.csrf_secret)
    assert anon.get("/keys").status_code == 200
    _set(settings_env, "KRSYNC_ADMIN_KEY", "another-admin-key-0123456789")
    assert anon.get("/keys", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("age", ["idle", "absolute"])
def test_a_session_expires(client: TestClient, anon: TestClient, age: str) -> None:
    _, key = _key(client, "viewer")
    sign_in(anon, key)
    now = utcnow()
    values = (
        {"last_seen_at": now - IDLE_TIMEOUT - timedelta(seconds=1)}
        if age == "idle"
        else {"expires_at": now - timedelta(seconds=1)}
    )
    with Session(get_engine()) as db:
        db.execute(update(WebSession).values(**values))
        db.commit()
    assert 'action="/login"' in anon.get("/").text
    assert _sessions() == []


def test_signing_in_again_ends_the_session_the_browser_had(
    client: TestClient, anon: TestClient
) -> None:
    """A session token planted in a browser (or left over) doesn't survive the next sign-in."""
    _, first = _key(client, "viewer", "first")
    _, second = _key(client, "admin", "second")
    sign_in(anon, first)
    planted = anon.cookies[COOKIE]
    sign_in(anon, second)
    assert anon.cookies[COOKIE] != planted
    [row] = _sessions()
    assert row.role == "admin"
    anon.cookies.set(COOKIE, planted)
    assert 'action="/login"' in anon.get("/").text


def test_abandoned_sessions_are_swept_at_the_next_sign_in(
    client: TestClient, anon: TestClient, db_url: str
) -> None:
    from app.main import app

    _, key = _key(client, "viewer")
    sign_in(anon, key)
    with Session(get_engine()) as db:
        db.execute(update(WebSession).values(last_seen_at=utcnow() - IDLE_TIMEOUT))
        db.commit()
    with TestClient(app) as other:
        sign_in(other, key)
    assert len(_sessions()) == 1


def test_the_browser_counts_as_a_use_of_its_key(client: TestClient, anon: TestClient) -> None:
    key_id, key = _key(client, "viewer")
    sign_in(anon, key)
    long_ago = utcnow() - timedelta(hours=2)
    with Session(get_engine()) as db:
        db.execute(update(WebSession).values(last_seen_at=long_ago))
        db.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=long_ago))
        db.commit()
    anon.get("/")
    with Session(get_engine()) as db:
        used = db.get(ApiKey, key_id)
        assert used is not None
        assert used.last_used_at is not None
        assert used.last_used_at > long_ago + timedelta(hours=1)


def test_the_api_takes_the_cookie_for_reads_only(client: TestClient, anon: TestClient) -> None:
    """A write through the API carries no CSRF token, so the cookie alone can't make one."""
    _, key = _key(client, "admin")
    sign_in(anon, key)
    assert anon.get("/api/v1/api-keys").status_code == 200
    response = anon.post("/api/v1/api-keys", json={"name": "forged", "role": "admin"})
    assert response.status_code == 401
    assert "forged" not in _key_names(client)


# --- CSRF -------------------------------------------------------------------------------------


def test_a_write_without_the_right_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, anon: TestClient, db_url: str
) -> None:
    from app.main import app

    _, key = _key(client, "admin", "csrf-admin")
    victim_id, _ = _key(client, "viewer", "victim")
    mine = sign_in(anon, key)
    with TestClient(app) as other:
        theirs = sign_in(other, ADMIN_KEY)
    assert theirs != mine
    tokens = {"missing": None, "wrong": "0" * 64, "another session's": theirs, "empty": ""}
    for label, token in tokens.items():
        form = {"name": f"made-{label}", "role": "admin"}
        if token is not None:
            form["csrf_token"] = token
        created = anon.post("/keys", data=form)
        assert created.status_code == 403, label
        assert "Nothing was changed" in created.text
        revoked = anon.post(f"/keys/{victim_id}/revoke", data={"csrf_token": token or ""})
        assert revoked.status_code == 403, label
        out = anon.post("/logout", data={"csrf_token": token or ""}, follow_redirects=False)
        assert out.status_code == 403, label
    cross = anon.post(
        "/keys",
        data={"name": "cross-site", "role": "admin", "csrf_token": mine},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert cross.status_code == 403
    names = _key_names(client)
    assert not [n for n in names if n.startswith("made-") or n == "cross-site"]
    with Session(get_engine()) as db:
        assert db.get(ApiKey, victim_id).revoked_at is None  # type: ignore[union-attr]
    assert len(_sessions()) == 2  # no sign-out happened either
    assert (
        anon.post("/keys", data={"name": "fine", "role": "viewer", "csrf_token": mine}).status_code
        == 201
    )


def test_every_writing_form_carries_the_csrf_token(client: TestClient, anon: TestClient) -> None:
    _, key = _key(client, "admin")
    token = sign_in(anon, key)
    victim_id, _ = _key(client, "viewer", "victim")
    for path in ("/", "/keys", f"/keys/{victim_id}/revoke"):
        html = anon.get(path).text
        forms = re.findall(r'<form[^>]*method="post".*?</form>', html, re.S)
        assert forms, path
        for form in forms:
            assert f'name="csrf_token" value="{token}"' in form, (path, form[:120])


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_only_admins_reach_the_keys_page(client: TestClient, anon: TestClient, role: str) -> None:
    victim_id, _ = _key(client, "viewer", "victim")
    _, key = _key(client, role)
    token = sign_in(anon, key)
    dashboard = anon.get("/").text
    assert 'href="/keys"' not in dashboard
    assert ">Dashboard<" in dashboard
    for method, path, form in (
        ("GET", "/keys", None),
        ("POST", "/keys", {"name": "sneaky", "role": "admin", "csrf_token": token}),
        ("GET", f"/keys/{victim_id}/revoke", None),
        ("POST", f"/keys/{victim_id}/revoke", {"csrf_token": token}),
    ):
        response = anon.request(method, path, data=form)
        assert response.status_code == 403, (method, path)
        assert "needs the admin role" in response.text
    assert "sneaky" not in _key_names(client)
    with Session(get_engine()) as db:
        assert db.get(ApiKey, victim_id).revoked_at is None  # type: ignore[union-attr]


def test_an_admin_sees_the_keys_link(anon: TestClient) -> None:
    sign_in(anon, ADMIN_KEY)
    assert 'href="/keys"' in anon.get("/").text


# --- CSP --------------------------------------------------------------------------------------


def test_every_page_has_a_strict_csp_and_no_inline_script_or_style(
    client: TestClient, anon: TestClient
) -> None:
    _, viewer = _key(client, "viewer")
    victim_id, _ = _key(client, "viewer", "victim")
    pages = {"sign-in form": anon.get("/")}
    token = sign_in(anon, ADMIN_KEY)
    pages |= {
        "dashboard": anon.get("/"),
        "keys": anon.get("/keys"),
        "keys refused": anon.post("/keys", data={"name": "", "role": "x", "csrf_token": token}),
        "key created": anon.post(
            "/keys", data={"name": "k", "role": "viewer", "csrf_token": token}
        ),
        "revoke": anon.get(f"/keys/{victim_id}/revoke"),
        "csrf refused": anon.post("/keys", data={"name": "k"}),
        "not found": anon.get("/keys/999999/revoke"),
    }
    anon.cookies.clear()
    sign_in(anon, viewer)
    pages["role refused"] = anon.get("/keys")
    for name, response in pages.items():
        csp = response.headers.get("content-security-policy", "")
        assert "unsafe-inline" not in csp, name
        assert "script-src" not in csp, name  # default-src 'none' covers scripts
        for directive in CSP_MUST:
            assert directive in csp, (name, directive)
        assert "<script" not in response.text, name
        assert "style=" not in response.text, name
        assert response.headers["cache-control"] == "no-store", name
