"""The Acme platform, faked: its API (see :mod:`acme`) over respx or a real local server.

One in-memory model answers both ways, so a fault scripted for respx behaves the same when a
subprocess talks to the local server. Faults are scripted per endpoint (``me``, ``metrics``,
``token``) as a queue consumed one call at a time: a canned ``httpx.Response``, an exception to
raise, or None to answer normally.
"""

from __future__ import annotations

import base64
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
import respx

from tests.connectors.acme import ACME_URL

API_KEY = "acme-key-7c1d2e3f"
CLIENT_ID = "acme-client-id"
CLIENT_SECRET = "acme-client-secret-51b0"
REFRESH_TOKEN = "acme-refresh-0"

Fault = httpx.Response | BaseException | None
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
Default = Callable[[str, date], float | None]

_CONTROL_PARAMS = frozenset({"from", "to", "cursor", "page_size"})


def day_of_month(_metric: str, day: date) -> float:
    """A figure for any day that a reader can check by eye: the day of the month."""
    return float(day.day)


def _number(value: float) -> float | int:
    # Acme encodes whole numbers as JSON integers; the connector must still hand out floats.
    return int(value) if value.is_integer() else value


def _error(status: int, error: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": error}, headers=headers)


class FakeAcme:
    """Acme's API in memory: accounts, tokens, daily series, cursor paging, scripted faults."""

    def __init__(
        self,
        base_url: str = ACME_URL,
        *,
        api_keys: tuple[str, ...] = (API_KEY,),
        page_size: int = 3,
        default: Default | None = None,
        timezone: str = "UTC",
        client_secret: str = CLIENT_SECRET,
        refresh_token: str = REFRESH_TOKEN,
    ) -> None:
        self.base_url = base_url
        self.api_keys = set(api_keys)
        self.access_tokens: set[str] = set()
        self.refresh_tokens: set[str] = {refresh_token}
        self.client = (CLIENT_ID, client_secret)
        self.page_size = page_size
        self.default = default
        self.timezone = timezone
        self.series: dict[SeriesKey, dict[date, float]] = {}
        self.faults: dict[str, deque[Fault]] = {"me": deque(), "metrics": deque(), "token": deque()}
        self.requests: list[tuple[str, httpx.Request]] = []
        self.issued = 0
        #: Requests after which the fake calls it a runaway loop (a connector that never stops).
        self.limit = 500
        # Stalling is for the threaded local server only: it would block respx's event loop.
        self.stall_at: int | None = None  # the nth metrics call hangs until `release` is set
        self.stalled = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    # --- arranging ------------------------------------------------------------------------

    def set_series(self, metric: str, values: Mapping[date, float], **filters: str) -> None:
        """The daily figures of ``metric`` for exactly these filter params (``platform=...``)."""
        self.series[(metric, tuple(sorted(filters.items())))] = dict(values)

    def fail(self, endpoint: str, *faults: Fault) -> None:
        """Queue answers for the next calls of ``endpoint`` (None: answer normally)."""
        self.faults[endpoint].extend(faults)

    def calls(self, endpoint: str) -> list[httpx.Request]:
        return [r for e, r in self.requests if e == endpoint]

    def install(self, router: respx.MockRouter) -> respx.Route:
        return router.route(url__startswith=self.base_url).mock(side_effect=self.handle)

    # --- answering ------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        endpoint = (
            "token"
            if path.endswith("/oauth/token")
            else "me"
            if path.endswith("/v1/me")
            else "metrics"
            if "/v1/metrics/" in path
            else "unknown"
        )
        with self._lock:
            self.requests.append((endpoint, request))
            if len(self.requests) > self.limit:
                raise AssertionError(f"more than {self.limit} requests: a runaway loop?")
            nth = len(self.calls(endpoint))
            fault = self.faults[endpoint].popleft() if self.faults.get(endpoint) else None
        if endpoint == "metrics" and self.stall_at == nth:
            self.stalled.set()
            self.release.wait(timeout=60)
        if endpoint == "unknown":
            return _error(404, "no such endpoint")
        if endpoint == "token":
            return fault if isinstance(fault, httpx.Response) else self._token(request, fault)
        if not self._authorized(request):
            return _error(401, "invalid_token")
        if isinstance(fault, BaseException):
            raise fault
        if fault is not None:
            return fault
        if endpoint == "me":
            account = {"id": "acc_1", "name": "Acme Test Co", "timezone": self.timezone}
            return httpx.Response(200, json={"account": account})
        return self._daily(request)

    def _authorized(self, request: httpx.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token in (self.api_keys | self.access_tokens)

    def _token(self, request: httpx.Request, fault: Fault) -> httpx.Response:
        if isinstance(fault, BaseException):
            raise fault
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if form.get("grant_type") != "refresh_token":
            return _error(400, "unsupported_grant_type")
        if (form.get("client_id"), form.get("client_secret")) != self.client:
            return _error(401, "invalid_client")
        with self._lock:
            if form.get("refresh_token") not in self.refresh_tokens:
                return _error(400, "invalid_grant")
            # Acme rotates refresh tokens: the one just used is dead from now on.
            self.refresh_tokens.discard(form["refresh_token"])
            self.issued += 1
            access, refresh = f"acme-access-{self.issued}", f"acme-refresh-{self.issued}"
            self.access_tokens.add(access)
            self.refresh_tokens.add(refresh)
        body = {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": 3600,
        }
        return httpx.Response(200, json=body)

    def _daily(self, request: httpx.Request) -> httpx.Response:
        metric = request.url.path.split("/v1/metrics/", 1)[1].split("/", 1)[0]
        params = request.url.params
        try:
            start, end = date.fromisoformat(params["from"]), date.fromisoformat(params["to"])
        except (KeyError, ValueError):
            return _error(400, "`from` and `to` are required dates")
        filters = tuple(sorted((k, v) for k, v in params.items() if k not in _CONTROL_PARAMS))
        table = self.series.get((metric, filters))
        rows: list[dict[str, Any]] = []
        day = start
        while day <= end:
            value = (
                table.get(day)
                if table is not None
                else self.default(metric, day)
                if self.default is not None
                else None
            )
            if value is not None:
                rows.append({"date": day.isoformat(), "value": _number(value)})
            day += timedelta(days=1)
        size = min(int(params.get("page_size", self.page_size)), self.page_size)
        offset = _decode(params["cursor"]) if "cursor" in params else 0
        page = rows[offset : offset + size]
        nxt = _encode(offset + size) if offset + size < len(rows) else None
        return httpx.Response(200, json={"data": page, "next_cursor": nxt})


def _encode(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _decode(cursor: str) -> int:
    return int(base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)[1])


# --- a real server on 127.0.0.1, for a subprocess or a stalled connection ---------------------


@contextmanager
def serve(fake: FakeAcme) -> Iterator[str]:
    """Serve ``fake`` on 127.0.0.1 in a thread; yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = httpx.Request(
                self.command,
                f"{base}{self.path}",
                headers=dict(self.headers.items()),
                content=self.rfile.read(length) if length else b"",
            )
            try:
                response = fake.handle(request)
            except Exception as exc:  # a scripted exception: answer like a crashing server
                response = httpx.Response(500, json={"error": type(exc).__name__})
            body = response.content
            try:
                self.send_response(response.status_code)
                for name, value in response.headers.items():
                    if name.lower() not in ("content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client died (SIGKILL): nothing left to answer

        do_GET = _answer
        do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    base = f"http://127.0.0.1:{server.server_address[1]}"
    fake.base_url = base
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield base
    finally:
        fake.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
