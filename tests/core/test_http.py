"""The engine-owned HTTP layer (SPEC sections 4 and 5).

Vendor traffic is mocked with respx (which patches httpcore, underneath our transport stack);
concurrency and the private-network guard's "allowed" side use a real server on 127.0.0.1.
Retry waits are zeroed with ``stamina.set_testing`` except in the tests that prove a wait.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
import stamina

from app.core import http as http_module
from app.core.http import (
    USER_AGENT,
    HttpLayerError,
    HttpStatusError,
    KrsyncClient,
    OAuth2Settings,
    OAuthRefreshError,
    PrivateNetworkError,
    build_client,
    parse_retry_after,
)
from app.core.redact import MASK
from connectors.base import ForeignOriginError, TokenRefreshError
from connectors.testing import leaked, split_masks

pytestmark = pytest.mark.anyio

API = "https://api.vendor.test"
TOKEN_URL = "https://auth.vendor.test/oauth/token"
PUBLIC_IP = "93.184.216.34"
SECRET = "sk_live_canary_5f1d9e0b7a"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def fast_retries() -> Iterator[None]:
    """No backoff sleeps, attempts unchanged (cap=True keeps each client's own max)."""
    with stamina.set_testing(True, attempts=100, cap=True):
        yield


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """``*.vendor.test`` names resolve without a network; everything else really resolves."""
    table: dict[str, list[str]] = {
        "api.vendor.test": [PUBLIC_IP],
        "auth.vendor.test": [PUBLIC_IP],
        "cdn.vendor.test": [PUBLIC_IP, "2606:2800:220:1:248:1893:25c8:1946"],
        "internal.vendor.test": ["10.0.0.7"],
        "rebound.vendor.test": [PUBLIC_IP, "127.0.0.1"],
    }
    real = http_module.resolve_host

    async def resolve(host: str, port: int) -> list[str]:
        if host in table:
            return table[host]
        return await real(host, port)

    monkeypatch.setattr(http_module, "resolve_host", resolve)
    return table


def client(**kwargs: Any) -> KrsyncClient:
    kwargs.setdefault("source_name", "vendor")
    return build_client(**kwargs)


# ----------------------------------------------------------------------------------- retries


@respx.mock
async def test_429_with_retry_after_then_200_is_one_retry() -> None:
    route = respx.get(f"{API}/report").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "1"}),
            httpx.Response(200, json={"rows": []}),
        ]
    )
    async with client(base_url=API) as http:
        response = await http.get("/report")

    assert response.status_code == 200
    assert response.json() == {"rows": []}
    assert route.call_count == 2
    assert http.stats.retries == 1
    assert http.stats.requests == 2
    assert http.stats.rate_limited == 1


@respx.mock
async def test_500_500_200_succeeds() -> None:
    route = respx.get(f"{API}/report").mock(
        side_effect=[httpx.Response(500), httpx.Response(502), httpx.Response(200, text="ok")]
    )
    async with client() as http:
        response = await http.get(f"{API}/report")

    assert response.text == "ok"
    assert route.call_count == 3
    assert http.stats.retries == 2


@respx.mock
async def test_503_forever_fails_after_max_attempts_with_a_clear_error() -> None:
    route = respx.get(f"{API}/report").mock(
        return_value=httpx.Response(503, json={"error": "maintenance window"})
    )
    async with client(max_attempts=4) as http:
        response = await http.get(f"{API}/report", params={"day": "2026-08-01"})
        with pytest.raises(HttpStatusError) as info:
            http.raise_for_status(response)

    assert route.call_count == 4
    assert http.stats.retries == 3
    error = info.value
    assert error.status_code == 503
    assert error.attempts == 4
    assert error.transient
    assert str(error) == (
        "vendor: GET https://api.vendor.test/report answered 503 Service Unavailable "
        'after 4 attempts: {"error":"maintenance window"}'
    )


@respx.mock
async def test_4xx_is_not_retried() -> None:
    route = respx.get(f"{API}/report").mock(return_value=httpx.Response(404))
    async with client() as http:
        response = await http.get(f"{API}/report")
        with pytest.raises(HttpStatusError) as info:
            http.raise_for_status(response)

    assert route.call_count == 1
    assert not info.value.transient
    assert info.value.attempts == 1


@respx.mock
async def test_connect_error_is_retried() -> None:
    route = respx.get(f"{API}/report").mock(
        side_effect=[httpx.ConnectError("connection refused"), httpx.Response(200)]
    )
    async with client() as http:
        response = await http.get(f"{API}/report")

    assert response.status_code == 200
    assert route.call_count == 2
    assert http.stats.retries == 1


@respx.mock
async def test_timeouts_forever_become_a_layer_error() -> None:
    route = respx.get(f"{API}/report").mock(side_effect=httpx.ReadTimeout("read timed out"))
    async with client(max_attempts=3) as http:
        with pytest.raises(HttpLayerError) as info:
            await http.get(f"{API}/report")

    assert route.call_count == 3
    assert info.value.transient
    assert info.value.status_code is None
    assert str(info.value) == (
        "vendor: GET https://api.vendor.test/report failed after 3 attempts: "
        "ReadTimeout: read timed out"
    )
    assert info.value.attempts == 3


async def test_an_unsupported_scheme_is_not_transient() -> None:
    async with client() as http:
        with pytest.raises(HttpLayerError) as info:
            await http.get("ftp://api.vendor.test/export.csv")

    assert not info.value.transient


@respx.mock
async def test_post_body_is_sent_again_on_retry() -> None:
    route = respx.post(f"{API}/search").mock(side_effect=[httpx.Response(500), httpx.Response(200)])
    async with client() as http:
        await http.post(f"{API}/search", json={"filters": [1, 2]})

    bodies = [json.loads(call.request.content) for call in route.calls]
    assert bodies == [{"filters": [1, 2]}, {"filters": [1, 2]}]


@respx.mock
async def test_retry_after_over_the_cap_returns_the_429_without_waiting() -> None:
    route = respx.get(f"{API}/report").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "3600"})
    )
    with stamina.set_testing(False):  # real waits: prove none happens
        async with client(max_retry_after=60) as http:
            started = time.monotonic()
            response = await http.get(f"{API}/report")
            elapsed = time.monotonic() - started
            with pytest.raises(HttpStatusError) as info:
                http.raise_for_status(response)

    assert elapsed < 0.5
    assert route.call_count == 1
    assert response.status_code == 429
    assert info.value.retry_after == 3600
    assert http.stats.rate_limited == 1
    assert http.stats.retries == 0


@respx.mock
async def test_a_real_retry_after_of_one_second_is_waited_out() -> None:
    respx.get(f"{API}/report").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(200)]
    )
    with stamina.set_testing(False):
        async with client() as http:
            started = time.monotonic()
            response = await http.get(f"{API}/report")
            elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert 0.9 <= elapsed < 2.5  # the server's 1 s, not stamina's own backoff + jitter


def test_parse_retry_after() -> None:
    now = dt.datetime(2026, 8, 15, 12, 0, 0, tzinfo=dt.UTC)
    in_two_minutes = format_datetime(now + dt.timedelta(minutes=2), usegmt=True)

    assert parse_retry_after("120") == 120
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0
    assert parse_retry_after(in_two_minutes, now=now) == 120
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("") is None
    assert parse_retry_after(None) is None


# ------------------------------------------------------------------- private-network guard


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/admin",
        "http://10.1.2.3/",
        "http://192.168.1.10:8080/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
        "http://100.100.100.200/latest/meta-data/",  # carrier-grade NAT: a cloud metadata IP
        "http://224.0.0.1/",
        "http://localhost:8000/",  # a name resolving to loopback, really resolved
        "https://internal.vendor.test/",
        "https://rebound.vendor.test/",  # one private address among public ones is enough
    ],
)
async def test_guard_refuses_internal_addresses(url: str) -> None:
    with respx.mock(assert_all_called=False) as mock:
        anything = mock.route().mock(return_value=httpx.Response(200))
        async with client() as http:
            with pytest.raises(PrivateNetworkError, match="refusing to connect"):
                await http.get(url)

    assert anything.call_count == 0
    assert http.stats.requests == 0
    assert http.stats.retries == 0


@respx.mock
async def test_guard_catches_a_redirect_hop_to_loopback() -> None:
    start = respx.get(f"{API}/export").mock(
        return_value=httpx.Response(302, headers={"Location": "http://127.0.0.1:9/secret"})
    )
    async with client() as http:
        with pytest.raises(PrivateNetworkError, match=r"127\.0\.0\.1"):
            await http.get(f"{API}/export")

    assert start.call_count == 1


@respx.mock
async def test_guard_catches_a_redirect_to_a_name_resolving_privately() -> None:
    respx.get(f"{API}/export").mock(
        return_value=httpx.Response(301, headers={"Location": "https://internal.vendor.test/x"})
    )
    async with client() as http:
        with pytest.raises(PrivateNetworkError, match=r"10\.0\.0\.7, a private address"):
            await http.get(f"{API}/export")


@respx.mock
async def test_public_redirects_are_followed() -> None:
    respx.get(f"{API}/old").mock(
        return_value=httpx.Response(308, headers={"Location": "https://cdn.vendor.test/new"})
    )
    respx.get("https://cdn.vendor.test/new").mock(return_value=httpx.Response(200, text="moved"))
    async with client() as http:
        response = await http.get(f"{API}/old")

    assert response.text == "moved"
    assert http.stats.requests == 2


@respx.mock
async def test_more_than_five_redirects_is_an_error() -> None:
    for hop in range(7):
        respx.get(f"{API}/hop/{hop}").mock(
            return_value=httpx.Response(302, headers={"Location": f"{API}/hop/{hop + 1}"})
        )
    async with client() as http:
        with pytest.raises(HttpLayerError, match="more than 5 redirects"):
            await http.get(f"{API}/hop/0")


# ------------------------------------------------------------- credentials and other origins

CDN = "https://cdn.vendor.test"


def holding(request: httpx.Request) -> list[str]:
    """The headers of a request that hold the secret."""
    return [name for name, value in request.headers.items() if SECRET in value]


@pytest.mark.parametrize(
    "headers",
    [{"X-API-Key": SECRET}, {"Authorization": f"Bearer {SECRET}"}],
    ids=["custom-header", "authorization"],
)
@respx.mock
async def test_a_redirect_to_another_origin_is_refused_when_the_request_held_a_credential(
    headers: dict[str, str],
) -> None:
    respx.get(f"{API}/report").mock(
        return_value=httpx.Response(302, headers={"Location": f"{CDN}/r?sig=abc"})
    )
    other = respx.get(f"{CDN}/r").mock(return_value=httpx.Response(200, text="elsewhere"))
    async with client(secrets=[SECRET], headers=headers) as http:
        with pytest.raises(ForeignOriginError) as refused:
            await http.get(f"{API}/report")

    assert not other.called
    assert refused.value.origin == CDN
    assert refused.value.message == (
        f"vendor: a redirect from {API} led to {CDN}, but the source's credentials go to "
        f"{API} only: refused rather than sent there"
    )


@respx.mock
async def test_with_strip_a_redirect_elsewhere_is_followed_without_the_credential() -> None:
    respx.get(f"{API}/report").mock(
        return_value=httpx.Response(302, headers={"Location": f"{CDN}/r"})
    )
    other = respx.get(f"{CDN}/r").mock(return_value=httpx.Response(200, text="elsewhere"))
    headers = {"X-API-Key": SECRET, "Authorization": f"Bearer {SECRET}", "Accept": "text/csv"}
    async with client(secrets=[SECRET], headers=headers, other_origins="strip") as http:
        response = await http.get(f"{API}/report")

    assert response.text == "elsewhere"
    assert holding(other.calls.last.request) == []
    assert other.calls.last.request.headers["Accept"] == "text/csv"


@respx.mock
async def test_a_secret_in_the_url_or_body_elsewhere_is_refused_even_with_strip() -> None:
    respx.get(f"{API}/a").mock(
        return_value=httpx.Response(302, headers={"Location": f"{CDN}/r?api_key={SECRET}"})
    )
    respx.post(f"{API}/b").mock(
        return_value=httpx.Response(307, headers={"Location": f"{CDN}/token"})
    )
    other = respx.route(host="cdn.vendor.test").mock(return_value=httpx.Response(200))
    async with client(secrets=[SECRET], other_origins="strip") as http:
        with pytest.raises(ForeignOriginError):
            await http.get(f"{API}/a")
        with pytest.raises(ForeignOriginError):  # a 307 sends the body again
            await http.post(f"{API}/b", data={"client_secret": SECRET})

    assert not other.called


@respx.mock
async def test_credential_origins_bound_every_request_not_only_redirects() -> None:
    own = respx.get(f"{API}/page/1").mock(return_value=httpx.Response(200))
    other = respx.get(f"{CDN}/page/2").mock(return_value=httpx.Response(200))
    headers = {"X-API-Key": SECRET}
    async with client(secrets=[SECRET], headers=headers, credential_origins=[API]) as http:
        await http.get(f"{API}/page/1")
        with pytest.raises(ForeignOriginError, match=f"{CDN} was asked"):
            await http.get(f"{CDN}/page/2")

    assert holding(own.calls.last.request) == ["x-api-key"]
    assert not other.called


@respx.mock
async def test_same_origin_redirects_and_requests_without_credentials_go_anywhere() -> None:
    respx.get(f"{API}/old").mock(return_value=httpx.Response(301, headers={"Location": "/new"}))
    new = respx.get(f"{API}/new").mock(return_value=httpx.Response(200))
    respx.get(f"{API}/public").mock(
        return_value=httpx.Response(302, headers={"Location": f"{CDN}/file.csv"})
    )
    respx.get(f"{CDN}/file.csv").mock(return_value=httpx.Response(200, text="a,b"))
    async with client(secrets=[SECRET]) as http:
        await http.get(f"{API}/old", headers={"X-API-Key": SECRET})
        # The source holds a secret, but this request doesn't carry it: nothing to keep back.
        public = await http.get(f"{API}/public")

    assert holding(new.calls.last.request) == ["x-api-key"]
    assert public.text == "a,b"


# ----------------------------------------------------------------------- a real local server


@dataclass
class LocalServer:
    url: str
    in_flight: int = 0
    max_in_flight: int = 0
    hits: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    state = LocalServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            # A request counts as in flight from its arrival until the server starts to
            # answer: the client cannot free its slot before that, so the count never
            # overlaps the next request the way counting until after the write would.
            with state.lock:
                state.hits += 1
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
            try:
                if self.path.startswith("/slow"):
                    time.sleep(0.05)
            finally:
                with state.lock:
                    state.in_flight -= 1
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/ok")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_allow_private_reaches_a_local_server(local_server: LocalServer) -> None:
    async with client(allow_private=True, base_url=local_server.url) as http:
        response = await http.get("/redirect")

    assert response.json() == {"ok": True}
    assert local_server.hits == 2


async def test_guard_refuses_the_local_server_by_default(local_server: LocalServer) -> None:
    async with client(base_url=local_server.url) as http:
        with pytest.raises(PrivateNetworkError, match="loopback"):
            await http.get("/ok")

    assert local_server.hits == 0


async def test_semaphore_bounds_requests_in_flight(local_server: LocalServer) -> None:
    async with client(allow_private=True, base_url=local_server.url, max_concurrency=3) as http:
        responses = await asyncio.gather(*(http.get(f"/slow/{n}") for n in range(12)))

    assert all(r.status_code == 200 for r in responses)
    assert local_server.hits == 12
    assert local_server.max_in_flight == 3


async def test_a_streamed_response_gives_its_slot_back_when_closed(
    local_server: LocalServer,
) -> None:
    async with client(allow_private=True, base_url=local_server.url, max_concurrency=1) as http:
        for _ in range(3):  # would wait forever if the single slot leaked
            async with http.stream("GET", "/ok") as response:
                assert await response.aread() == b'{"ok": true}'
        await asyncio.wait_for(http.get("/ok"), timeout=2)

    assert local_server.hits == 4


@respx.mock
async def test_rate_limit_never_lets_more_than_the_rate_out_in_any_second() -> None:
    sent: list[float] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(time.monotonic())
        return httpx.Response(200)

    respx.get(f"{API}/report").mock(side_effect=record)
    async with client(rate_per_second=5) as http:
        await asyncio.gather(*(http.get(f"{API}/report") for _ in range(10)))

    # one every 0.2 s from the first: the tenth leaves at ~1.8 s, and no second holds six
    assert http.stats.requests == 10
    assert 1.7 <= sent[-1] - sent[0] < 3.5
    assert max(sum(1 for t in sent if start <= t < start + 1) for start in sent) <= 5


@respx.mock
async def test_sub_one_rate_is_supported() -> None:
    respx.get(f"{API}/report").mock(return_value=httpx.Response(200))
    async with client(rate_per_second=0.5) as http:
        response = await http.get(f"{API}/report")

    assert response.status_code == 200


# ------------------------------------------------------------------------------ headers etc.


@respx.mock
async def test_user_agent_and_headers() -> None:
    route = respx.get(f"{API}/me").mock(return_value=httpx.Response(200))
    async with client(headers={"LinkedIn-Version": "202406"}) as http:
        await http.get(f"{API}/me")

    sent = route.calls.last.request.headers
    assert sent["User-Agent"] == USER_AGENT == "krsync/0.1"
    assert sent["LinkedIn-Version"] == "202406"


async def test_an_injected_transport_sits_under_the_whole_stack() -> None:
    answers = iter([httpx.Response(503), httpx.Response(200, text="fine")])
    transport = httpx.MockTransport(lambda request: next(answers))

    async with client(transport=transport) as http:
        response = await http.get(f"{API}/report")
        with pytest.raises(PrivateNetworkError):
            await http.get("http://10.0.0.1/")

    assert response.text == "fine"
    assert http.stats.retries == 1


# ------------------------------------------------------------------------------- redaction


@respx.mock
async def test_secret_in_url_and_body_never_reaches_a_status_error() -> None:
    respx.get(f"{API}/report").mock(
        return_value=httpx.Response(
            403, json={"message": f"key {SECRET} lacks scope", "echo": f"Bearer {SECRET}"}
        )
    )
    async with client(secrets=[SECRET], headers={"Authorization": f"Bearer {SECRET}"}) as http:
        response = await http.get(f"{API}/report", params={"api_key": SECRET})
        with pytest.raises(HttpStatusError) as info:
            http.raise_for_status(response)

    message = str(info.value)
    assert SECRET not in message
    assert "api_key" not in message  # the query string is dropped altogether
    assert f"key {MASK} lacks scope" in message
    assert info.value.status_code == 403


@respx.mock
async def test_an_authorization_header_is_a_secret_whatever_it_encodes() -> None:
    """Mailchimp's key goes as Basic ``anystring:key``: its base64 is masked, not only the key."""
    basic = base64.b64encode(f"krsync:{SECRET}".encode()).decode()
    respx.get(f"{API}/report").mock(
        return_value=httpx.Response(401, text=f"bad Authorization: Basic {basic}")
    )
    async with client(secrets=[SECRET], headers={"Authorization": f"Basic {basic}"}) as http:
        response = await http.get(f"{API}/report")
        with pytest.raises(HttpStatusError) as info:
            http.raise_for_status(response)

    assert str(info.value).endswith(f"bad Authorization: Basic {MASK}")


#: A token as base64 spells it: `/` and `+` are what JSON encoders and URLs escape.
CUT_SECRET = "tok_3kP/9xQ+7mZ2wLr8vB4nT6yH1cJ5dF0s"
SPELLINGS = {
    "raw": CUT_SECRET,
    "json-slash": CUT_SECRET.replace("/", "\\/"),  # PHP's json_encode
    "json-unicode": CUT_SECRET.replace("+", "\\u002B"),  # .NET's System.Text.Json
}


@pytest.mark.parametrize("spelling", SPELLINGS)
@respx.mock
async def test_a_secret_the_excerpt_cuts_never_reaches_a_status_error(spelling: str) -> None:
    """The body is quoted up to a limit: the token is masked wherever the cut falls."""
    echoed = SPELLINGS[spelling]
    route = respx.get(f"{API}/report")
    async with client(secrets=[CUT_SECRET]) as http:
        for offset in range(250, 311):
            body = "e" * offset + f"{echoed} is not a valid key for this account"
            route.mock(return_value=httpx.Response(400, text=body))
            response = await http.get(f"{API}/report")
            with pytest.raises(HttpStatusError) as info:
                http.raise_for_status(response)
            message = str(info.value)

            assert leaked(message, CUT_SECRET, echoed) == [], (offset, message)
            assert split_masks(message) == [], (offset, message)


@respx.mock
async def test_secret_never_reaches_a_transport_error() -> None:
    respx.get(f"{API}/report").mock(
        side_effect=httpx.ConnectError(f"cannot reach {API}/report?api_key={SECRET}")
    )
    async with client(secrets=[SECRET], max_attempts=2) as http:
        with pytest.raises(HttpLayerError) as info:
            await http.get(f"{API}/report", params={"api_key": SECRET})

    error = info.value
    assert SECRET not in str(error)
    assert MASK in str(error)
    # no chained original exception to leak it through a traceback
    assert error.__cause__ is None
    assert error.__suppress_context__


# ----------------------------------------------------------------------------------- OAuth2


@dataclass
class TokenSink:
    tokens: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, token: dict[str, Any]) -> None:
        self.tokens.append(token)


def oauth(token: dict[str, Any]) -> OAuth2Settings:
    return OAuth2Settings(
        token_endpoint=TOKEN_URL,
        client_id="client-id-1",
        client_secret="client-secret-xyz",
        token=token,
    )


def token_response(access: str, refresh: str | None = "rotated-refresh") -> httpx.Response:
    body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": 3600}
    if refresh:
        body["refresh_token"] = refresh
    return httpx.Response(200, json=body)


def bearer_is(access: str) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        ok = request.headers.get("Authorization") == f"Bearer {access}"
        return httpx.Response(200, json={"ok": True}) if ok else httpx.Response(401)

    return answer


@respx.mock
async def test_expired_token_is_refreshed_and_the_rotated_token_handed_back() -> None:
    token_route = respx.post(TOKEN_URL).mock(return_value=token_response("fresh-access"))
    api = respx.get(f"{API}/me").mock(side_effect=bearer_is("fresh-access"))
    sink = TokenSink()
    expired = {
        "access_token": "stale-access",
        "refresh_token": "old-refresh",
        "token_type": "Bearer",
        "expires_at": int(time.time()) - 100,
    }

    async with client(oauth=oauth(expired), on_token_update=sink) as http:
        response = await http.get(f"{API}/me")

    assert response.status_code == 200
    assert token_route.call_count == 1
    assert api.call_count == 1
    form = parse_qs(token_route.calls.last.request.content.decode())
    assert form["grant_type"] == ["refresh_token"]
    assert form["refresh_token"] == ["old-refresh"]
    assert form["client_id"] == ["client-id-1"]  # client_secret_post
    assert form["client_secret"] == ["client-secret-xyz"]
    assert [t["refresh_token"] for t in sink.tokens] == ["rotated-refresh"]
    assert sink.tokens[0]["access_token"] == "fresh-access"
    assert http.stats.requests == 2


@respx.mock
async def test_stored_refresh_token_alone_is_enough() -> None:
    respx.post(TOKEN_URL).mock(return_value=token_response("fresh-access", refresh=None))
    respx.get(f"{API}/me").mock(side_effect=bearer_is("fresh-access"))
    updates: list[dict[str, Any]] = []

    async with client(
        oauth=oauth({"refresh_token": "only-refresh"}), on_token_update=updates.append
    ) as http:
        response = await http.get(f"{API}/me")

    assert response.status_code == 200
    # the platform did not rotate: the old refresh token is kept in what is stored
    assert updates[0]["refresh_token"] == "only-refresh"


@respx.mock
async def test_401_refreshes_once_and_repeats_the_request() -> None:
    token_route = respx.post(TOKEN_URL).mock(return_value=token_response("fresh-access"))
    api = respx.get(f"{API}/me").mock(side_effect=bearer_is("fresh-access"))
    sink = TokenSink()
    not_yet_expired = {
        "access_token": "revoked-access",
        "refresh_token": "old-refresh",
        "token_type": "Bearer",
        "expires_at": int(time.time()) + 3600,
    }

    async with client(oauth=oauth(not_yet_expired), on_token_update=sink) as http:
        first = await http.get(f"{API}/me")
        second = await http.get(f"{API}/me")

    assert first.status_code == second.status_code == 200
    assert token_route.call_count == 1
    assert api.call_count == 3  # 401, repeat, and the next request straight through
    assert sink.tokens[0]["refresh_token"] == "rotated-refresh"


@respx.mock
async def test_a_persistent_401_is_returned_after_one_refresh() -> None:
    token_route = respx.post(TOKEN_URL).mock(return_value=token_response("fresh-access"))
    api = respx.get(f"{API}/me").mock(return_value=httpx.Response(401))
    token = {"access_token": "a-token", "refresh_token": "r-token", "token_type": "Bearer"}

    async with client(oauth=oauth(token)) as http:
        response = await http.get(f"{API}/me")

    assert response.status_code == 401
    assert token_route.call_count == 1
    assert api.call_count == 2


@respx.mock
async def test_concurrent_401s_refresh_once() -> None:
    token_route = respx.post(TOKEN_URL).mock(return_value=token_response("fresh-access"))
    respx.get(f"{API}/me").mock(side_effect=bearer_is("fresh-access"))
    token = {"access_token": "revoked", "refresh_token": "r-token", "token_type": "Bearer"}

    async with client(oauth=oauth(token)) as http:
        responses = await asyncio.gather(*(http.get(f"{API}/me") for _ in range(5)))

    assert all(r.status_code == 200 for r in responses)
    assert token_route.call_count == 1


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(400, json={"error": "invalid_grant", "error_description": "revoked"}),
        httpx.Response(503, text="down"),
        # Not RFC 6749's shape (Pipedrive answers so): Authlib alone would take it for a token.
        httpx.Response(401, json={"success": False, "message": "Invalid refresh token"}),
    ],
)
async def test_a_failed_refresh_is_an_oauth_error_without_secrets(answer: httpx.Response) -> None:
    expired = {
        "access_token": "stale-access-token",
        "refresh_token": "refresh-token-canary",
        "token_type": "Bearer",
        "expires_at": 0,
    }
    with respx.mock:
        respx.post(TOKEN_URL).mock(return_value=answer)
        async with client(oauth=oauth(expired), max_attempts=2) as http:
            with pytest.raises(OAuthRefreshError) as info:
                await http.get(f"{API}/me")

    message = str(info.value)
    assert isinstance(info.value, TokenRefreshError)  # what connectors catch
    assert "refreshing the OAuth2 access token failed" in message
    for secret in ("refresh-token-canary", "client-secret-xyz", "stale-access-token"):
        assert secret not in message


@respx.mock
async def test_sync_token_callback_and_oauth_client_type() -> None:
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    respx.post(TOKEN_URL).mock(return_value=token_response("fresh-access"))
    respx.get(f"{API}/me").mock(side_effect=bearer_is("fresh-access"))
    seen: list[str] = []

    def remember(token: dict[str, Any]) -> None:
        seen.append(token["access_token"])

    async with client(oauth=oauth({"refresh_token": "r"}), on_token_update=remember) as http:
        assert isinstance(http, AsyncOAuth2Client)
        assert isinstance(http, KrsyncClient)
        await http.get(f"{API}/me")

    assert seen == ["fresh-access"]
