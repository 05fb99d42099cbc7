"""``rest_json`` against a real local HTTP server: every pagination style, JSONPath, and SSRF.

One ``ThreadingHTTPServer`` on 127.0.0.1 serves four endpoints, one per pagination style, each
with the same records spread over 3 pages. The connector talks to it through the engine's real
HTTP client (no respx), and one test runs a full sync through the engine: refused while private
networks are not allowed, written once they are.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import pytest
from cryptography.fernet import Fernet
from sync_factories import freeze_today, make_kr, make_mapping, make_source, observations, runs

from app.core.db import session_scope
from app.core.http import KrsyncClient, build_client
from app.core.settings import get_settings
from app.core.vault import encrypt_credentials
from app.models import DataSource
from app.sync.engine import sync_now
from connectors.base import MetricQuery, Window
from connectors.rest_json import RestJsonConnector, RestJsonParams

WINDOW = Window(date(2026, 7, 1), date(2026, 7, 10))
TODAY = date(2026, 7, 11)
PAGE_SIZE = 3
DAYS = range(1, 9)  # 8 records: pages of 3, 3 and 2


def channel(day: int) -> str:
    return "web" if day % 2 else "email"


RECORDS = [
    {"day": f"2026-07-{d:02d}", "stats": {"sessions": d}, "channel": channel(d)} for d in DAYS
]
PAGES = [RECORDS[i : i + PAGE_SIZE] for i in range(0, len(RECORDS), PAGE_SIZE)]
assert len(PAGES) == 3


# --- the server ----------------------------------------------------------------------------------


@dataclass
class Live:
    base: str
    seen: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)

    def requests(self, style: str) -> list[dict[str, str]]:
        return [query for path, query, _ in self.seen if path == f"/{style}"]

    def headers(self, style: str) -> list[dict[str, str]]:
        return [headers for path, _, headers in self.seen if path == f"/{style}"]


def _answer(style: str, query: dict[str, str], base: str) -> tuple[Any, dict[str, str]]:
    """The body and extra headers of one page of `style`."""
    if style == "cursor":
        index = int(query["cursor"][1:]) if "cursor" in query else 0
        nxt = f"c{index + 1}" if index + 1 < len(PAGES) else None
        return {"data": PAGES[index], "meta": {"next_cursor": nxt}}, {}
    if style == "page":
        assert query["per_page"] == str(PAGE_SIZE)
        index = int(query["page"]) - 1
        return {"data": PAGES[index] if index < len(PAGES) else []}, {}
    if style == "offset":
        offset, limit = int(query["offset"]), int(query["limit"])
        return {"data": RECORDS[offset : offset + limit]}, {}
    if style == "link":
        index = int(query.get("page", "1")) - 1
        headers = {}
        if index + 1 < len(PAGES):
            nxt = urlencode({**query, "page": str(index + 2)})
            headers["Link"] = f'<{base}/link?{nxt}>; rel="next"'
        return {"data": PAGES[index]}, headers
    raise KeyError(style)


@pytest.fixture
def live() -> Iterator[Live]:
    state: Live

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            state.seen.append((parts.path, query, dict(self.headers.items())))
            try:
                body, headers = _answer(parts.path.strip("/"), query, state.base)
                status = 200
            except (KeyError, IndexError, ValueError, AssertionError) as exc:
                body, headers, status = {"error": repr(exc)}, {}, 404
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Live(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KRSYNC_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.delenv("KRSYNC_ALLOW_PRIVATE_NETWORKS", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


# --- each pagination style through the real client ----------------------------------------------

PAGINATION: dict[str, dict[str, Any]] = {
    "cursor": {
        "type": "cursor",
        "cursor_param": "cursor",
        "next_cursor_path": "$.meta.next_cursor",
    },
    "page": {"type": "page", "page_param": "page", "size_param": "per_page", "size": PAGE_SIZE},
    "offset": {"type": "offset", "offset_param": "offset", "limit_param": "limit", "limit": 3},
    "link": {"type": "link_header"},
}


def config_for(live: Live, style: str) -> dict[str, Any]:
    return {
        "url": f"{live.base}/{style}",
        "query": {"from": "{from}", "to": "{to}"},
        "pagination": PAGINATION[style],
    }


PARAMS = {"records": "$.data", "date": "$.day", "value": "$.stats.sessions"}


@pytest.mark.parametrize("style", sorted(PAGINATION))
def test_each_pagination_style_reads_every_page_of_a_live_server(live: Live, style: str) -> None:
    cfg = RestJsonConnector.config_model.model_validate(config_for(live, style))
    creds = RestJsonConnector.credentials_model.model_validate({})
    query = MetricQuery(
        "1", "value", RestJsonParams.model_validate({**PARAMS, "group": "$.channel"})
    )

    async def run() -> Any:
        options = RestJsonConnector.http_options(cfg, creds)
        async with build_client(
            source_name="t", allow_private=True, headers=options.headers
        ) as client:
            assert isinstance(client, KrsyncClient)
            return await RestJsonConnector(cfg, creds, client).fetch([query], WINDOW)

    result = anyio.run(run)

    assert not result.warnings
    assert {(v.date, v.group): v.value for v in result.values} == {
        (date(2026, 7, d), channel(d)): float(d) for d in DAYS
    }
    requests = live.requests(style)
    assert len(requests) == 3, requests
    assert len(live.seen) == 3  # nothing went to another endpoint
    for sent in requests:
        assert (sent["from"], sent["to"]) == ("2026-07-01", "2026-07-10")


# --- through the engine: refused on a private address, then allowed ------------------------------


def _sync(source_id: int) -> int:
    with session_scope() as s:
        src = s.get(DataSource, source_id)
        assert src is not None
        return sync_now(s, src, trigger="cli")


def test_a_sync_to_the_local_server_is_refused_until_private_networks_are_allowed(
    live: Live, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_today(monkeypatch, TODAY)
    src = make_source(
        name="live json",
        connector="rest_json",
        config=config_for(live, "cursor"),
        credentials_encrypted=encrypt_credentials({"token": "live-token"}),
    )
    kr = make_kr()
    make_mapping(kr, src, "value", params=PARAMS)

    assert get_settings().allow_private_networks is False
    _sync(src)
    [refused] = runs(src)
    assert refused.status == "failed", refused.error
    assert refused.error is not None
    assert refused.error.startswith("configuration error"), refused.error
    assert "127.0.0.1" in refused.error or "loopback" in refused.error.lower(), refused.error
    assert refused.observations_written == 0
    assert observations(kr) == []
    assert live.seen == []  # refused before anything was sent

    monkeypatch.setenv("KRSYNC_ALLOW_PRIVATE_NETWORKS", "true")
    get_settings.cache_clear()
    run_id = _sync(src)
    allowed = runs(src)[-1]
    assert allowed.id == run_id
    assert allowed.status == "succeeded", allowed.error
    assert allowed.observations_written == len(RECORDS)
    assert [(r[0], r[3], r[4]) for r in observations(kr)] == [
        (date(2026, 7, d), float(d), run_id) for d in DAYS
    ]
    requests = live.requests("cursor")
    assert len(requests) == 3
    assert all("from" in q and "to" in q for q in requests)
    assert all(h.get("Authorization") == "Bearer live-token" for h in live.headers("cursor"))
