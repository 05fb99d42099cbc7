"""The shared paginators (``connectors.paginate``): each kind walks its pages and ends.

Every kind is driven through :func:`pages` with a scripted ``send``, with bodies shaped as the
vendor documents them, and shown to end on the platform's own signal, on an empty page, on a
cursor or link it already followed, and past ``max_pages`` with an error that says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from app.core.http import build_client
from app.core.settings import get_settings
from connectors.base import ForeignOriginError, RetriableError
from connectors.paginate import (
    CursorPaginator,
    LinkHeaderPaginator,
    NextUrlPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    Paginator,
    Reply,
    Request,
    SinglePage,
    TooManyPages,
    getter,
    pages,
)
from tests.connectors.acme import configure_engine

pytestmark = pytest.mark.anyio

API = "https://api.vendor.test/v1/items"


class Script:
    """A fake platform: answers each request with ``answer(request, n)`` and keeps them all."""

    def __init__(self, answer: Callable[[Request, int], Any]) -> None:
        self.answer = answer
        self.sent: list[Request] = []

    async def __call__(self, request: Request) -> Any:
        self.sent.append(request)
        return self.answer(request, len(self.sent))


async def walk(
    paginator: Paginator,
    script: Script,
    request: Request | None = None,
    **kwargs: Any,
) -> list[Any]:
    return [
        body async for body in pages(paginator, request or Request("GET", API), script, **kwargs)
    ]


def count(key: str) -> Callable[[Any], int]:
    return lambda body: len(body[key])


# --- cursor ---------------------------------------------------------------------------------------


async def test_cursor_follows_hubspot_paging_next_after_in_the_body() -> None:
    """HubSpot CRM search: each page has ``paging.next.after`` until the last, which has no
    ``paging``; the next search sends ``after`` in its JSON body.
    https://developers.hubspot.com/docs/api/crm/search ("Paging through results")."""
    answers = {
        None: {"total": 5, "results": [1, 2], "paging": {"next": {"after": "2", "link": "?a"}}},
        "2": {"total": 5, "results": [3, 4], "paging": {"next": {"after": "4", "link": "?a"}}},
        "4": {"total": 5, "results": [5]},
    }
    script = Script(lambda r, n: answers[r.body.get("after")])
    paginator = CursorPaginator(cursor="$.paging.next.after", param="after", into="body")
    first = Request("POST", API, body={"limit": 2, "properties": ["createdate"]})
    got = await walk(paginator, script, first, count=count("results"))
    assert [b["results"] for b in got] == [[1, 2], [3, 4], [5]]
    assert [r.body for r in script.sent] == [
        {"limit": 2, "properties": ["createdate"]},
        {"limit": 2, "properties": ["createdate"], "after": "2"},
        {"limit": 2, "properties": ["createdate"], "after": "4"},
    ]
    assert paginator.warning is None


async def test_cursor_goes_in_the_query_string_and_takes_a_function() -> None:
    script = Script(lambda r, n: {"data": [n], "next": f"c{n}" if n < 3 else None})
    paginator = CursorPaginator(cursor=lambda body: body["next"], param="cursor")
    await walk(paginator, script, Request("GET", API, {"q": "x"}), count=count("data"))
    assert [r.params for r in script.sent] == [
        {"q": "x"},
        {"q": "x", "cursor": "c1"},
        {"q": "x", "cursor": "c2"},
    ]


async def test_a_cursor_seen_again_ends_the_walk_with_a_warning() -> None:
    script = Script(lambda r, n: {"data": [n], "next": "same"})
    paginator = CursorPaginator(cursor="$.next", param="c")
    got = await walk(paginator, script, count=count("data"))
    assert len(got) == len(script.sent) == 2
    assert paginator.warning is not None
    assert "`same` twice" in paginator.warning


async def test_an_empty_page_ends_a_cursor_walk_even_with_a_cursor() -> None:
    script = Script(lambda r, n: {"data": [1] if n == 1 else [], "next": f"c{n}"})
    paginator = CursorPaginator(cursor="$.next", param="c")
    await walk(paginator, script, count=count("data"))
    assert len(script.sent) == 2
    assert paginator.warning is None


@pytest.mark.parametrize("cursor", [None, "", {"a": 1}, [1], True])
async def test_no_usable_cursor_is_the_last_page(cursor: Any) -> None:
    script = Script(lambda r, n: {"data": [1], "next": cursor})
    await walk(CursorPaginator(cursor="$.next", param="c"), script, count=count("data"))
    assert len(script.sent) == 1


# --- page number ----------------------------------------------------------------------------------


async def test_page_numbers_count_up_until_a_short_page() -> None:
    sizes = {1: 2, 2: 2, 3: 1}
    script = Script(lambda r, n: {"data": [0] * sizes[n]})
    paginator = PageNumberPaginator(param="page", size=2, size_param="per_page")
    await walk(paginator, script, count=count("data"))
    assert [r.params for r in script.sent] == [
        {"page": "1", "per_page": "2"},
        {"page": "2", "per_page": "2"},
        {"page": "3", "per_page": "2"},
    ]


async def test_page_numbers_from_zero_end_on_an_empty_page() -> None:
    script = Script(lambda r, n: {"data": [0, 0] if n == 1 else []})
    await walk(PageNumberPaginator(size=2, first_page=0), script, count=count("data"))
    assert [r.params for r in script.sent] == [{"page": "0"}, {"page": "1"}]


async def test_a_page_number_walk_needs_each_page_s_record_count() -> None:
    with pytest.raises(TypeError, match="record count"):
        await walk(PageNumberPaginator(size=2), Script(lambda r, n: {}))


# --- offset ---------------------------------------------------------------------------------------


async def test_offset_pages_mailchimp_count_offset_to_total_items() -> None:
    """Mailchimp Marketing API: ``count`` and ``offset`` page a collection whose body says
    ``total_items``. https://mailchimp.com/developer/marketing/docs/methods-parameters/
    ("Pagination"). A full last page ends the walk: no empty page is asked for."""
    records = list(range(7))

    def answer(request: Request, n: int) -> Any:
        offset, size = int(request.params["offset"]), int(request.params["count"])
        return {"activity": records[offset : offset + size], "total_items": len(records)}

    paginator = OffsetPaginator(
        offset_param="offset", limit_param="count", limit=4, total="$.total_items"
    )
    got = await walk(paginator, Script(answer), count=count("activity"))
    assert [b["activity"] for b in got] == [[0, 1, 2, 3], [4, 5, 6]]


async def test_offset_without_a_total_ends_on_a_short_or_empty_page() -> None:
    records = list(range(4))
    script = Script(
        lambda r, n: {"data": records[int(r.params["skip"]) :][: int(r.params["take"])]}
    )
    paginator = OffsetPaginator(offset_param="skip", limit_param="take", limit=2)
    await walk(paginator, script, count=count("data"))
    assert [r.params["skip"] for r in script.sent] == ["0", "2", "4"]  # the last one is empty


async def test_offset_in_the_body_pages_search_console_start_row() -> None:
    """Search Console ``searchAnalytics.query``: ``startRow`` (zero-based) pages in the JSON body,
    ``rowLimit`` rows a page; a page with fewer rows is the last.
    https://developers.google.com/webmaster-tools/v1/searchanalytics/query"""
    rows = {0: 3, 3: 3, 6: 1}
    script = Script(lambda r, n: {"rows": [{}] * rows[r.body["startRow"]]})
    paginator = OffsetPaginator(offset_param="startRow", limit_param=None, limit=3, into="body")
    first = Request("POST", API, body={"rowLimit": 3, "startRow": 0, "type": "web"})
    await walk(paginator, script, first, count=count("rows"))
    assert [r.body for r in script.sent] == [
        {"rowLimit": 3, "startRow": 0, "type": "web"},
        {"rowLimit": 3, "startRow": 3, "type": "web"},
        {"rowLimit": 3, "startRow": 6, "type": "web"},
    ]


# --- Link header ----------------------------------------------------------------------------------


def linked(request: Request, links: dict[str, str], body: Any) -> Reply:
    url = httpx.URL(request.url, params=request.params)
    header = ", ".join(f'<{target}>; rel="{rel}"' for rel, target in links.items())
    response = httpx.Response(
        200,
        headers={"Link": header} if header else {},
        json=body,
        request=httpx.Request(request.method, url),
    )
    return Reply(body, response)


async def test_link_header_follows_rel_next_relative_to_the_page() -> None:
    """RFC 8288: ``Link: <uri-reference>; rel="next"``, a relative reference resolved against the
    response's URL (section 3.1); other relations (``prev``, ``last``) are not followed.
    https://www.rfc-editor.org/rfc/rfc8288 and GitHub's REST paging
    https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api"""

    def answer(request: Request, n: int) -> Reply:
        links = {"prev": "/v1/items?page=1", "last": "/v1/items?page=3"}
        if n < 3:
            links["next"] = f"items?page={n + 1}"
        return linked(request, links, [n])

    script = Script(answer)
    got = await walk(LinkHeaderPaginator(), script, Request("GET", API, {"per_page": "1"}))
    assert got == [[1], [2], [3]]
    assert [(r.url, r.params) for r in script.sent] == [
        (API, {"per_page": "1"}),
        (f"{API}?page=2", {}),
        (f"{API}?page=3", {}),
    ]


async def test_a_link_back_to_a_page_already_read_ends_with_a_warning() -> None:
    script = Script(lambda r, n: linked(r, {"next": API}, [n]))
    paginator = LinkHeaderPaginator()
    await walk(paginator, script)
    assert len(script.sent) == 1
    assert paginator.warning is not None
    assert "already read" in paginator.warning


async def test_an_empty_page_ends_a_link_walk() -> None:
    script = Script(lambda r, n: linked(r, {"next": f"{API}?page={n + 1}"}, []))
    await walk(LinkHeaderPaginator(), script, count=len)
    assert len(script.sent) == 1


async def test_a_link_header_paginator_needs_the_response() -> None:
    with pytest.raises(TypeError, match="Reply"):
        await walk(LinkHeaderPaginator(), Script(lambda r, n: []))


# --- next URL -------------------------------------------------------------------------------------


async def test_next_url_follows_salesforce_next_records_url_on_the_client_root() -> None:
    """Salesforce REST ``query``: ``done: false`` and a ``nextRecordsUrl`` (a path on the
    instance) until the last batch, ``done: true`` without one.
    https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_query.htm"""
    locator = "/services/data/v60.0/query/01gD0000002HU6KIAW-2000"

    def answer(request: Request, n: int) -> Any:
        if n == 1:
            return {"done": False, "records": [1], "nextRecordsUrl": locator}
        return {"done": True, "records": [2]}

    script = Script(answer)
    first = Request("GET", "/services/data/v60.0/query", {"q": "SELECT Id FROM Account"})
    got = await walk(NextUrlPaginator(next_url="$.nextRecordsUrl"), script, first)
    assert [b["records"] for b in got] == [[1], [2]]
    assert [(r.url, r.params) for r in script.sent[1:]] == [(locator, {})]


async def test_next_url_follow_rewrites_or_declines_meta_paging_next() -> None:
    """Graph API: ``paging.next`` is a full URL with the access token in it; a follow function
    puts it back on the source's own root without the token, and ends the walk where the link
    leaves the window. https://developers.facebook.com/docs/graph-api/results"""
    until = 300

    def answer(request: Request, n: int) -> Any:
        since = 100 * n
        nxt = f"https://graph.facebook.com/v21.0/1/insights?since={since}&access_token=EAAB"
        return {"data": [{"name": "page_follows"}], "paging": {"next": nxt}}

    def follow(request: Request, url: httpx.URL) -> Request | None:
        params = {k: v for k, v in url.params.items() if k != "access_token"}
        if int(params["since"]) >= until:
            return None
        return replace(request, url=url.path, params=params)

    script = Script(answer)
    paginator = NextUrlPaginator(next_url="$.paging.next", follow=follow)
    await walk(paginator, script, Request("GET", "/v21.0/1/insights", {"since": "0"}))
    assert [(r.url, r.params) for r in script.sent] == [
        ("/v21.0/1/insights", {"since": "0"}),
        ("/v21.0/1/insights", {"since": "100"}),
        ("/v21.0/1/insights", {"since": "200"}),
    ]
    assert paginator.warning is None


async def test_a_next_url_seen_again_ends_with_a_warning() -> None:
    script = Script(lambda r, n: {"next": f"{API}?page={min(n + 1, 2)}"})
    paginator = NextUrlPaginator(next_url="$.next")
    await walk(paginator, script)
    assert len(script.sent) == 2
    assert paginator.warning is not None


@pytest.mark.parametrize("link", [None, "", 7])
async def test_no_next_url_is_the_last_page(link: Any) -> None:
    script = Script(lambda r, n: {"next": link})
    await walk(NextUrlPaginator(next_url="$.next"), script)
    assert len(script.sent) == 1


# --- every kind: the safety net -------------------------------------------------------------------


async def test_single_page_asks_once() -> None:
    script = Script(lambda r, n: {"next": "more"})
    await walk(SinglePage(), script)
    assert len(script.sent) == 1


@pytest.mark.parametrize(
    "paginator",
    [
        CursorPaginator(cursor=lambda body: body["n"], param="c"),
        PageNumberPaginator(size=1),
        OffsetPaginator(limit=1),
        NextUrlPaginator(next_url=lambda body: f"{API}?page={body['n']}"),
        LinkHeaderPaginator(),
    ],
    ids=lambda p: type(p).__name__,
)
async def test_past_max_pages_the_walk_fails_and_says_so(paginator: Paginator) -> None:
    def endless(request: Request, n: int) -> Any:
        return linked(request, {"next": f"{API}?page={n + 1}"}, {"n": n, "data": [n]})

    script = Script(endless)
    seen: list[Any] = []

    async def read_all() -> None:
        async for body in pages(
            paginator, Request("GET", API), script, count=count("data"), max_pages=5, what="Acme's"
        ):
            seen.append(body)

    with pytest.raises(TooManyPages, match="Acme's paging did not end after 5 pages") as caught:
        await read_all()
    assert isinstance(caught.value, RetriableError)  # the next run tries again
    assert len(seen) == len(script.sent) == 5


async def test_a_first_page_already_read_is_not_asked_again() -> None:
    script = Script(lambda r, n: {"data": [n], "next": None})
    paginator = CursorPaginator(cursor="$.next", param="c")
    first = {"data": [0], "next": "c1"}
    got = [b async for b in pages(paginator, Request("GET", API), script, first=first)]
    assert got == [first, {"data": [1], "next": None}]
    assert [r.params for r in script.sent] == [{"c": "c1"}]


# --- credentials stay home ------------------------------------------------------------------------


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    configure_engine(monkeypatch)  # *.test resolves to a public address
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize("other_origins", ["refuse", "strip"])
async def test_a_next_url_to_another_origin_goes_through_the_credential_guard(
    other_origins: Any,
) -> None:
    """A next URL is only another request on the source's client: one to another origin is
    refused while it would carry the credential, or sent without it (``strip``)."""
    seen: list[httpx.Request] = []

    def platform(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        nxt = "https://elsewhere.test/steal" if request.url.host == "api.vendor.test" else None
        return httpx.Response(200, json={"data": [1], "next": nxt})

    async with build_client(
        source_name="paginate",
        secrets=["s3cr3t-token"],
        headers={"Authorization": "Bearer s3cr3t-token"},
        transport=httpx.MockTransport(platform),
        credential_origins=("https://api.vendor.test",),
        other_origins=other_origins,
    ) as client:

        async def send(request: Request) -> Any:
            return (await client.request(request.method, request.url, params=request.params)).json()

        paginator = NextUrlPaginator(next_url="$.next")
        if other_origins == "refuse":
            with pytest.raises(ForeignOriginError):
                async for _ in pages(paginator, Request("GET", API), send):
                    pass
            assert [r.url.host for r in seen] == ["api.vendor.test"]
        else:
            async for _ in pages(paginator, Request("GET", API), send):
                pass
            assert [r.url.host for r in seen] == ["api.vendor.test", "elsewhere.test"]
            assert "authorization" not in seen[1].headers


async def test_a_caller_that_keeps_what_it_read_gets_warnings_instead_of_an_error() -> None:
    script = Script(lambda r, n: {"data": [n], "next": f"c{n}"})
    warnings: list[str] = []
    walk = pages(
        CursorPaginator(cursor="$.next", param="c"),
        Request("GET", API),
        script,
        count=count("data"),
        max_pages=3,
        warnings=warnings,
    )
    assert [b["data"] async for b in walk] == [[1], [2], [3]]
    assert warnings == ["the API's paging did not end after 3 pages: the rest was not read"]

    repeated = Script(lambda r, n: {"data": [n], "next": "same"})
    warnings.clear()
    walk = pages(
        CursorPaginator(cursor="$.next", param="c"),
        Request("GET", API),
        repeated,
        warnings=warnings,
    )
    assert len([b async for b in walk]) == 2
    assert warnings == ["the API sent cursor `same` twice: paging stopped there"]


def test_a_getter_reads_the_first_match_of_a_path_or_nothing() -> None:
    """What Mailchimp reads a report's nested figures with (``opens.unique_opens``)."""
    figure = getter("stats.member_count")
    assert figure({"stats": {"member_count": 5}}) == 5
    assert figure({"stats": None}) is None
    assert figure({"stats": [{"member_count": 5}]}) is None
    assert figure([]) is None
    assert getter(len)([1, 2]) == 2
