"""A process killed (SIGKILL) between a change and its delivery loses nothing: the event was
committed with the change, and a delivery a dead dispatcher held is sent again once its lease
expires, with the same `webhook-id` (SPEC section 7: "a crash ... loses nothing")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from notify.receivers import Clock, Received, channel, dispatch, emit_events, receiver
from standardwebhooks import Webhook

from app.notify.dispatch import LEASE

ROOT = Path(__file__).resolve().parents[2]

CHANGE_THEN_HANG = """
import time
from app.core.db import session_scope
from app.notify.events import emit

with session_scope() as s:
    emit(s, "source.failing", {"source": {"id": 3, "name": "GA4"}, "consecutive_failures": 2})
print("committed", flush=True)
time.sleep(3600)  # the dispatcher would run next; the process dies first
"""

DISPATCH = """
from app.notify.dispatch import dispatch_due
print("dispatching", flush=True)
dispatch_due()
"""


def _child(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _kill(child: subprocess.Popen[bytes]) -> None:
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=10) == -signal.SIGKILL
    child.communicate()


def _wait_for(line: bytes, child: subprocess.Popen[bytes]) -> None:
    assert child.stdout is not None
    got = child.stdout.readline()
    if got != line:
        child.kill()
        pytest.fail(f"the child did not get there: {got!r} {child.communicate()[1].decode()}")


def test_killed_after_the_change_the_event_is_still_delivered(client: TestClient) -> None:
    with receiver() as hook:
        created = channel(client, "webhook", config={"url": f"{hook.url}/hook"})
        child = _child(CHANGE_THEN_HANG)
        try:
            _wait_for(b"committed\n", child)
            _kill(child)
        finally:
            if child.poll() is None:
                child.kill()
        assert dispatch().delivered == 1
        [got] = hook.requests
    event = Webhook(created["signing_secret"]).verify(got.body, got.headers)
    assert event["type"] == "source.failing"
    assert event["data"]["source"]["name"] == "GA4"


def test_killed_mid_delivery_the_event_goes_out_again_with_its_id(client: TestClient) -> None:
    release = threading.Event()

    def hang_first(request: Received) -> tuple[int, bytes] | None:
        if len(hook.requests) == 1:
            release.wait(30)  # the dispatcher dies while this request is open
            return None
        return 200, b""

    with receiver(hang_first) as hook:
        created = channel(client, "webhook", config={"url": f"{hook.url}/hook"})
        emit_events(2)
        child = _child(DISPATCH)
        try:
            _wait_for(b"dispatching\n", child)
            deadline = time.monotonic() + 30
            while not hook.requests and time.monotonic() < deadline:
                time.sleep(0.05)
            assert hook.requests, "the child never sent"
            _kill(child)
        finally:
            if child.poll() is None:
                child.kill()
            release.set()
        clock = Clock()
        assert dispatch(clock).attempts == 0, "the dead dispatcher's lease still holds"
        clock.advance(seconds=LEASE.total_seconds() + 1)
        report = dispatch(clock)
        assert report.delivered == 2
    first, again, second = hook.requests
    assert first.headers["webhook-id"] == again.headers["webhook-id"]
    assert second.headers["webhook-id"] != first.headers["webhook-id"]
    secret = Webhook(created["signing_secret"])
    assert [secret.verify(r.body, r.headers)["data"]["n"] for r in (again, second)] == [0, 1]
