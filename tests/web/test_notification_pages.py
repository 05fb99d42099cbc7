"""The notifications page (SPEC section 7, issue 16: channels "managed over the API, the browser
and the CLI, with a 'send a test' action"): an admin creates, edits, tests and deletes channels
in the browser, through the API's schemas and service; the channel URL is write-only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from httpx import Response
from notify.receivers import dispatch, emit_events, free_port, receiver
from web.browser_session import sign_in

from app.core.settings import get_settings
from app.notify.events import EVENT_TYPES
from conftest import ADMIN_KEY
from factories import create

CANARY = "canary-5c1b7e0d"
CHANNELS = "/api/v1/notification-channels"


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KRSYNC_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("KRSYNC_PUBLIC_URL", "https://okr.example.com")
    monkeypatch.setenv("KRSYNC_ALLOW_PRIVATE_NETWORKS", "true")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def form(csrf: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"csrf_token": csrf, "name": "", "kind": "slack", "url": "", "to": ""}
    base.update(events=list(EVENT_TYPES), enabled="on")
    # None: a box the browser leaves out, as it does an unticked checkbox.
    return {k: v for k, v in (base | fields).items() if v is not None}


def post(anon: TestClient, path: str, data: dict[str, Any]) -> Response:
    return anon.post(path, data=data, follow_redirects=False)


def channels(client: TestClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get(CHANNELS).json()["items"]
    return items


def test_an_admin_creates_each_kind_and_the_url_is_never_shown(
    env: None, client: TestClient, anon: TestClient
) -> None:
    csrf = sign_in(anon, ADMIN_KEY, https=True)
    page = anon.get("/notifications")
    assert page.status_code == 200
    assert 'href="/notifications" aria-current="page"' in page.text  # in the top bar
    assert page.text.count('name="events"') == len(EVENT_TYPES)
    assert page.text.count(" checked>") >= len(EVENT_TYPES)  # all events by default
    assert "KRSYNC_SMTP_URL" in page.text  # each kind explained

    url = f"http://127.0.0.1:{free_port()}/services/T1/B2/{CANARY}"
    shown: list[str] = []
    for kind in ("slack", "teams"):
        done = post(anon, "/notifications", form(csrf, name=f"{kind} alerts", kind=kind, url=url))
        assert done.status_code == 303, done.text[-500:]
        assert done.headers["location"].startswith("/notifications#channel-")
    hook = post(anon, "/notifications", form(csrf, name="BI hook", kind="webhook", url=url))
    assert hook.status_code == 201
    assert hook.text.count('id="signing-secret">whsec_') == 1
    assert "standardwebhooks" in hook.text
    shown.append(hook.text)
    mail = post(
        anon,
        "/notifications",
        form(
            csrf,
            name="OKR mail",
            kind="email",
            to="okr@example.com\nana@example.com\n",
            events=["key_result.done", "digest.weekly"],
            team="Growth",
            owner="ana",
            enabled=None,
        ),
    )
    assert mail.status_code == 303, mail.text[-500:]

    by_name = {c["name"]: c for c in channels(client)}
    assert set(by_name) == {"slack alerts", "teams alerts", "BI hook", "OKR mail"}
    assert by_name["slack alerts"]["config"] == {"url_set": True}
    assert by_name["BI hook"]["config"] == {"url_set": True, "signing_secret_set": True}
    assert by_name["OKR mail"]["config"] == {"to": ["okr@example.com", "ana@example.com"]}
    assert by_name["OKR mail"]["events"] == ["key_result.done", "digest.weekly"]
    assert by_name["OKR mail"]["scope"] == {"team": "Growth", "owner": "ana"}
    assert by_name["OKR mail"]["enabled"] is False
    assert by_name["slack alerts"]["events"] == list(EVENT_TYPES)

    listing = anon.get("/notifications")
    shown.append(listing.text)
    assert listing.text.count("URL set") == 3
    assert "okr@example.com, ana@example.com" in listing.text
    assert "team: Growth, owner: ana" in listing.text  # in the API's order, on every database
    assert "whsec_" not in listing.text  # the secret was shown once
    for channel in by_name.values():
        shown.append(anon.get(f"/notifications/{channel['id']}/edit").text)
    assert 'placeholder="set: blank keeps it"' in shown[-2]
    # A refused re-render with a URL in the form does not send it back either.
    again = post(anon, "/notifications", form(csrf, name="slack alerts", url=url))
    assert again.status_code == 422
    shown.append(again.text)
    assert all(CANARY not in text for text in shown)


def test_an_edit_keeps_the_url_and_send_a_test_reaches_it(
    env: None, client: TestClient, anon: TestClient
) -> None:
    csrf = sign_in(anon, ADMIN_KEY, https=True)
    with receiver() as hook:
        url = f"{hook.url}/services/T1/B2/{CANARY}"
        done = post(anon, "/notifications", form(csrf, name="growth", url=url))
        assert done.status_code == 303
        cid = channels(client)[0]["id"]

        edit = anon.get(f"/notifications/{cid}/edit")
        assert edit.status_code == 200
        assert 'value="growth"' in edit.text
        changed = post(
            anon,
            f"/notifications/{cid}/edit",
            form(csrf, name="growth alerts", url="", events=["source.failing"], team="Growth"),
        )
        assert changed.status_code == 303, changed.text[-500:]
        read = client.get(f"{CHANNELS}/{cid}").json()
        assert read["name"] == "growth alerts"
        assert read["events"] == ["source.failing"]
        assert read["scope"] == {"team": "Growth"}
        assert read["config"] == {"url_set": True}

        tested = post(anon, f"/notifications/{cid}/test", {"csrf_token": csrf})
        assert tested.status_code == 200
        assert 'class="check-result check-ok"' in tested.text
        assert "the test message was delivered to &#39;growth alerts&#39;" in tested.text
        # The blank URL on the edit kept the stored one: the test went to it.
        assert [r.path for r in hook.requests] == [f"/services/T1/B2/{CANARY}"]
        assert CANARY not in tested.text

    # The receiver is gone now: the page says so, with the error and without the URL.
    down = f"http://127.0.0.1:{free_port()}/services/T9/B9/{CANARY}"
    replaced = post(anon, f"/notifications/{cid}/edit", form(csrf, name="growth alerts", url=down))
    assert replaced.status_code == 303
    failed = post(anon, f"/notifications/{cid}/test", {"csrf_token": csrf})
    assert 'class="check-result check-failed"' in failed.text
    assert "the test message was not delivered: could not reach the receiver" in failed.text
    assert CANARY not in failed.text


def test_delete_asks_first_then_removes_the_channel(
    env: None, client: TestClient, anon: TestClient
) -> None:
    csrf = sign_in(anon, ADMIN_KEY, https=True)
    post(anon, "/notifications", form(csrf, name="old", kind="email", to="a@example.com"))
    cid = channels(client)[0]["id"]
    confirm = anon.get(f"/notifications/{cid}/delete")
    assert confirm.status_code == 200
    assert "Delete “old”?" in confirm.text
    assert channels(client)  # asking deleted nothing
    gone = post(anon, f"/notifications/{cid}/delete", {"csrf_token": csrf})
    assert gone.status_code == 303
    assert channels(client) == []
    assert anon.get(f"/notifications/{cid}/edit").status_code == 404


def test_the_delivery_log_lists_each_attempt(
    env: None, client: TestClient, anon: TestClient
) -> None:
    csrf = sign_in(anon, ADMIN_KEY, https=True)
    with receiver() as hook:
        post(anon, "/notifications", form(csrf, name="up", url=f"{hook.url}/up/{CANARY}"))
        down = f"http://127.0.0.1:{free_port()}/down/{CANARY}"
        post(anon, "/notifications", form(csrf, name="down", kind="teams", url=down))
        emit_events(2)
        dispatch()
    by_name = {c["name"]: c["id"] for c in channels(client)}

    log = anon.get("/notifications/deliveries")
    assert log.status_code == 200
    assert log.text.count("data-delivery-id=") == 4
    assert log.text.count('class="pill delivery-delivered"') == 2
    assert log.text.count('class="pill delivery-pending"') == 2
    assert "could not reach the receiver" in log.text
    assert CANARY not in log.text

    only = anon.get(f"/notifications/deliveries?channel_id={by_name['down']}&status=pending")
    assert only.text.count("data-delivery-id=") == 2
    assert "key_result.status_changed" in only.text
    assert anon.get("/notifications/deliveries?status=failed").text.count("data-delivery-id=") == 0
    bad = anon.get("/notifications/deliveries?status=lost&channel_id=x")
    assert bad.status_code == 422
    assert "The status is pending, delivered or failed." in bad.text
    # The list says how each channel's last delivery went.
    listing = anon.get("/notifications").text
    assert 'class="pill delivery-delivered"' in listing
    assert 'class="pill delivery-pending"' in listing


def test_a_form_without_its_csrf_token_changes_nothing(
    env: None, client: TestClient, anon: TestClient
) -> None:
    sign_in(anon, ADMIN_KEY, https=True)
    url = f"http://127.0.0.1:{free_port()}/{CANARY}"
    refused = post(anon, "/notifications", form("", name="forged", url=url))
    assert refused.status_code == 403
    assert channels(client) == []
    create(client, "notification-channels", name="kept", kind="email", config={"to": ["a@b.co"]})
    cid = channels(client)[0]["id"]
    for path in (f"/notifications/{cid}/edit", f"/notifications/{cid}/delete"):
        assert post(anon, path, form("wrong", name="renamed")).status_code == 403
    assert [c["name"] for c in channels(client)] == ["kept"]


def test_an_editor_is_refused(env: None, client: TestClient, anon: TestClient) -> None:
    editor = create(client, "api-keys", name="ed", role="editor")["key"]
    csrf = sign_in(anon, editor, https=True)
    assert 'href="/notifications"' not in anon.get("/").text  # not in the top bar
    for path in ("/notifications", "/notifications/deliveries"):
        page = anon.get(path)
        assert page.status_code == 403
        assert "needs the admin role" in page.text
    refused = post(anon, "/notifications", form(csrf, name="x", kind="email", to="a@b.co"))
    assert refused.status_code == 403
    assert channels(client) == []


def test_bad_input_is_refused_beside_its_field_with_the_values_kept(
    env: None, client: TestClient, anon: TestClient
) -> None:
    csrf = sign_in(anon, ADMIN_KEY, https=True)

    def refused(**fields: Any) -> str:
        answer = post(anon, "/notifications", form(csrf, **fields))
        assert answer.status_code == 422, answer.text[-500:]
        return answer.text

    no_url = refused(name="growth", team="Growth")
    assert 'id="ch-url-error">a slack channel needs its url' in no_url
    assert 'value="growth"' in no_url
    assert 'value="Growth"' in no_url
    bad_url = refused(name="growth", url=f"ftp://example.com/{CANARY}")
    assert 'id="ch-url-error">must be an http or https URL' in bad_url
    assert CANARY not in bad_url
    bad_mail = refused(name="mail", kind="email", to="okr@example.com\nnot-an-address")
    assert 'id="ch-to-error">must be an email address' in bad_mail
    assert "not-an-address" in bad_mail  # the addresses are kept to fix
    no_events = refused(name="quiet", kind="email", to="a@example.com", events=[])
    assert 'id="ch-events-error"' in no_events
    long_team = refused(name="t", kind="email", to="a@example.com", team="x" * 201)
    assert 'id="ch-team-error"' in long_team
    bad_kind = refused(name="k", kind="pager")
    assert 'id="ch-kind-error"' in bad_kind
    create(client, "notification-channels", name="taken", kind="email", config={"to": ["a@b.co"]})
    clash = refused(name="taken", kind="email", to="a@example.com")
    assert 'id="ch-name-error">a notification channel named &#39;taken&#39; exists' in clash
    assert [c["name"] for c in channels(client)] == ["taken"]

    # On the edit page too, and nothing of the refused change is kept.
    cid = channels(client)[0]["id"]
    edit = post(anon, f"/notifications/{cid}/edit", form(csrf, name="", to="a@example.com"))
    assert edit.status_code == 422
    assert 'id="ch-name-error"' in edit.text
    assert client.get(f"{CHANNELS}/{cid}").json()["config"] == {"to": ["a@b.co"]}
    no_addresses = post(anon, f"/notifications/{cid}/edit", form(csrf, name="taken", to=" \n"))
    assert no_addresses.status_code == 422
    assert 'id="ch-to-error">config needs the channel&#39;s url or addresses' in no_addresses.text
    taken = create(
        client,
        "notification-channels",
        name="other",
        kind="slack",
        config={"url": "https://hooks.example.com/x"},
    )
    renamed = post(anon, f"/notifications/{taken['id']}/edit", form(csrf, name="taken"))
    assert renamed.status_code == 422
    assert 'id="ch-name-error">a notification channel named' in renamed.text
    assert client.get(f"{CHANNELS}/{taken['id']}").json()["name"] == "other"
    assert anon.get("/notifications/999999/edit").status_code == 404
