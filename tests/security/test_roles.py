"""Every route, with every role and with none, against the role table of SPEC section 3.

"`viewer` reads; `editor` also writes cycles, objectives, key results and check-ins; `admin` also
manages data sources, mappings, API keys and triggers syncs. Missing or unknown key → 401; too weak
a role → 403." A push is signed with its source's secret and takes no API key (section 4).

:data:`ROLE_TABLE` classifies every route the app serves, by method and path template; a route
it does not classify fails :func:`test_every_route_is_classified`, so no route ships without
its role being decided here. The walk then calls each route with real ids from a seeded
workspace, so what answers is the role check and not a 404: a caller with no key, an unknown,
a revoked or a malformed one must get 401, a role too weak 403 (whatever the body, malformed
JSON included: nobody learns what a route takes before they may call it), and a role strong
enough neither.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from app.core.settings import get_settings
from app.main import app
from app.push import service as push_service
from conftest import ADMIN_KEY
from factories import (
    api_key_headers,
    check_in,
    create,
    data_source,
    key_result,
    mapping,
    workspace,
)

PUBLIC = "public"  # no key needed; every caller gets the same answer
PAGE = "page"  # the browser page: the sign-in form without a key, the workspace with one
LOGIN = "login"  # the sign-in form's post: it checks the key it is given
SIGNED = "signed"  # a push: its source's signature, no API key
ADMIN_PAGE = "admin page"  # a browser route for admins: the key by header or sign-in cookie
ADMIN_BROWSER = "signed-in admin browser"  # the OAuth callback: the admin's sign-in cookie
PAGE_ADMIN = "page:admin"  # a browser page: sign in first (303 to /), then admin or a 403 page
PAGE_VIEWER = "page:viewer"  # a browser page any signed-in key may open
PAGE_EDITOR = "page:editor"  # a browser form that writes OKRs or check-ins: editor or a 403 page
VIEWER, EDITOR, ADMIN = "viewer", "editor", "admin"
RANK = {VIEWER: 0, EDITOR: 1, ADMIN: 2}

#: (method, path template) -> who may call it.
ROLE_TABLE: dict[tuple[str, str], str] = {
    # probes, docs and the browser's own routes
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/swagger-ui.css"): PUBLIC,
    ("GET", "/docs/swagger-ui-bundle.js"): PUBLIC,
    ("GET", "/docs/swagger-ui-init.js"): PUBLIC,
    ("GET", "/static/krsync.css"): PUBLIC,
    ("GET", "/"): PAGE,
    ("POST", "/login"): LOGIN,
    ("POST", "/logout"): PUBLIC,
    ("GET", "/oauth/{provider}/authorize"): ADMIN_PAGE,
    ("GET", "/oauth/callback"): ADMIN_BROWSER,
    ("GET", "/keys"): PAGE_ADMIN,
    ("GET", "/sources"): PAGE_ADMIN,
    ("GET", "/sources/{source_id}"): PAGE_ADMIN,
    ("GET", "/sources/new"): PAGE_ADMIN,
    ("GET", "/sources/new/{connector_key}"): PAGE_ADMIN,
    ("POST", "/sources/new/{connector_key}"): PAGE_ADMIN,
    ("GET", "/sources/{source_id}/edit"): PAGE_ADMIN,
    ("POST", "/sources/{source_id}/edit"): PAGE_ADMIN,
    ("GET", "/sources/{source_id}/delete"): PAGE_ADMIN,
    ("POST", "/sources/{source_id}/delete"): PAGE_ADMIN,
    ("POST", "/sources/{source_id}/test"): PAGE_ADMIN,
    ("POST", "/sources/{source_id}/sync"): PAGE_ADMIN,
    ("POST", "/sources/{source_id}/resume"): PAGE_ADMIN,
    ("POST", "/keys"): PAGE_ADMIN,
    ("GET", "/keys/{key_id}/revoke"): PAGE_ADMIN,
    ("POST", "/keys/{key_id}/revoke"): PAGE_ADMIN,
    ("GET", "/notifications"): PAGE_ADMIN,
    ("POST", "/notifications"): PAGE_ADMIN,
    ("GET", "/notifications/deliveries"): PAGE_ADMIN,
    ("GET", "/notifications/{channel_id}/edit"): PAGE_ADMIN,
    ("POST", "/notifications/{channel_id}/edit"): PAGE_ADMIN,
    ("POST", "/notifications/{channel_id}/test"): PAGE_ADMIN,
    ("GET", "/notifications/{channel_id}/delete"): PAGE_ADMIN,
    ("POST", "/notifications/{channel_id}/delete"): PAGE_ADMIN,
    ("GET", "/oauth-apps"): PAGE_ADMIN,
    ("POST", "/oauth-apps/{provider}"): PAGE_ADMIN,
    ("GET", "/oauth-apps/{provider}/delete"): PAGE_ADMIN,
    ("POST", "/oauth-apps/{provider}/delete"): PAGE_ADMIN,
    ("GET", "/okrs"): PAGE_VIEWER,
    ("POST", "/okrs/objectives"): PAGE_EDITOR,
    ("GET", "/key-results/{kr_id}"): PAGE_VIEWER,
    ("POST", "/key-results/{kr_id}/check-ins"): PAGE_EDITOR,
    ("POST", "/key-results/{kr_id}/final-score"): PAGE_EDITOR,
    ("POST", "/key-results/{kr_id}/check-ins/{check_in_id}"): PAGE_EDITOR,
    ("POST", "/key-results/{kr_id}/check-ins/{check_in_id}/delete"): PAGE_EDITOR,
    ("GET", "/key-results/{kr_id}/mappings/new"): PAGE_ADMIN,
    ("POST", "/key-results/{kr_id}/mappings/new"): PAGE_ADMIN,
    ("GET", "/mappings/{mapping_id}/edit"): PAGE_ADMIN,
    ("POST", "/mappings/{mapping_id}/edit"): PAGE_ADMIN,
    ("GET", "/mappings/{mapping_id}/delete"): PAGE_ADMIN,
    ("POST", "/mappings/{mapping_id}/delete"): PAGE_ADMIN,
    ("GET", "/cycles"): PAGE_VIEWER,
    ("POST", "/cycles"): PAGE_EDITOR,
    ("GET", "/cycles/{cycle_id}/edit"): PAGE_EDITOR,
    ("POST", "/cycles/{cycle_id}/edit"): PAGE_EDITOR,
    ("GET", "/cycles/{cycle_id}/delete"): PAGE_EDITOR,
    ("POST", "/cycles/{cycle_id}/delete"): PAGE_EDITOR,
    ("GET", "/cycles/{cycle_id}/close"): PAGE_EDITOR,
    ("POST", "/cycles/{cycle_id}/close"): PAGE_EDITOR,
    ("POST", "/cycles/{cycle_id}/reopen"): PAGE_ADMIN,
    ("GET", "/cycles/{cycle_id}/retrospective"): PAGE_VIEWER,
    ("POST", "/cycles/{cycle_id}/retrospective"): PAGE_EDITOR,
    ("POST", "/cycles/{cycle_id}/retrospective/{entry_id}"): PAGE_EDITOR,
    ("POST", "/cycles/{cycle_id}/retrospective/{entry_id}/delete"): PAGE_EDITOR,
    ("GET", "/cycles/{cycle_id}/carry-over"): PAGE_EDITOR,
    ("POST", "/cycles/{cycle_id}/carry-over"): PAGE_EDITOR,
    ("GET", "/okrs/objectives/{objective_id}/edit"): PAGE_EDITOR,
    ("POST", "/okrs/objectives/{objective_id}/edit"): PAGE_EDITOR,
    ("GET", "/okrs/objectives/{objective_id}/delete"): PAGE_EDITOR,
    ("POST", "/okrs/objectives/{objective_id}/delete"): PAGE_EDITOR,
    ("GET", "/okrs/objectives/{objective_id}/key-results/new"): PAGE_EDITOR,
    ("POST", "/okrs/objectives/{objective_id}/key-results"): PAGE_EDITOR,
    ("GET", "/key-results/{kr_id}/edit"): PAGE_EDITOR,
    ("POST", "/key-results/{kr_id}/edit"): PAGE_EDITOR,
    ("GET", "/key-results/{kr_id}/delete"): PAGE_EDITOR,
    ("POST", "/key-results/{kr_id}/delete"): PAGE_EDITOR,
    # OKRs: viewers read, editors write
    ("POST", "/api/v1/cycles"): EDITOR,
    ("GET", "/api/v1/cycles"): VIEWER,
    ("GET", "/api/v1/cycles/{cycle_id}"): VIEWER,
    ("PATCH", "/api/v1/cycles/{cycle_id}"): EDITOR,
    ("DELETE", "/api/v1/cycles/{cycle_id}"): EDITOR,
    ("POST", "/api/v1/cycles/{cycle_id}/close"): EDITOR,
    ("POST", "/api/v1/cycles/{cycle_id}/reopen"): ADMIN,
    ("POST", "/api/v1/objectives"): EDITOR,
    ("GET", "/api/v1/objectives"): VIEWER,
    ("GET", "/api/v1/objectives/{objective_id}"): VIEWER,
    ("PATCH", "/api/v1/objectives/{objective_id}"): EDITOR,
    ("DELETE", "/api/v1/objectives/{objective_id}"): EDITOR,
    ("POST", "/api/v1/key-results"): EDITOR,
    ("GET", "/api/v1/key-results"): VIEWER,
    ("GET", "/api/v1/key-results/{kr_id}"): VIEWER,
    ("PATCH", "/api/v1/key-results/{kr_id}"): EDITOR,
    ("DELETE", "/api/v1/key-results/{kr_id}"): EDITOR,
    ("POST", "/api/v1/key-results/{kr_id}/check-ins"): EDITOR,
    ("GET", "/api/v1/key-results/{kr_id}/check-ins"): VIEWER,
    ("PATCH", "/api/v1/key-results/{kr_id}/check-ins/{check_in_id}"): EDITOR,
    ("DELETE", "/api/v1/key-results/{kr_id}/check-ins/{check_in_id}"): EDITOR,
    ("GET", "/api/v1/key-results/{kr_id}/series"): VIEWER,
    ("GET", "/api/v1/dashboard"): VIEWER,
    # closing a cycle: viewers read the look back and the review, editors write and carry over
    ("POST", "/api/v1/cycles/{cycle_id}/retrospective"): EDITOR,
    ("GET", "/api/v1/cycles/{cycle_id}/retrospective"): VIEWER,
    ("PATCH", "/api/v1/cycles/{cycle_id}/retrospective/{entry_id}"): EDITOR,
    ("DELETE", "/api/v1/cycles/{cycle_id}/retrospective/{entry_id}"): EDITOR,
    ("GET", "/api/v1/cycles/{cycle_id}/review"): VIEWER,
    ("GET", "/api/v1/objectives/{objective_id}/review"): VIEWER,
    ("POST", "/api/v1/cycles/{cycle_id}/carry-over"): EDITOR,
    # what the sources measure and how they ran: readable by all
    ("GET", "/api/v1/connectors"): VIEWER,
    ("GET", "/api/v1/mappings"): VIEWER,
    ("GET", "/api/v1/mappings/{mapping_id}"): VIEWER,
    ("GET", "/api/v1/sync-runs"): VIEWER,
    ("GET", "/api/v1/sync-runs/{run_id}"): VIEWER,
    # admins manage sources (their config names accounts), mappings, syncs and keys
    ("POST", "/api/v1/data-sources"): ADMIN,
    ("GET", "/api/v1/data-sources"): ADMIN,
    ("GET", "/api/v1/data-sources/{source_id}"): ADMIN,
    ("PATCH", "/api/v1/data-sources/{source_id}"): ADMIN,
    ("DELETE", "/api/v1/data-sources/{source_id}"): ADMIN,
    ("POST", "/api/v1/data-sources/{source_id}/test"): ADMIN,
    ("POST", "/api/v1/data-sources/{source_id}/sync"): ADMIN,
    ("POST", "/api/v1/data-sources/{source_id}/resume"): ADMIN,
    ("POST", "/api/v1/mappings"): ADMIN,
    ("PATCH", "/api/v1/mappings/{mapping_id}"): ADMIN,
    ("DELETE", "/api/v1/mappings/{mapping_id}"): ADMIN,
    ("POST", "/api/v1/mappings/{mapping_id}/preview"): ADMIN,
    ("POST", "/api/v1/api-keys"): ADMIN,
    ("GET", "/api/v1/api-keys"): ADMIN,
    ("DELETE", "/api/v1/api-keys/{key_id}"): ADMIN,
    ("PUT", "/api/v1/oauth-apps/{provider}"): ADMIN,
    ("GET", "/api/v1/oauth-apps/{provider}"): ADMIN,
    ("DELETE", "/api/v1/oauth-apps/{provider}"): ADMIN,
    # notification channels hold secret URLs; their delivery log says where events went
    ("POST", "/api/v1/notification-channels"): ADMIN,
    ("GET", "/api/v1/notification-channels"): ADMIN,
    ("GET", "/api/v1/notification-channels/{channel_id}"): ADMIN,
    ("PATCH", "/api/v1/notification-channels/{channel_id}"): ADMIN,
    ("DELETE", "/api/v1/notification-channels/{channel_id}"): ADMIN,
    ("POST", "/api/v1/notification-channels/{channel_id}/test"): ADMIN,
    ("GET", "/api/v1/notification-deliveries"): ADMIN,
    # who changed what: actors, and the config of sources
    ("GET", "/api/v1/audit-events"): ADMIN,
    # figures from other systems
    ("POST", "/api/v1/push/{data_source_id}"): SIGNED,
}

PUSH_SECRET = "role-walk-push-secret-0123456789"
JSON = {"Content-Type": "application/json"}
#: Bodies a refused caller may send: none, JSON the route can't take, and JSON that isn't JSON.
REFUSED_BODIES: dict[str, dict[str, Any]] = {
    "no body": {},
    "wrong JSON": {"json": {"krsync_no_such_field": [1, 2, 3]}},
    "malformed JSON": {"content": b'{"name": ', "headers": JSON},
    "not UTF-8": {"content": b'{"name": "\xff\xfe"}', "headers": JSON},
}


def served_routes() -> set[tuple[str, str]]:
    """(method, path template) of every route the app serves, in the schema or not."""
    found: set[tuple[str, str]] = set()

    def walk(routes: Any) -> None:
        for route in routes:
            nested = getattr(route, "effective_route_contexts", None)
            if nested is not None:  # an included router
                walk(nested())
                continue
            if getattr(route, "routes", None):  # a mount
                walk(route.routes)
                continue
            for method in getattr(route, "methods", None) or ():
                if method != "HEAD":  # answered by the GET route
                    found.add((method, route.path))

    walk(app.router.routes)
    return found


def schema_operations() -> set[tuple[str, str]]:
    paths = app.openapi()["paths"]
    return {(method.upper(), path) for path, ops in paths.items() for method in ops}


def test_every_route_is_classified() -> None:
    served = served_routes()
    unclassified = sorted(served - ROLE_TABLE.keys())
    assert not unclassified, f"decide who may call these and add them to ROLE_TABLE: {unclassified}"
    gone = sorted(ROLE_TABLE.keys() - served)
    assert not gone, f"ROLE_TABLE lists routes the app no longer serves: {gone}"
    assert schema_operations() <= served


# --- the seeded workspace and its callers ---------------------------------------------------


@dataclass(frozen=True)
class Workspace:
    ids: dict[str, int | str]
    #: Caller name -> Authorization headers (empty for none).
    callers: dict[str, dict[str, str]]
    objective_title: str


NO_KEY = "no key"
UNKNOWN = "unknown key"
REVOKED = "revoked key"
MALFORMED = "malformed header"
UNAUTHENTICATED = (NO_KEY, UNKNOWN, REVOKED, MALFORMED)


@pytest.fixture
def seeded(
    client: TestClient, anon: TestClient, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, Workspace]]:
    monkeypatch.setenv("KRSYNC_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()
    cycle, objective, kr = workspace(client)
    checked_in = check_in(client, kr, "2026-07-15", 100)
    demo = data_source(client)
    push = create(
        client,
        "data-sources",
        name="Pushed figures",
        connector="push",
        config={},
        credentials={"secret": PUSH_SECRET},
    )
    kr_mapped = key_result(client, objective, title="Sessions")["id"]
    mapped = mapping(client, kr_mapped, demo["id"])
    synced = client.post(f"/api/v1/data-sources/{demo['id']}/sync")
    assert synced.status_code == 202, synced.text
    entry = create(
        client,
        f"cycles/{cycle}/retrospective",
        format="4l",
        category="learned",
        text="Check in every Monday",
    )
    spare = create(client, "api-keys", name="spare", role="viewer")
    oauth_app = {"client_id": "role-walk-client", "client_secret": "role-walk-client-secret"}
    assert client.put("/api/v1/oauth-apps/hubspot", json=oauth_app).status_code == 200
    # An email channel: its test fails at once (no KRSYNC_SMTP_URL), reaching no network.
    channel = create(
        client,
        "notification-channels",
        name="role walk",
        kind="email",
        config={"to": ["okr@example.com"]},
    )
    revoked = create(client, "api-keys", name="revoked", role="admin")
    assert client.delete(f"/api/v1/api-keys/{revoked['id']}").status_code == 204
    callers = {
        NO_KEY: {},
        UNKNOWN: {"Authorization": "Bearer krs_no-such-key-0123456789abcdef"},
        REVOKED: {"Authorization": f"Bearer {revoked['key']}"},
        MALFORMED: {"Authorization": f"Token {ADMIN_KEY}"},
        VIEWER: api_key_headers(client, VIEWER),
        EDITOR: api_key_headers(client, EDITOR),
        ADMIN: api_key_headers(client, ADMIN),
    }
    ids = {
        "cycle_id": cycle,
        "objective_id": objective,
        "kr_id": kr,
        "check_in_id": checked_in["id"],
        "entry_id": entry["id"],
        "source_id": demo["id"],
        "data_source_id": push["id"],
        "mapping_id": mapped["id"],
        "run_id": synced.json()["id"],
        "key_id": spare["id"],
        "provider": "hubspot",
        "connector_key": "demo",
        "channel_id": channel["id"],
    }
    title = client.get(f"/api/v1/objectives/{objective}").json()["title"]
    yield anon, Workspace(ids, callers, title)
    get_settings.cache_clear()


def filled(path: str, ids: dict[str, int | str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)


def call(
    anon: TestClient, method: str, path: str, headers: dict[str, str], body: dict[str, Any]
) -> tuple[int, str]:
    extra = dict(body)
    merged = {**headers, **extra.pop("headers", {})}
    response = anon.request(method, path, headers=merged, follow_redirects=False, **extra)
    return response.status_code, response.text[:300]


def api_routes() -> list[tuple[str, str, str]]:
    """(method, path, role) of the routes an API key guards; deletes last, they remove ids."""
    rows = [(m, p, r) for (m, p), r in ROLE_TABLE.items() if r in RANK]
    return sorted(rows, key=lambda row: (row[0] == "DELETE", row[1], row[0]))


# --- the walk ---------------------------------------------------------------------------------


def test_every_api_route_answers_its_role_table(seeded: tuple[TestClient, Workspace]) -> None:
    anon, ws = seeded
    wrong: list[str] = []

    def expect(
        want: str, method: str, path: str, caller: str, body: str, got: tuple[int, str]
    ) -> None:
        status, text = got
        ok = {
            "401": status == 401,
            "403": status == 403,
            "allowed": status not in (401, 403) and status < 500,
        }[want]
        if not ok:
            wrong.append(f"{method} {path} as {caller}, {body}: {status}, wanted {want}: {text}")

    routes = api_routes()
    for method, template, role in routes:
        path = filled(template, ws.ids)
        for caller in (*UNAUTHENTICATED, *(r for r in RANK if RANK[r] < RANK[role])):
            want = "401" if caller in UNAUTHENTICATED else "403"
            for name, body in REFUSED_BODIES.items():
                got = call(anon, method, path, ws.callers[caller], body)
                expect(want, method, path, caller, name, got)
            if "{" in template:  # an id that isn't one: the key is checked before the path
                bad_path = re.sub(r"\{\w+\}", "not-an-id", template)
                got = call(anon, method, bad_path, ws.callers[caller], {})
                expect(want, method, bad_path, caller, "no body", got)
    for method, template, role in routes:
        path = filled(template, ws.ids)
        for caller in (r for r in RANK if RANK[r] >= RANK[role]):
            body = REFUSED_BODIES["wrong JSON"] if method in ("POST", "PATCH") else {}
            got = call(anon, method, path, ws.callers[caller], body)
            expect("allowed", method, path, caller, "wrong JSON", got)

    assert not wrong, "\n".join(wrong)


def test_the_admin_pages_answer_admins_only(seeded: tuple[TestClient, Workspace]) -> None:
    """The OAuth routes answer a browser: the key by header or sign-in cookie, as `/` takes it;
    anyone else gets a page saying why (401 without a live key, 403 below admin)."""
    anon, ws = seeded
    wrong: list[str] = []
    for (method, template), role in sorted(ROLE_TABLE.items()):
        if role not in (ADMIN_PAGE, ADMIN_BROWSER):
            continue
        path = filled(template, ws.ids)
        for caller, headers in ws.callers.items():
            want = 401 if caller in UNAUTHENTICATED else 403 if caller != ADMIN else None
            for how in ("header", "cookie"):
                if how == "cookie":
                    token = headers.get("Authorization", "").partition(" ")[2]
                    if caller == MALFORMED or not token:
                        continue
                    # Signed in as a browser is (an unknown or revoked key gets no session).
                    anon.post("/login", data={"key": token}, follow_redirects=False)
                    headers = {}
                status, text = call(anon, method, path, headers, {})
                anon.cookies.clear()
                ok = status == want if want else status not in (401, 403) and status < 500
                if not ok:
                    wrong.append(f"{method} {path} as {caller} by {how}: {status}: {text}")
    assert not wrong, "\n".join(wrong)


def test_the_bootstrap_key_is_an_admin(seeded: tuple[TestClient, Workspace]) -> None:
    anon, ws = seeded
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    for method, template, _ in api_routes():
        if method == "GET":
            status, text = call(anon, method, filled(template, ws.ids), headers, {})
            assert status == 200, f"{method} {template}: {status} {text}"


def test_public_routes_answer_everyone_alike(seeded: tuple[TestClient, Workspace]) -> None:
    anon, ws = seeded
    for (method, path), role in sorted(ROLE_TABLE.items()):
        if role != PUBLIC:
            continue
        answers = {
            caller: call(anon, method, path, headers, {})[0]
            for caller, headers in ws.callers.items()
        }
        assert len(set(answers.values())) == 1, f"{method} {path}: {answers}"
        assert answers[NO_KEY] < 400, f"{method} {path}: {answers}"


def test_the_page_shows_the_workspace_to_keys_only(seeded: tuple[TestClient, Workspace]) -> None:
    anon, ws = seeded
    for caller, headers in ws.callers.items():
        response = anon.get("/", headers=headers)
        assert response.status_code == 200, (caller, response.text[:300])
        shown = ws.objective_title in response.text
        assert shown == (caller in RANK), caller
        if caller not in RANK:
            assert 'name="key"' in response.text, "a caller without a key gets the sign-in form"
    for caller in (UNKNOWN, REVOKED, ADMIN):  # a key in a cookie, as older versions kept it
        token = ws.callers[caller]["Authorization"].partition(" ")[2]
        for cookie in ("krsync_key", "krsync_session"):
            anon.cookies.set(cookie, token)
            response = anon.get("/")
            assert ws.objective_title not in response.text, (caller, cookie)
            assert f'{cookie}=""' in response.headers["set-cookie"], (caller, cookie)
            assert anon.get("/api/v1/cycles").status_code == 401, (caller, cookie)
            anon.cookies.clear()


def test_every_page_route_answers_its_role(seeded: tuple[TestClient, Workspace]) -> None:
    """No key: sent to sign in; too weak a role: a 403 page; else the page, whatever the form."""
    anon, ws = seeded
    pages = sorted(
        ((m, p, r.partition(":")[2]) for (m, p), r in ROLE_TABLE.items() if r.startswith("page:")),
        key=lambda row: (row[0] == "POST", row[1]),
    )
    assert pages
    wrong: list[str] = []
    for method, template, role in pages:
        path = filled(template, ws.ids)
        for caller, headers in ws.callers.items():
            response = anon.request(
                method, path, headers=headers, data={"name": ""}, follow_redirects=False
            )
            status, text = response.status_code, response.text
            location = response.headers.get("location", "")
            if caller in UNAUTHENTICATED:
                ok = status == 303 and location == "/"
            elif RANK[caller] < RANK[role]:
                ok = status == 403 and f"needs the {role} role" in text
            else:
                ok = status < 500 and status not in (401, 403) and location != "/"
            if not ok:
                wrong.append(f"{method} {path} as {caller}: {status} {location} {text[-300:]}")
    assert not wrong, "\n".join(wrong)


def test_signing_in_takes_a_live_key(seeded: tuple[TestClient, Workspace]) -> None:
    anon, ws = seeded
    for caller, headers in ws.callers.items():
        if caller == MALFORMED:
            continue  # a header's scheme: the form has none
        key = headers.get("Authorization", "").partition(" ")[2]
        response = anon.post("/login", data={"key": key}, follow_redirects=False)
        anon.cookies.clear()
        if caller in RANK:
            assert response.status_code == 303, (caller, response.text[:300])
        else:
            assert response.status_code == 401, (caller, response.text[:300])


# --- push: the signature, never an API key ----------------------------------------------------


def signed(secret: str, body: bytes) -> dict[str, str]:
    """Signed as a pushing system signs, on the clock the push service reads."""
    stamp = str(int(push_service.clock.utcnow().timestamp()))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "X-Krsync-Timestamp": stamp,
        "X-Krsync-Signature": f"sha256={digest}",
        "Content-Type": "application/json",
    }


def test_a_push_takes_its_signature_and_no_api_key(seeded: tuple[TestClient, Workspace]) -> None:
    anon, ws = seeded
    push_id, other_id = ws.ids["data_source_id"], ws.ids["source_id"]
    refused: list[str] = []
    for value, (caller, headers) in enumerate(ws.callers.items()):
        # A body of its own for each caller: a signature is good for one push only.
        body = json.dumps([{"date": "2026-07-10", "metric": "signups", "value": value}]).encode()
        for target in (push_id, other_id, 999_999):
            for signature in ({}, signed("not-the-secret-0123456789", body)):
                response = anon.post(
                    f"/api/v1/push/{target}", content=body, headers={**headers, **signature}
                )
                if response.status_code != 401:
                    refused.append(
                        f"{caller} -> push/{target} {'signed wrongly' if signature else 'unsigned'}"
                        f": {response.status_code} {response.text[:200]}"
                    )
        good = signed(PUSH_SECRET, body)
        response = anon.post(f"/api/v1/push/{push_id}", content=body, headers={**headers, **good})
        assert response.status_code == 202, (caller, response.text)
    assert not refused, "every unsigned or wrongly signed push answers the same 401:\n" + "\n".join(
        refused
    )
