"""The ``rest_json`` connector: pagination styles, JSONPath extraction, templating, auth, SSRF."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

from app.core.http import KrsyncClient
from app.core.settings import get_settings
from app.sync.connect import connector_from, open_connector
from connectors.base import (
    ConnectorAuthError,
    ConnectorConfigError,
    MetricQuery,
    RetriableError,
    Window,
)
from connectors.rest_json.connector import RestJsonConnector, RestJsonParams
from tests.connectors.acme import configure_engine

pytestmark = pytest.mark.anyio

WINDOW = Window(date(2026, 7, 1), date(2026, 7, 10))
API = "https://api.example.test/stats"


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    configure_engine(monkeypatch)  # *.test resolves to a public address
    yield
    get_settings.cache_clear()


@asynccontextmanager
async def connector(
    config: dict[str, Any],
    credentials: dict[str, Any] | None = None,
    *,
    allow_private: bool = False,
) -> AsyncIterator[RestJsonConnector]:
    # As the engine builds it: the credentials are its secrets, its options bound where they go.
    built = connector_from(RestJsonConnector, config, credentials or {}, name="rest-json-test")
    async with open_connector(built, allow_private=allow_private) as c:
        assert isinstance(c, RestJsonConnector)
        assert isinstance(c.http, KrsyncClient)
        yield c


def query(qid: str = "1", **params: str) -> MetricQuery:
    base = {"records": "$.data", "date": "$.day", "value": "$.n"}
    return MetricQuery(qid, "value", RestJsonParams.model_validate({**base, **params}))


def rows(*days: int) -> list[dict[str, Any]]:
    return [{"day": f"2026-07-{d:02d}", "n": d} for d in days]


def as_dict(values: list[Any]) -> dict[tuple[date, str | None], float]:
    return {(v.date, v.group): v.value for v in values}


def expected(*days: int) -> dict[tuple[date, str | None], float]:
    return {(date(2026, 7, d), None): float(d) for d in days}


# --- pagination ---------------------------------------------------------------------------------


async def test_cursor_pagination_collects_every_page() -> None:
    pages = {None: (rows(1, 2), "c2"), "c2": (rows(3, 4), "c3"), "c3": (rows(5), None)}

    def answer(request: httpx.Request) -> httpx.Response:
        data, nxt = pages[request.url.params.get("after")]
        return httpx.Response(200, json={"data": data, "meta": {"next": nxt}})

    config = {
        "url": API,
        "pagination": {
            "type": "cursor",
            "cursor_param": "after",
            "next_cursor_path": "$.meta.next",
        },
    }
    with respx.mock() as router:
        route = router.get(API).mock(side_effect=answer)
        async with connector(config) as c:
            result = await c.fetch([query()], WINDOW)
    assert route.call_count == 3
    assert as_dict(result.values) == expected(1, 2, 3, 4, 5)


async def test_a_cursor_seen_twice_stops_with_a_warning() -> None:
    config = {
        "url": API,
        "pagination": {"type": "cursor", "cursor_param": "c", "next_cursor_path": "$.next"},
    }
    with respx.mock() as router:
        route = router.get(API).mock(
            return_value=httpx.Response(200, json={"data": rows(1), "next": "same"})
        )
        async with connector(config) as c:
            result = await c.fetch([query()], WINDOW)
    assert route.call_count == 2
    assert any("twice" in w for w in result.warnings)


async def test_page_pagination_stops_on_a_short_page() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.params["per_page"] == "2"
        page = int(request.url.params["page"])
        return httpx.Response(200, json={"data": {1: rows(1, 2), 2: rows(3, 4), 3: rows(5)}[page]})

    config = {"url": API, "pagination": {"type": "page", "page_param": "page", "size": 2}}
    with respx.mock() as router:
        route = router.get(API).mock(side_effect=answer)
        async with connector(config) as c:
            result = await c.fetch([query()], WINDOW)
    assert route.call_count == 3
    assert as_dict(result.values) == expected(1, 2, 3, 4, 5)


async def test_offset_pagination_stops_on_an_empty_page() -> None:
    data = rows(1, 2, 3, 4)

    def answer(request: httpx.Request) -> httpx.Response:
        off, lim = int(request.url.params["skip"]), int(request.url.params["take"])
        return httpx.Response(200, json={"data": data[off : off + lim]})

    config = {
        "url": API,
        "pagination": {"type": "offset", "offset_param": "skip", "limit_param": "take", "limit": 2},
    }
    with respx.mock() as router:
        route = router.get(API).mock(side_effect=answer)
        async with connector(config) as c:
            result = await c.fetch([query()], WINDOW)
    assert route.call_count == 3  # 2 full pages, then an empty one
    assert as_dict(result.values) == expected(1, 2, 3, 4)


async def test_link_header_pagination_follows_rel_next() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        headers = {"Link": f'<{API}?page={page + 1}>; rel="next"'} if page < 3 else {}
        return httpx.Response(200, headers=headers, json=rows(page))

    config = {"url": API, "pagination": {"type": "link_header"}}
    with respx.mock() as router:
        route = router.get(API).mock(side_effect=answer)
        async with connector(config) as c:
            result = await c.fetch([query(records="$")], WINDOW)
    assert route.call_count == 3
    assert as_dict(result.values) == expected(1, 2, 3)


# --- JSONPath, templating, batching -------------------------------------------------------------


async def test_jsonpaths_group_sum_and_bad_records_are_warned() -> None:
    body = {
        "result": {
            "items": [
                {"d": "01/07/2026", "m": {"v": "2.5"}, "ch": "Email"},
                {"d": "01/07/2026", "m": {"v": 1.5}, "ch": "Email"},
                {"d": "01/07/2026", "m": {"v": 4}, "ch": "Web"},
                {"d": "02/07/2026", "m": {"v": "n/a"}, "ch": "Web"},
                {"d": "02/07/2026", "m": {}, "ch": "Web"},
                {"d": "30/06/2026", "m": {"v": 9}, "ch": "Web"},
            ]
        }
    }
    q = query(
        records="$.result.items[*]", date="$.d", value="$.m.v", group="$.ch", date_format="%d/%m/%Y"
    )
    with respx.mock() as router:
        router.get(API).mock(return_value=httpx.Response(200, json=body))
        async with connector({"url": API}) as c:
            result = await c.fetch([q], WINDOW)
    assert as_dict(result.values) == {
        (date(2026, 7, 1), "Email"): 4.0,
        (date(2026, 7, 1), "Web"): 4.0,
    }
    assert any(w.startswith("record 3:") and "n/a" in w for w in result.warnings)
    assert any(w.startswith("record 4:") and "no value" in w for w in result.warnings)


async def test_window_templating_in_url_query_and_post_body_and_one_fetch_per_request() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": rows(1, 2), "other": rows(3)})

    config = {
        "url": "https://api.example.test/report/{from}",
        "method": "POST",
        "query": {"until": "{to}"},
        "body": {"range": {"start": "{from}", "end": "{to}"}, "n": 1},
    }
    with respx.mock() as router:
        router.post("https://api.example.test/report/2026-07-01").mock(side_effect=answer)
        async with connector(config) as c:
            result = await c.fetch([query("a"), query("b", records="$.other")], WINDOW)
    assert len(seen) == 1  # both queries share the one request's pages
    assert seen[0].url.params["until"] == "2026-07-10"
    assert json.loads(seen[0].content) == {
        "range": {"start": "2026-07-01", "end": "2026-07-10"},
        "n": 1,
    }
    assert {(v.query_id, v.date.day) for v in result.values} == {("a", 1), ("a", 2), ("b", 3)}


# --- auth and errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "credentials", "header", "value"),
    [
        ({}, {"token": "t0k"}, "Authorization", "Bearer t0k"),
        ({}, {"username": "u", "password": "p"}, "Authorization", "Basic dTpw"),
        ({"auth_header": "X-Api-Token"}, {"header_value": "s3c"}, "X-Api-Token", "s3c"),
    ],
)
async def test_credentials_are_sent(
    config: dict[str, Any], credentials: dict[str, Any], header: str, value: str
) -> None:
    with respx.mock() as router:
        route = router.get(API).mock(return_value=httpx.Response(200, json={"data": []}))
        async with connector({"url": API, **config}, credentials) as c:
            await c.fetch([query()], WINDOW)
    assert route.calls.last.request.headers[header] == value


@pytest.mark.parametrize(
    ("answer", "error", "words"),
    [
        (httpx.Response(401, json={"e": "bad"}), ConnectorAuthError, "refused the credentials"),
        (httpx.Response(404, text="gone"), ConnectorConfigError, "404"),
        (httpx.Response(400, text="bad field x"), ConnectorConfigError, "bad field x"),
        (httpx.Response(200, text="<html>login</html>"), ConnectorConfigError, "web page"),
        (httpx.Response(200, text="oops not json"), RetriableError, "oops not json"),
    ],
)
async def test_errors_are_classified_with_the_status_and_body(
    answer: httpx.Response, error: type[Exception], words: str
) -> None:
    with respx.mock() as router:
        router.get(API).mock(return_value=answer)
        async with connector({"url": API}, {"token": "secret-tok"}) as c:
            with pytest.raises(error) as raised:
                await c.fetch([query()], WINDOW)
    assert words in str(raised.value)
    assert "secret-tok" not in str(raised.value)


# --- the credentials stay on the origin of `url` ------------------------------------------------

ELSEWHERE = "https://cdn.elsewhere.test"
KEY = "rest-json-key-5b1e8f0c2d"
CREDENTIALS = [
    pytest.param({"header_value": KEY}, id="X-API-Key"),
    pytest.param({"token": KEY}, id="bearer"),
    pytest.param({"username": "stats", "password": KEY}, id="basic"),
]


def carried_credentials(request: httpx.Request) -> list[str]:
    """The request's headers holding the key, in any form the connector sends it."""
    basic = base64.b64encode(f"stats:{KEY}".encode()).decode()
    return [n for n, v in request.headers.items() if KEY in v or basic in v]


@pytest.mark.parametrize("credentials", CREDENTIALS)
async def test_a_redirect_to_another_origin_is_refused_and_gets_no_credential(
    credentials: dict[str, Any],
) -> None:
    with respx.mock(assert_all_called=False) as router:
        router.get(API).mock(
            return_value=httpx.Response(302, headers={"Location": f"{ELSEWHERE}/stats?sig=x1"})
        )
        elsewhere = router.get(host="cdn.elsewhere.test").mock(
            return_value=httpx.Response(200, json={"data": rows(1)})
        )
        async with connector({"url": API}, credentials) as c:
            with pytest.raises(ConnectorConfigError) as refused:
                await c.fetch([query()], WINDOW)

    assert not elsewhere.called
    message = refused.value.message
    assert f"redirect from https://api.example.test led to {ELSEWHERE}," in message
    assert "follow_other_origins" in message
    assert KEY not in message
    assert "sig=x1" not in message


@pytest.mark.parametrize("credentials", CREDENTIALS)
async def test_a_next_link_to_another_origin_is_refused_and_gets_no_credential(
    credentials: dict[str, Any],
) -> None:
    link = {"Link": f'<{ELSEWHERE}/stats?page=2&token=abc>; rel="next"'}
    with respx.mock(assert_all_called=False) as router:
        first = router.get(API).mock(
            return_value=httpx.Response(200, headers=link, json={"data": rows(1)})
        )
        elsewhere = router.get(host="cdn.elsewhere.test").mock(
            return_value=httpx.Response(200, json={"data": rows(2)})
        )
        async with connector({"url": API, "pagination": {"type": "link_header"}}, credentials) as c:
            with pytest.raises(ConnectorConfigError) as refused:
                await c.fetch([query()], WINDOW)

    assert carried_credentials(first.calls.last.request)  # the API itself gets them
    assert not elsewhere.called
    assert f"{ELSEWHERE} was asked" in refused.value.message
    assert "page=2" not in refused.value.message


@pytest.mark.parametrize("credentials", CREDENTIALS)
async def test_other_origins_are_followed_without_credentials_when_the_source_says_so(
    credentials: dict[str, Any],
) -> None:
    def moved(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("page") == "2":
            return httpx.Response(302, headers={"Location": f"{ELSEWHERE}/stats/2"})
        link = {"Link": '<?page=2>; rel="next"'}
        return httpx.Response(200, headers=link, json={"data": rows(1)})

    config = {"url": API, "pagination": {"type": "link_header"}, "follow_other_origins": True}
    with respx.mock(assert_all_called=False) as router:
        first = router.get(API).mock(side_effect=moved)
        elsewhere = router.get(f"{ELSEWHERE}/stats/2").mock(
            return_value=httpx.Response(200, json={"data": rows(2)})
        )
        async with connector(config, credentials) as c:
            result = await c.fetch([query()], WINDOW)

    assert as_dict(result.values) == expected(1, 2)
    assert all(carried_credentials(call.request) for call in first.calls)
    assert elsewhere.call_count == 1
    assert carried_credentials(elsewhere.calls.last.request) == []


async def test_same_origin_redirects_and_links_keep_the_credentials() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/stats":
            return httpx.Response(301, headers={"Location": "/v2/stats"})
        if "page" in request.url.params:
            return httpx.Response(200, json={"data": rows(1)})
        link = {"Link": '<https://api.example.test/v2/stats?page=2>; rel="next"'}
        return httpx.Response(200, headers=link, json={"data": rows(2)})

    with respx.mock() as router:
        route = router.get(host="api.example.test").mock(side_effect=answer)
        config = {"url": API, "pagination": {"type": "link_header"}}
        async with connector(config, {"header_value": KEY}) as c:
            result = await c.fetch([query()], WINDOW)

    assert as_dict(result.values) == expected(2, 1)
    assert all(call.request.headers["X-API-Key"] == KEY for call in route.calls)


def test_the_host_of_url_is_no_template() -> None:
    with pytest.raises(ValidationError, match="not its host"):
        RestJsonConnector.config_model.model_validate({"url": "https://{from}.example.test/x"})


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"headers": {"Authorization": "Bearer s3cr3t-v4lue"}}, "`token`"),
        ({"headers": {"X-API-Key": "s3cr3t-v4lue"}}, "`header_value`"),
        ({"headers": {"x-auth-token": "s3cr3t-v4lue"}}, "`header_value`"),
        ({"headers": {"Cookie": "sid=s3cr3t-v4lue"}}, "`header_value`"),
        ({"url": "https://reader:s3cr3t-v4lue@api.example.test/x"}, "`password`"),
    ],
)
def test_a_credential_in_config_is_refused_without_being_shown(
    config: dict[str, Any], says: str
) -> None:
    """The config is stored and returned in clear; a credential there would be too."""
    with pytest.raises(ValidationError, match=says) as refused:
        RestJsonConnector.config_model.model_validate(
            {"url": "https://api.example.test/x"} | config
        )
    assert "s3cr3t" not in str(refused.value.errors(include_input=False))


def test_ordinary_headers_stay_in_config() -> None:
    headers = {"Accept": "application/json", "X-Account": "acme", "User-Agent": "krsync"}
    config = RestJsonConnector.config_model.model_validate(
        {"url": "https://api.example.test/x", "headers": headers}
    )
    assert config.headers == headers


# --- the private-network guard ------------------------------------------------------------------


@pytest.fixture
def local_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"data": rows(3)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/stats"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_a_loopback_url_is_refused_by_default(local_server: str) -> None:
    async with connector({"url": local_server}) as c:
        with pytest.raises(Exception, match=r"127\.0\.0\.1|loopback"):
            await c.fetch([query()], WINDOW)


async def test_a_redirect_to_loopback_is_refused(local_server: str) -> None:
    with respx.mock(assert_all_called=False) as router:
        router.get(API).mock(return_value=httpx.Response(302, headers={"Location": local_server}))
        local = router.route(host="127.0.0.1").pass_through()
        async with connector({"url": API}) as c:
            with pytest.raises(Exception, match=r"127\.0\.0\.1|loopback"):
                await c.fetch([query()], WINDOW)
    assert not local.called  # refused before the hop was sent


async def test_allowed_private_networks_read_the_local_server(local_server: str) -> None:
    async with connector({"url": local_server}, allow_private=True) as c:
        result = await c.fetch([query()], WINDOW)
    assert as_dict(result.values) == expected(3)
