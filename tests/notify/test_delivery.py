"""The outbox delivered: payloads in the shapes the receivers document, at least once, in order
per channel, retried on schedule for 24 hours, never twice at once (SPEC section 7)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from notify.conftest import PUBLIC_URL
from notify.receivers import (
    STATUS_CHANGED,
    Clock,
    Received,
    Receiver,
    channel,
    dispatch,
    emit_events,
    free_port,
    receiver,
)
from sqlalchemy import func, select
from standardwebhooks import Webhook

from app.core.db import session_scope
from app.core.settings import get_settings
from app.models import NotificationDelivery, NotificationEvent
from app.notify.dispatch import GIVE_UP_AFTER, LEASE, RETRY_AFTER, retry_delay
from app.notify.events import emit


def deliveries(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/notification-deliveries", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_slack_gets_block_kit_with_the_key_result_its_change_progress_and_a_link(
    client: TestClient,
) -> None:
    """Slack's incoming webhooks take `text` (the notification's fallback) and `blocks`
    (https://api.slack.com/messaging/webhooks; Block Kit header, section with mrkdwn fields and
    an actions block with a link button: https://docs.slack.dev/messaging/formatting-message-text/).
    Slack answers 200 `ok`."""
    with receiver() as slack:
        channel(client, "slack", config={"url": f"{slack.url}/services/T0/B0/abcdefghijklmnop"})
        emit_events(1)
        report = dispatch()
        assert report.delivered == 1
        [got] = slack.requests
    assert got.path == "/services/T0/B0/abcdefghijklmnop"
    assert got.headers["Content-Type"] == "application/json"
    payload = got.json()
    assert set(payload) == {"text", "blocks"}
    assert "3,000 new followers" in payload["text"]
    header, section, actions = payload["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": header["text"]["text"]},
    }
    assert header["text"]["text"] == "3,000 new followers: off track"
    assert section["type"] == "section"
    assert section["text"]["type"] == "mrkdwn"
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in section["fields"]}
    assert all(f["type"] == "mrkdwn" for f in section["fields"])
    assert fields["*Status*"] == "on track → off track"
    assert fields["*Change*"] == "1,200 → 1,260"
    assert fields["*Progress*"] == "42% (1,260 of 3,000 followers; 55% expected by now)"
    assert fields["*Forecast*"] == "2,290 followers (76% of target) by the cycle's end"
    [button] = actions["elements"]
    assert actions["type"] == "actions"
    assert button["type"] == "button"
    assert button["url"] == f"{PUBLIC_URL}/key-results/7"


def test_teams_gets_an_adaptive_card_message(client: TestClient) -> None:
    """Teams incoming webhooks and Workflows take a `message` whose one attachment is an
    Adaptive Card (`application/vnd.microsoft.card.adaptive`, `contentUrl` null, the card in
    `content`): https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook
    (and MicrosoftDocs/msteams-docs, add-incoming-webhook.md). Workflows answer 202."""
    with receiver(lambda _: (202, b"")) as teams:
        channel(client, "teams", config={"url": f"{teams.url}/workflows/abc/triggers/manual"})
        emit_events(1)
        assert dispatch().delivered == 1
        [got] = teams.requests
    payload = got.json()
    assert payload["type"] == "message"
    [attachment] = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["version"] == "1.4"
    title, summary, facts = card["body"]
    assert title["type"] == "TextBlock"
    assert title["text"] == "3,000 new followers: off track"
    assert summary["type"] == "TextBlock"
    assert facts["type"] == "FactSet"
    named = {f["title"]: f["value"] for f in facts["facts"]}
    assert named["Status"] == "on track → off track"
    assert named["Progress"].startswith("42%")
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open in krsync", "url": f"{PUBLIC_URL}/key-results/7"}
    ]
    [row] = deliveries(client)
    assert (row["status"], row["response_status"]) == ("delivered", 202)


def test_a_webhook_verifies_with_the_standard_webhooks_library(client: TestClient) -> None:
    """Standard Webhooks (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):
    `webhook-id`, `webhook-timestamp`, `webhook-signature` = `v1,` + base64 HMAC-SHA256 of
    `{id}.{timestamp}.{body}` with the `whsec_` secret; the library's own `Webhook.verify`
    is the receiver here."""
    with receiver() as hook:
        created = channel(client, "webhook", config={"url": f"{hook.url}/krsync"})
        [event_id] = emit_events(1)
        assert dispatch().delivered == 1
        [got] = hook.requests
    verified = Webhook(created["signing_secret"]).verify(got.body, got.headers)
    assert verified["type"] == "key_result.status_changed"
    assert verified["data"]["key_result"] == STATUS_CHANGED["key_result"]
    assert verified["timestamp"].endswith("Z")
    assert set(verified) == {"type", "timestamp", "data"}
    with session_scope() as s:
        event = s.get(NotificationEvent, event_id)
        assert event is not None
        assert got.headers["webhook-id"] == event.message_id
        assert got.body == event.body.encode()
    with pytest.raises(Exception, match="No matching signature"):
        Webhook("whsec_" + "A" * 43 + "=").verify(got.body, got.headers)


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[EmailMessage]]:
    """aiosmtpd on 127.0.0.1, with KRSYNC_SMTP_URL and KRSYNC_MAIL_FROM pointing krsync at it."""
    received: list[EmailMessage] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            mail = message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(mail, EmailMessage)
            received.append(mail)
            return "250 Message accepted for delivery"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("KRSYNC_SMTP_URL", f"smtp://127.0.0.1:{port}")
    monkeypatch.setenv("KRSYNC_MAIL_FROM", "krsync <okr@example.com>")
    get_settings.cache_clear()
    try:
        yield received
    finally:
        controller.stop()


def test_email_goes_out_over_smtp_with_a_text_and_an_html_part(
    client: TestClient, smtp: list[EmailMessage]
) -> None:
    channel(client, "email", config={"to": ["growth@example.com", "ana@example.com"]})
    emit_events(1)
    assert dispatch().delivered == 1
    [mail] = smtp
    assert mail["From"] == "krsync <okr@example.com>"
    assert mail["To"] == "growth@example.com, ana@example.com"
    assert mail["Subject"] == "[krsync] 3,000 new followers: off track"
    assert mail.get_content_type() == "multipart/alternative"
    plain = mail.get_body(("plain",))
    rich = mail.get_body(("html",))
    assert plain is not None
    assert rich is not None
    text, markup = plain.get_content(), rich.get_content()
    assert "Progress: 42% (1,260 of 3,000 followers; 55% expected by now)" in text
    assert f"{PUBLIC_URL}/key-results/7" in text
    assert '<th align="left">Status</th><td>on track → off track</td>' in markup
    assert f'<a href="{PUBLIC_URL}/key-results/7">' in markup


def test_titles_cannot_inject_markup_or_headers(
    client: TestClient, smtp: list[EmailMessage]
) -> None:
    channel(client, "email", config={"to": ["growth@example.com"]})
    with session_scope() as s:
        kr = {"id": 1, "title": "<b>x</b>\r\nBcc: victim@example.com"}
        emit(s, "key_result.done", {"key_result": kr})
    assert dispatch().delivered == 1
    [mail] = smtp
    assert mail["Bcc"] is None
    rich = mail.get_body(("html",))
    assert rich is not None
    assert "<b>x</b>" not in rich.get_content()


def test_a_receiver_down_then_up_gets_every_event_once_in_order_with_a_stable_id(
    client: TestClient,
) -> None:
    """Refused connections, then 503s, then up: each event arrives once as delivered, in the
    order it happened, with the `webhook-id` of its first attempt; the delivery log shows the
    attempts and their schedule (about 5 s, then 30 s)."""
    port = free_port()
    created = channel(client, "webhook", config={"url": f"http://127.0.0.1:{port}/hook"})
    emit_events(5)
    clock = Clock()

    report = dispatch(clock)  # nobody listens
    assert (report.delivered, report.retrying) == (0, 1), "the head failed: the rest waited"
    [head, *rest] = sorted(deliveries(client), key=lambda d: d["id"])
    assert head["attempts"] == 1
    assert "could not reach the receiver: ConnectError" in head["last_error"]
    assert all(d["attempts"] == 0 for d in rest)
    assert dispatch(clock).attempts == 0, "not due before its next attempt"

    answers = iter([(503, b"busy"), (503, b"busy")])
    hook = Receiver(answer=lambda _: next(answers, (204, b"")), port=port).start()
    try:
        clock.advance(seconds=6)
        assert dispatch(clock).retrying == 1
        clock.advance(seconds=31)
        assert dispatch(clock).retrying == 1
        clock.advance(seconds=121)
        report = dispatch(clock)
    finally:
        hook.stop()
    assert report.delivered == 5
    assert report.retrying == 0

    ids = [r.headers["webhook-id"] for r in hook.requests]
    secret = created["signing_secret"]
    accepted = hook.requests[2:]
    with session_scope() as s:
        events = s.scalars(select(NotificationEvent).order_by(NotificationEvent.id)).all()
        expected = [e.message_id for e in events]
    assert ids[:3] == [expected[0]] * 3, "every retry of the first event carries its id"
    assert [r.headers["webhook-id"] for r in accepted] == expected
    assert [Webhook(secret).verify(r.body, r.headers)["data"]["n"] for r in accepted] == list(
        range(5)
    )

    log = sorted(deliveries(client), key=lambda d: d["id"])
    assert [d["status"] for d in log] == ["delivered"] * 5
    first = log[0]
    assert first["attempts"] == 4
    assert [a["response_status"] for a in first["attempt_log"]] == [None, 503, 503, 204]
    assert first["attempt_log"][1]["error"] == "the receiver answered 503 Service Unavailable: busy"
    assert first["next_attempt_at"] is None
    assert all(d["attempts"] == 1 for d in log[1:])


def test_a_failure_inside_a_claimed_run_gives_the_rest_back_and_keeps_the_order(
    client: TestClient,
) -> None:
    """A dispatcher leases a channel's queued events together; when the third one fails, the
    two behind it go back untried (no lease left to wait out) and follow it once it is through."""
    tries: Counter[int] = Counter()

    def third_fails_once(got: Received) -> tuple[int, bytes]:
        n = got.json()["data"]["n"]
        tries[n] += 1
        return (503, b"busy") if n == 2 and tries[n] == 1 else (204, b"")

    with receiver(third_fails_once) as hook:
        channel(client, "webhook", config={"url": f"{hook.url}/hook"})
        emit_events(5)
        clock = Clock()
        report = dispatch(clock)
        assert (report.delivered, report.retrying) == (2, 1)
        with session_scope() as s:
            rows = s.scalars(select(NotificationDelivery).order_by(NotificationDelivery.id)).all()
            assert [r.status for r in rows] == ["delivered"] * 2 + ["pending"] * 3
            assert all(r.lease_owner is None and r.lease_until is None for r in rows)
            assert [r.attempts for r in rows[2:]] == [1, 0, 0]
        clock.advance(seconds=6)
        assert dispatch(clock).delivered == 3
    sent = [json.loads(r.body)["data"]["n"] for r in hook.requests]
    assert sent == [0, 1, 2, 2, 3, 4]


def test_the_schedule_backs_off_and_gives_up_after_24_hours(client: TestClient) -> None:
    assert [retry_delay(n) for n in (1, 2, 3)] == [
        timedelta(seconds=5),
        timedelta(seconds=30),
        timedelta(minutes=2),
    ]
    assert retry_delay(40) == RETRY_AFTER[-1] == timedelta(hours=8)
    with receiver(lambda _: (500, b"down")) as down:
        channel(client, "slack", config={"url": f"{down.url}/services/x"})
        emit_events(1)
        clock = Clock()
        waits = []
        for _ in range(30):
            report = dispatch(clock)
            [row] = deliveries(client)
            if row["status"] != "pending":
                break
            due = datetime.fromisoformat(row["next_attempt_at"])
            waits.append(round((due - clock()).total_seconds()))
            clock.offset += due - clock() + timedelta(seconds=1)
        assert report.failed == 1
    assert row["status"] == "failed"
    assert row["next_attempt_at"] is None
    assert waits[:4] == [5, 30, 120, 600]
    created = datetime.fromisoformat(row["created_at"])
    last = datetime.fromisoformat(row["last_attempt_at"])
    assert last - created >= GIVE_UP_AFTER
    assert last - created < GIVE_UP_AFTER + timedelta(minutes=1), "the last try is at 24 h"
    assert row["attempts"] == len(down.requests) <= 14


def test_a_failing_channel_holds_its_own_events_only(client: TestClient) -> None:
    with receiver(lambda _: (500, b"no")) as broken, receiver() as fine:
        channel(client, "slack", name="broken", config={"url": f"{broken.url}/a"})
        channel(client, "slack", name="fine", config={"url": f"{fine.url}/b"})
        emit_events(3)
        report = dispatch()
    assert (report.delivered, report.retrying) == (3, 1)
    assert len(broken.requests) == 1, "its later events wait behind the one that failed"
    assert len(fine.requests) == 3


def test_an_event_is_written_with_its_change_or_not_at_all(client: TestClient) -> None:
    channel(client, "email", config={"to": ["ops@example.com"]})

    class Boom(Exception):
        pass

    def change_that_fails() -> None:
        with session_scope() as s:
            assert emit(s, "source.failing", {"source": {"id": 1, "name": "GA4"}}) is not None
            raise Boom

    with pytest.raises(Boom):
        change_that_fails()
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(NotificationEvent)) == 0
        assert s.scalar(select(func.count()).select_from(NotificationDelivery)) == 0
    with pytest.raises(ValueError, match="unknown event type"), session_scope() as s:
        emit(s, "kr.moved", {})  # type: ignore[arg-type]


def test_channels_get_the_events_and_scope_they_asked_for(client: TestClient) -> None:
    everything = channel(client, "email", name="all", config={"to": ["a@example.com"]})
    growth = channel(
        client, "email", name="growth", config={"to": ["g@example.com"]}, scope={"team": "Growth"}
    )
    sources = channel(
        client,
        "email",
        name="sources",
        config={"to": ["s@example.com"]},
        events=["source.failing", "source.recovered"],
    )
    off = channel(client, "email", name="off", config={"to": ["o@example.com"]}, enabled=False)
    with session_scope() as s:
        emit(s, "key_result.done", {}, {"team": "Growth", "cycle_id": 1})
        emit(s, "key_result.done", {}, {"team": "Brand"})
        emit(s, "source.failing", {}, {"team": ["Brand", "Growth"]})
        emit(s, "digest.weekly", {})
    got = Counter(d["channel_id"] for d in deliveries(client))
    assert got == {everything["id"]: 4, growth["id"]: 2, sources["id"]: 1}
    assert off["id"] not in got


def test_two_dispatchers_at_once_never_send_one_event_twice(client: TestClient) -> None:
    """Replicas claim with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL): each event reaches
    its receiver once, and each channel's events in order, however the two interleave."""
    with receiver(delay=0.01) as hook:
        for n in range(6):
            channel(client, "webhook", name=f"hook {n}", config={"url": f"{hook.url}/{n}"})
        emit_events(30)
        reports = []

        def run() -> None:
            reports.append(dispatch(concurrency=4))

        threads = [threading.Thread(target=run) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sum(r.delivered for r in reports) == 180
    per_channel: dict[str, list[int]] = {}
    for r in hook.requests:
        per_channel.setdefault(r.path, []).append(json.loads(r.body)["data"]["n"])
    assert len(hook.requests) == 180
    assert all(seen == list(range(30)) for seen in per_channel.values()), per_channel
    assert len({(r.path, r.headers["webhook-id"]) for r in hook.requests}) == 180


def test_a_lease_left_by_a_dead_dispatcher_expires_and_the_event_goes_out(
    client: TestClient,
) -> None:
    with receiver() as hook:
        channel(client, "slack", config={"url": f"{hook.url}/x"})
        emit_events(1)
        with session_scope() as s:
            row = s.scalar(select(NotificationDelivery))
            assert row is not None
            row.lease_owner, row.lease_until = "dead", datetime.now(UTC) + LEASE
        clock = Clock()
        assert dispatch(clock).attempts == 0, "leased by someone else"
        clock.advance(seconds=LEASE.total_seconds() + 1)
        assert dispatch(clock).delivered == 1
        assert len(hook.requests) == 1


def test_the_guard_refuses_a_private_url_at_delivery_too(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A channel made while private networks were allowed is refused once they no longer are:
    the receiver hears nothing and the log says why."""
    with receiver() as inside:
        channel(client, "webhook", config={"url": f"{inside.url}/hook"})
        emit_events(1)
        monkeypatch.setenv("KRSYNC_ALLOW_PRIVATE_NETWORKS", "false")
        get_settings.cache_clear()
        assert dispatch().retrying == 1
        assert inside.requests == []
    [row] = deliveries(client)
    assert "a loopback address" in row["last_error"]
    assert "KRSYNC_ALLOW_PRIVATE_NETWORKS" in row["last_error"]
