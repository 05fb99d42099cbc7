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
from app.core.http import KrsyncClient
from app.core.settings import get_settings
from app.core.vault import encrypt_credentials
from app.models import DataSource
from app.sync.connect import connector_from, open_connector
from app.sync.engine import sync_now
from connectors.base import MetricQuery, Window
from connectors.rest_json.connector import RestJsonConnector, RestJsonParams

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
    #: A second server, so another origin (its port differs): what it saw, headers only.
    other: str = ""
    seen: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    elsewhere: list[dict[str, str]] = field(default_factory=list)

    def requests(self, style: str) -> list[dict[str, str]]:
        return [query for path, query, _ in self.seen if path == f"/{style}"]

    def headers(self, style: str) -> list[dict[str, str]]:
        return [headers for path, _, headers in self.seen if path == f"/{style}"]


def _answer(style: str, query: dict[str, str], live: Live, base: str) -> tuple[Any, dict[str, str]]:
    """The body and extra headers of one page of `style` served at ``base``.

    ``moved`` answers every request with a redirect to the other server's ``cursor``;
    ``away`` pages like ``link``, its next links on the other server.
    """
    if style == "moved":
        return None, {"Location": f"{live.other}/cursor?{urlencode(query)}"}
    if style == "away":
        style, base = "link", live.other
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
            if self.server is server:
                state.seen.append((parts.path, query, dict(self.headers.items())))
            else:
                state.elsewhere.append(dict(self.headers.items()))
            try:
                here = state.base if self.server is server else state.other
                body, headers = _answer(parts.path.strip("/"), query, state, here)
                status = 302 if "Location" in headers else 200
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
    other = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Live(
        f"http://127.0.0.1:{server.server_address[1]}",
        other=f"http://127.0.0.1:{other.server_address[1]}",
    )
    threads = [
        threading.Thread(target=s.serve_forever, args=(0.01,), daemon=True) for s in (server, other)
    ]
    for thread in threads:
        thread.start()
    try:
        yield state
    finally:
        for s, thread in zip((server, other), threads, strict=True):
            s.shutdown()
            s.server_close()
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
    built = connector_from(RestJsonConnector, config_for(live, style), {}, name="t")
    query = MetricQuery(
        "1", "value", RestJsonParams.model_validate({**PARAMS, "group": "$.channel"})
    )

    async def run() -> Any:
        async with open_connector(built, allow_private=True) as connector:
            assert isinstance(connector.http, KrsyncClient)
            return await connector.fetch([query], WINDOW)

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


# --- the credentials go to the origin of `url` only ---------------------------------------------

KEY = "live-api-key-7c3e91d0"


def _source(live: Live, style: str, **extra: Any) -> int:
    config = {
        **config_for(live, "link" if style == "away" else "cursor"),
        "url": f"{live.base}/{style}",
        **extra,
    }
    return make_source(
        name=f"live json {style}",
        connector="rest_json",
        config=config,
        credentials_encrypted=encrypt_credentials({"header_value": KEY}),
    )


@pytest.mark.parametrize("style", ["moved", "away"])
def test_a_redirect_or_next_link_to_another_origin_fails_the_run_and_gets_no_key(
    live: Live, db_url: str, monkeypatch: pytest.MonkeyPatch, style: str
) -> None:
    """``moved`` redirects the first request, ``away`` links its second page elsewhere."""
    freeze_today(monkeypatch, TODAY)
    monkeypatch.setenv("KRSYNC_ALLOW_PRIVATE_NETWORKS", "true")
    get_settings.cache_clear()
    src = _source(live, style)
    kr = make_kr()
    make_mapping(kr, src, "value", params=PARAMS)

    _sync(src)

    [run] = runs(src)
    assert run.status == "failed"
    assert run.error is not None
    assert run.error.startswith("configuration error"), run.error
    assert f"{live.other}," in run.error, run.error  # the origin alone: no path, no query
    assert "follow_other_origins" in run.error
    assert KEY not in run.error
    assert live.elsewhere == []  # refused before anything was sent there
    assert all(h.get("X-API-Key") == KEY for _, _, h in live.seen)
    assert observations(kr) == []


def test_with_follow_other_origins_the_other_origin_is_read_without_the_key(
    live: Live, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_today(monkeypatch, TODAY)
    monkeypatch.setenv("KRSYNC_ALLOW_PRIVATE_NETWORKS", "true")
    get_settings.cache_clear()
    src = _source(live, "away", follow_other_origins=True)
    kr = make_kr()
    make_mapping(kr, src, "value", params=PARAMS)

    run_id = _sync(src)

    run = runs(src)[-1]
    assert run.status == "succeeded", run.error
    assert [(r[0], r[3], r[4]) for r in observations(kr)] == [
        (date(2026, 7, d), float(d), run_id) for d in DAYS
    ]
    assert len(live.elsewhere) == 2  # pages 2 and 3
    assert all(h.get("X-API-Key") is None for h in live.elsewhere)
    assert [h.get("X-API-Key") for _, _, h in live.seen] == [KEY]
