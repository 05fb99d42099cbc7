"""Notification channels over the API (SPEC section 7): URLs write-only and encrypted, a webhook's
signing secret shown once, events and scope validated, the private-network guard at the door,
every write audited without a secret, admins only."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from notify.receivers import channel, receiver

from app.core.settings import get_settings
from app.notify.events import EVENT_TYPES
from factories import api_key_headers

SLACK_URL = "https://hooks.slack.com/services/T0123456789/B0123456789/abcdefghijklmnopqrstuvwx"


def audit_of(client: TestClient, channel_id: int) -> list[dict[str, Any]]:
    response = client.get(
        "/api/v1/audit-events",
        params={"entity": "notification_channel", "entity_id": channel_id},
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_a_slack_channel_keeps_its_url_to_itself(client: TestClient) -> None:
    created = channel(client, "slack", name="OKR alerts", config={"url": SLACK_URL})
    assert created["config"] == {"url_set": True}
    assert created["events"] == list(EVENT_TYPES)
    assert created["scope"] is None
    assert created["enabled"] is True
    assert created["signing_secret"] is None
    read = client.get(f"/api/v1/notification-channels/{created['id']}")
    assert read.status_code == 200
    assert read.json()["config"] == {"url_set": True}
    listed = client.get("/api/v1/notification-channels").json()
    assert listed["total"] == 1
    assert listed["items"][0]["name"] == "OKR alerts"
    for text in (read.text, client.get("/api/v1/notification-channels").text):
        assert "abcdefghijklmnop" not in text
        assert "hooks.slack.com" not in text
    [event] = audit_of(client, created["id"])
    assert event["action"] == "create"
    assert event["changes"]["config"] == {"url": "set"}
    assert "abcdefghijklmnop" not in str(event)


def test_a_webhook_channel_shows_its_signing_secret_once(client: TestClient) -> None:
    created = channel(client, "webhook", config={"url": "https://example.com/krsync"})
    secret = created["signing_secret"]
    assert secret.startswith("whsec_")
    assert len(secret) > 40
    assert created["config"] == {"url_set": True, "signing_secret_set": True}
    read = client.get(f"/api/v1/notification-channels/{created['id']}").text
    assert secret.removeprefix("whsec_")[:16] not in read
    assert secret not in str(audit_of(client, created["id"]))


def test_an_email_channel_lists_its_addresses(client: TestClient) -> None:
    created = channel(
        client, "email", config={"to": ["okr@example.com", "ana@example.com", "okr@example.com"]}
    )
    assert created["config"] == {"to": ["okr@example.com", "ana@example.com"]}


def test_events_and_scope_narrow_a_channel(client: TestClient) -> None:
    created = channel(
        client,
        "email",
        config={"to": ["growth@example.com"]},
        events=["key_result.status_changed", "key_result.done", "key_result.done"],
        scope={"team": "Growth", "cycle_id": 4},
    )
    assert created["events"] == ["key_result.status_changed", "key_result.done"]
    assert created["scope"] == {"cycle_id": 4, "team": "Growth"}
    widened = client.patch(
        f"/api/v1/notification-channels/{created['id']}", json={"scope": None, "enabled": False}
    )
    assert widened.status_code == 200, widened.text
    assert widened.json()["scope"] is None
    assert widened.json()["enabled"] is False


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"kind": "slack", "config": {}}, "config.url", "needs its url"),
        ({"kind": "slack", "config": {"url": SLACK_URL, "to": ["a@example.com"]}}, "config.to", ""),
        ({"kind": "email", "config": {"to": []}}, "config.to", ""),
        ({"kind": "email", "config": {"url": SLACK_URL}}, "config.url", "not a url"),
        ({"kind": "email", "config": {"to": ["not an address"]}}, "config.to.0", "email address"),
        (
            {"kind": "email", "config": {"to": ["a@example.com\r\nBcc: x@evil.test"]}},
            "config.to.0",
            "",
        ),
        ({"kind": "teams", "config": {"url": "ftp://example.com/x"}}, "config.url", "http"),
        ({"kind": "pager", "config": {}}, "kind", ""),
        (
            {"kind": "email", "config": {"to": ["a@example.com"]}, "events": ["kr.moved"]},
            "events.0",
            "",
        ),
        ({"kind": "email", "config": {"to": ["a@example.com"]}, "events": []}, "events", ""),
        (
            {"kind": "email", "config": {"to": ["a@example.com"]}, "scope": {"squad": "x"}},
            "scope.squad",
            "",
        ),
    ],
)
def test_bad_channels_are_refused_beside_their_field(
    client: TestClient, body: dict[str, Any], field: str, words: str
) -> None:
    response = client.post("/api/v1/notification-channels", json={"name": "bad", **body})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field, response.json()
    assert words in response.json()["detail"]
    assert client.get("/api/v1/notification-channels").json()["total"] == 0


def test_a_second_channel_of_the_same_name_conflicts(client: TestClient) -> None:
    channel(client, "email", name="ops", config={"to": ["ops@example.com"]})
    again = client.post(
        "/api/v1/notification-channels",
        json={"name": "ops", "kind": "email", "config": {"to": ["x@example.com"]}},
    )
    assert again.status_code == 409
    assert again.json()["field"] == "name"


def test_no_url_is_stored_without_a_secret_key(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KRSYNC_SECRET_KEY")
    get_settings.cache_clear()
    response = client.post(
        "/api/v1/notification-channels",
        json={"name": "s", "kind": "slack", "config": {"url": SLACK_URL}},
    )
    assert response.status_code == 422
    assert response.json()["field"] == "config.url"
    assert "KRSYNC_SECRET_KEY" in response.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook/secret-path-0123456789",
        "http://10.1.2.3/hook/secret-path-0123456789",
        "http://169.254.169.254/latest/meta-data/secret-path-0123456789",
        "http://[::1]:8080/secret-path-0123456789",
        "http://localhost:8080/secret-path-0123456789",
    ],
)
def test_the_private_network_guard_refuses_internal_urls(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """SPEC section 5: no loopback, private or link-local address unless the admin allows it;
    the refusal names the address but not the URL's path, which is the secret."""
    monkeypatch.setenv("KRSYNC_ALLOW_PRIVATE_NETWORKS", "false")
    get_settings.cache_clear()
    response = client.post(
        "/api/v1/notification-channels",
        json={"name": "in", "kind": "webhook", "config": {"url": url}},
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "config.url"
    assert "KRSYNC_ALLOW_PRIVATE_NETWORKS" in response.json()["detail"]
    assert "secret-path" not in response.text


def test_a_new_url_replaces_the_old_one_and_the_audit_says_only_that(client: TestClient) -> None:
    created = channel(client, "teams", config={"url": "https://example.com/one-0123456789abc"})
    changed = client.patch(
        f"/api/v1/notification-channels/{created['id']}",
        json={"config": {"url": "https://example.com/two-0123456789abc"}, "name": "Teams OKRs"},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Teams OKRs"
    update = audit_of(client, created["id"])[0]
    assert update["action"] == "update"
    assert update["changes"]["config.url"] == "replaced"
    assert "0123456789abc" not in str(update)
    kind = client.patch(f"/api/v1/notification-channels/{created['id']}", json={"kind": "slack"})
    assert kind.status_code == 422
    assert kind.json()["field"] == "kind"
    wrong = client.patch(
        f"/api/v1/notification-channels/{created['id']}", json={"config": {"to": ["a@example.com"]}}
    )
    assert wrong.status_code == 422
    assert wrong.json()["field"] == "config.to"


def test_deleting_a_channel_takes_its_deliveries(client: TestClient) -> None:
    created = channel(client, "email", config={"to": ["ops@example.com"]})
    from notify.receivers import emit_events

    emit_events(2)
    assert client.get("/api/v1/notification-deliveries").json()["total"] == 2
    assert client.delete(f"/api/v1/notification-channels/{created['id']}").status_code == 204
    assert client.get(f"/api/v1/notification-channels/{created['id']}").status_code == 404
    assert client.get("/api/v1/notification-deliveries").json()["total"] == 0
    assert audit_of(client, created["id"])[0]["action"] == "delete"


def test_the_test_action_sends_now_and_says_how_it_went(client: TestClient) -> None:
    with receiver() as up:
        created = channel(client, "slack", config={"url": f"{up.url}/services/T1/B2/abcdefghijkl"})
        sent = client.post(f"/api/v1/notification-channels/{created['id']}/test")
        assert sent.status_code == 200, sent.text
        assert sent.json() == {
            "ok": True,
            "message": "the test message was delivered to 'slack channel'",
            "response_status": 200,
        }
        [got] = up.requests
        assert got.json()["blocks"][0]["text"]["text"] == "krsync test message"
    mail = channel(client, "email", name="mail", config={"to": ["ops@example.com"]})
    refused = client.post(f"/api/v1/notification-channels/{mail['id']}/test").json()
    assert refused["ok"] is False
    assert "KRSYNC_SMTP_URL" in refused["message"]
    assert client.post("/api/v1/notification-channels/999/test").status_code == 404
    # The test goes past the outbox: nothing is logged as a delivery.
    assert client.get("/api/v1/notification-deliveries").json()["total"] == 0


def test_the_delivery_log_filters_and_refuses_what_it_does_not_take(client: TestClient) -> None:
    assert client.get("/api/v1/notification-deliveries?status=pending").status_code == 200
    bad = client.get("/api/v1/notification-deliveries?status=sent")
    assert bad.status_code == 422
    unknown = client.get("/api/v1/notification-deliveries?kind=slack")
    assert unknown.status_code == 422


def test_editors_and_viewers_are_refused(client: TestClient, anon: TestClient) -> None:
    for role in ("viewer", "editor"):
        headers = api_key_headers(client, role)
        assert anon.get("/api/v1/notification-channels", headers=headers).status_code == 403
        assert anon.get("/api/v1/notification-deliveries", headers=headers).status_code == 403
