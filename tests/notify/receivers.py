"""Receivers on 127.0.0.1 for the notification tests: an HTTP one (Slack, Teams, a webhook) and
helpers to drive the outbox: a clock that can be moved, channels made over the API, events
emitted as a change would emit them."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fastapi.testclient import TestClient

from app.core.db import session_scope
from app.notify.dispatch import Report, dispatch_due
from app.notify.events import emit


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


#: What the receiver answers a request with: (status, body), or None to hang up unanswered.
Answer = Callable[[Received], tuple[int, bytes] | None]


def ok(_: Received) -> tuple[int, bytes]:
    return 200, b"ok"


@dataclass
class Receiver:
    """An HTTP server that records every request (answered or not) and answers per ``answer``."""

    answer: Answer = ok
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                got = Received(self.path, dict(self.headers.items()), self.rfile.read(length))
                with receiver._lock:
                    receiver.requests.append(got)
                if receiver.delay:
                    time.sleep(receiver.delay)
                answer = receiver.answer(got)
                if answer is None:
                    self.close_connection = True
                    return
                status, body = answer
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def free_port() -> int:
    """A port nothing listens on (yet): a receiver that is down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def receiver(answer: Answer = ok, delay: float = 0.0) -> Iterator[Receiver]:
    r = Receiver(answer=answer, delay=delay).start()
    try:
        yield r
    finally:
        r.stop()


class Clock:
    """The dispatcher's clock: the wall clock, moved forward by the test."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


def channel(client: TestClient, kind: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": f"{kind} channel", "kind": kind} | over
    response = client.post("/api/v1/notification-channels", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


STATUS_CHANGED: dict[str, Any] = {
    "key_result": {"id": 7, "title": "3,000 new followers", "owner": "ana", "unit": "followers"},
    "objective": {"id": 3, "title": "Build an engaged audience on social", "team": "Growth"},
    "old_status": "on_track",
    "new_status": "off_track",
    "progress": {
        "progress": 0.42,
        "current_value": 1260,
        "target_value": 3000,
        "expected_progress": 0.55,
    },
    "forecast": {"value": 2290, "progress": 0.76},
    "change": {"from": 1200, "to": 1260},
}


def emit_events(count: int, type_: str = "key_result.status_changed", **scope: Any) -> list[int]:
    """`count` events, each committed in its own transaction as a change would; their ids."""
    ids = []
    for n in range(count):
        with session_scope() as session:
            event = emit(session, type_, {**STATUS_CHANGED, "n": n}, scope)  # type: ignore[arg-type]
            assert event is not None
            session.flush()
            ids.append(event.id)
    return ids


def dispatch(clock: Clock | None = None, **options: Any) -> Report:
    return dispatch_due(now=clock or Clock(), **options)
