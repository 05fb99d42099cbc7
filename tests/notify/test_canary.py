"""A canary in every channel secret (Slack, Teams and webhook URLs, path and query; a webhook's
signing secret; the SMTP password) and no piece of it anywhere krsync writes: no response, no
log line (every logger at DEBUG), no delivery record, no audit event, no column but the
encrypted ones. The receivers misbehave on purpose: they answer 500 with a body echoing the URL
they were called on and every header, as a careless platform would.

SPEC section 7: "Webhook URLs are secrets: encrypted, write-only, masked in every log and error."
"""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from notify.receivers import Clock, Received, dispatch, emit_events, free_port, receiver
from security.leaks import Finder, canary, database_texts, leaks, log_texts, response_texts

from app.core.db import get_engine
from app.core.settings import get_settings
from app.core.vault import get_secret_box


def echo(request: Received) -> tuple[int, bytes]:
    """What a careless receiver answers: its own URL and the request's headers, echoed."""
    echoed = {"path": request.path, "headers": request.headers}
    return 500, json.dumps(echoed).encode()


def test_no_piece_of_a_channel_secret_leaks(
    client: TestClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        if not name.startswith("sqlalchemy"):
            caplog.set_level(logging.DEBUG, logger=name)
    responses: list[httpx.Response] = []
    client.event_hooks["response"] = [responses.append]
    secrets: dict[str, str] = {}
    smtp_password = secrets["smtp password"] = canary()
    # A mail server that is down: the password must not ride along in the connection error.
    password = quote(smtp_password, safe="")
    monkeypatch.setenv("KRSYNC_SMTP_URL", f"smtp://krsync:{password}@127.0.0.1:{free_port()}")
    monkeypatch.setenv("KRSYNC_MAIL_FROM", "okr@example.com")
    get_settings.cache_clear()

    with receiver(echo) as careless:
        urls = {
            "slack": f"{careless.url}/services/T0/B0/{canary()}",
            "teams": f"{careless.url}/workflows/{canary()}/invoke?sig={canary()}",
            "webhook": f"{careless.url}/hooks?token={canary()}",
        }
        secrets |= {f"{kind} url": url.split(careless.url)[1] for kind, url in urls.items()}
        ids = {}
        for kind, url in urls.items():
            response = client.post(
                "/api/v1/notification-channels",
                json={"name": kind, "kind": kind, "config": {"url": url}},
            )
            assert response.status_code == 201, response.text
            ids[kind] = response.json()["id"]
            if kind == "webhook":
                secrets["signing secret"] = response.json()["signing_secret"]
                responses.remove(response)  # where it is shown, once
        mail = client.post(
            "/api/v1/notification-channels",
            json={"name": "mail", "kind": "email", "config": {"to": ["ops@example.com"]}},
        )
        assert mail.status_code == 201
        for kind, url in urls.items():
            replaced = url + "x"
            secrets[f"{kind} new url"] = replaced.split(careless.url)[1]
            patched = client.patch(
                f"/api/v1/notification-channels/{ids[kind]}", json={"config": {"url": replaced}}
            )
            assert patched.status_code == 200, patched.text
        for channel_id in [*ids.values(), mail.json()["id"]]:
            tested = client.post(f"/api/v1/notification-channels/{channel_id}/test")
            assert tested.status_code == 200
            assert tested.json()["ok"] is False
        emit_events(2)
        clock = Clock()
        for _ in range(3):
            dispatch(clock)
            clock.advance(minutes=3)
        assert len(careless.requests) >= 9
        # Pointed at a port nobody listens on: the connection error must not quote the URL.
        down = f"http://127.0.0.1:{free_port()}/down/{canary()}"
        secrets["down url"] = down.split("/", 3)[3]
        assert (
            client.patch(
                f"/api/v1/notification-channels/{ids['slack']}", json={"config": {"url": down}}
            ).status_code
            == 200
        )
        dispatch(clock)

    for path in (
        "/api/v1/notification-channels",
        *(f"/api/v1/notification-channels/{i}" for i in ids.values()),
        "/api/v1/notification-deliveries",
        "/api/v1/audit-events?entity=notification_channel",
    ):
        assert client.get(path).status_code == 200
    delivered = client.get("/api/v1/notification-deliveries").json()["items"]
    errors = [a["error"] for d in delivered for a in d["attempt_log"]]
    assert any("answered 500" in (e or "") for e in errors), "the echo reached the log, masked"
    assert any("ConnectError" in (e or "") for e in errors)

    finder = Finder(secrets)
    logged = list(log_texts(caplog.records))
    box = get_secret_box()
    assert box is not None
    texts, opened = database_texts(get_engine(), box)
    found = leaks(finder, response_texts(responses)) + leaks(finder, logged) + leaks(finder, texts)
    assert not found, "\n".join(found)
    stored = " ".join(opened)
    for kept in ("teams new url", "webhook new url", "down url", "signing secret"):
        assert secrets[kept] in stored, f"the {kept} is kept, encrypted"
