"""Paginators: how a connector walks a platform's pages, written once for every connector.

dlt's shape (``dlt/sources/helpers/rest_client/paginators.py``): a small object that, told each
page, says whether there is another (``has_next``) and turns the request just sent into the next
one (``update_request``). :func:`pages` drives one through a connector's own ``send``, so every
page goes out on the engine's client (its retries, pacing, redaction, and the credential guard
that keeps the credentials to their origin: a next URL the platform hands back is just another
request on that client, checked like the first).

The kinds platforms use:

- :class:`CursorPaginator`: an opaque cursor read from the body and sent back (HubSpot's
  ``paging.next.after``);
- :class:`PageNumberPaginator`: ``page=1, 2, ...`` until a short page;
- :class:`OffsetPaginator`: ``offset``/``limit`` (Mailchimp's ``count``/``offset`` up to
  ``total_items``, Search Console's ``startRow``);
- :class:`LinkHeaderPaginator`: RFC 8288 ``Link: <...>; rel="next"``;
- :class:`NextUrlPaginator`: a next URL in the body (Meta's ``paging.next``, Salesforce's
  ``nextRecordsUrl``, any JSONPath).

Every paginator ends: on the platform saying so, on an empty page, and on a cursor or next
request it has already sent (with a :attr:`Paginator.warning`); :func:`pages` raises
:class:`TooManyPages` past ``max_pages`` as the last safety net.
"""

from __future__ import annotations

import functools
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple

import httpx
import jsonpath

from connectors.base import RetriableError, as_number

#: Pages one walk may take before paging is called broken.
MAX_PAGES = 1000

#: Where a paginator writes what it sends: the query string or the JSON body.
Into = Literal["query", "body"]
#: A value in a page: a JSONPath (``$.paging.next.after``) or a function of the body.
Getter = str | Callable[[Any], Any]


class TooManyPages(RetriableError):
    """Paging went on past its bound: the platform's pages don't end where they should."""


@dataclass(frozen=True)
class Request:
    """One request of a walk; paginators derive the next one with :func:`dataclasses.replace`."""

    method: str
    url: str
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None

    def key(self) -> str:
        return json.dumps([self.method, self.url, self.params, self.body], sort_keys=True)


class Reply(NamedTuple):
    """A page with the response it came in, for paginators that read headers."""

    body: Any
    response: httpx.Response | None = None


@functools.lru_cache(maxsize=256)
def compile_path(path: str) -> jsonpath.JSONPath | jsonpath.CompoundJSONPath:
    """A JSONPath, lenient as people write them: ``data.items`` and ``@.data`` mean ``$.data``.

    Compiled once per path (a mapping's few paths are read off every record of a fetch)."""
    text = path.strip()
    if text.startswith("@"):
        text = "$" + text[1:]
    elif not text.startswith("$"):
        text = "$." + text if not text.startswith("[") else "$" + text
    return jsonpath.compile(text)


def getter(get: Getter) -> Callable[[Any], Any]:
    """What reads one value off a body: ``get`` itself, or the first match of its JSONPath
    (``stats.member_count``), None when nothing matches."""
    if callable(get):
        return get
    compile_path(get)  # a path that isn't one fails here, as the paginator is built
    return functools.partial(first, path=get)


def first(body: Any, path: str) -> Any:
    """What ``path`` finds first in ``body`` (a page, a record), or None."""
    found = compile_path(path).findall(body)
    return found[0] if found else None


def _put(request: Request, into: Into, values: dict[str, Any]) -> Request:
    if into == "body":
        body = request.body if isinstance(request.body, dict) else {}
        return replace(request, body={**body, **values})
    return replace(request, params={**request.params, **{k: str(v) for k, v in values.items()}})


@dataclass(kw_only=True)
class Paginator(ABC):
    """Told each page, says whether there is another and how to ask it."""

    has_next: bool = field(default=False, init=False)
    #: Why paging stopped before the platform said it was done, for the run's warnings.
    warning: str | None = field(default=None, init=False)

    def init_request(self, request: Request) -> Request:
        """The first request: the paging fields it starts with."""
        return request

    @abstractmethod
    def update_state(self, reply: Reply, records: int | None) -> None:
        """Read the page just received; ``records`` is how many it held, when known."""

    @abstractmethod
    def update_request(self, request: Request) -> Request:
        """The request for the next page, from the one just sent."""

    def _stop(self, warning: str | None = None) -> None:
        self.has_next = False
        self.warning = warning


@dataclass(kw_only=True)
class SinglePage(Paginator):
    """An endpoint that answers whole."""

    def update_state(self, reply: Reply, records: int | None) -> None:
        self._stop()

    def update_request(self, request: Request) -> Request:
        return request


@dataclass(kw_only=True)
class CursorPaginator(Paginator):
    """An opaque cursor from each page, sent back as ``param`` until none comes."""

    cursor: Getter
    param: str
    into: Into = "query"
    _get: Callable[[Any], Any] = field(init=False, repr=False)
    _next: str | None = field(default=None, init=False)
    _seen: set[str] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self._get = getter(self.cursor)

    def update_state(self, reply: Reply, records: int | None) -> None:
        nxt = self._get(reply.body)
        if nxt is None or nxt == "" or isinstance(nxt, dict | list | bool) or records == 0:
            return self._stop()
        cursor = str(nxt)
        if cursor in self._seen:
            return self._stop(f"the API sent cursor `{cursor[:40]}` twice: paging stopped there")
        self._seen.add(cursor)
        self._next, self.has_next = cursor, True

    def update_request(self, request: Request) -> Request:
        return request if self._next is None else _put(request, self.into, {self.param: self._next})


@dataclass(kw_only=True)
class PageNumberPaginator(Paginator):
    """``param`` counts pages from ``first_page``; a page shorter than ``size`` is the last."""

    param: str = "page"
    size: int
    size_param: str | None = None
    first_page: int = 1
    into: Into = "query"
    _page: int = field(default=0, init=False)

    def init_request(self, request: Request) -> Request:
        self._page = self.first_page
        return self.update_request(request)

    def update_state(self, reply: Reply, records: int | None) -> None:
        self._page += 1
        self.has_next = _count(records, self) >= max(self.size, 1)

    def update_request(self, request: Request) -> Request:
        values: dict[str, Any] = {self.param: self._page}
        if self.size_param:
            values[self.size_param] = self.size
        return _put(request, self.into, values)


@dataclass(kw_only=True)
class OffsetPaginator(Paginator):
    """``offset_param`` moves on by the records read; the end is ``total`` when the platform
    says it, else a page shorter than ``limit``. ``limit_param=None`` leaves the page size to
    the request as built (Search Console's ``rowLimit``)."""

    limit: int
    offset_param: str = "offset"
    limit_param: str | None = "limit"
    total: Getter | None = None
    offset: int = 0
    into: Into = "query"
    _total: Callable[[Any], Any] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._total = None if self.total is None else getter(self.total)

    def init_request(self, request: Request) -> Request:
        return self.update_request(request)

    def update_state(self, reply: Reply, records: int | None) -> None:
        read = _count(records, self)
        self.offset += read
        total = None if self._total is None else as_number(self._total(reply.body))
        self.has_next = read > 0 and (
            self.offset < total if total is not None else read >= max(self.limit, 1)
        )

    def update_request(self, request: Request) -> Request:
        values: dict[str, Any] = {self.offset_param: self.offset}
        if self.limit_param:
            values[self.limit_param] = self.limit
        return _put(request, self.into, values)


#: Turns a next URL into the request for it, or ``None`` when it leads nowhere wanted.
Follow = Callable[[Request, httpx.URL], Request | None]


def _as_is(request: Request, url: httpx.URL) -> Request:
    # A next URL carries its own query string.
    return replace(request, url=str(url), params={})


@dataclass(kw_only=True)
class _UrlPaginator(Paginator):
    """Follows a URL the page points to, never the same request twice."""

    follow: Follow = _as_is
    _pending: Request | None = field(default=None, init=False)
    _last: Request | None = field(default=None, init=False, repr=False)
    _seen: set[str] = field(default_factory=set, init=False, repr=False)

    def init_request(self, request: Request) -> Request:
        self._seen.add(request.key())
        self._last = request
        return request

    def _to(self, link: Any, base: httpx.URL | None, records: int | None) -> None:
        if not isinstance(link, str) or not link or records == 0 or self._last is None:
            return self._stop()
        url = base.join(link) if base is not None else httpx.URL(link)
        nxt = self.follow(self._last, url)
        if nxt is None:
            return self._stop()
        if nxt.key() in self._seen:
            return self._stop("the API's next link pointed back to a page already read: stopped")
        self._seen.add(nxt.key())
        self._pending, self.has_next = nxt, True

    def update_request(self, request: Request) -> Request:
        self._last = self._pending or request
        return self._last


@dataclass(kw_only=True)
class LinkHeaderPaginator(_UrlPaginator):
    """RFC 8288: the ``Link`` header's ``rel="next"`` target, resolved against the page's URL."""

    rel: str = "next"

    def update_state(self, reply: Reply, records: int | None) -> None:
        if reply.response is None:
            raise TypeError("a Link header paginator reads the response: send a Reply")
        link = reply.response.links.get(self.rel, {}).get("url")
        self._to(link, reply.response.url, records)


@dataclass(kw_only=True)
class NextUrlPaginator(_UrlPaginator):
    """A next URL in the body; relative ones resolve against the page's URL when it is known,
    else against the client's base URL."""

    next_url: Getter
    _get: Callable[[Any], Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._get = getter(self.next_url)

    def update_state(self, reply: Reply, records: int | None) -> None:
        base = reply.response.url if reply.response is not None else None
        self._to(self._get(reply.body), base, records)


def _count(records: int | None, paginator: Paginator) -> int:
    if records is None:
        raise TypeError(f"{type(paginator).__name__} needs each page's record count")
    return records


_UNREAD: Any = object()


async def pages(
    paginator: Paginator,
    request: Request,
    send: Callable[[Request], Awaitable[Any]],
    *,
    count: Callable[[Any], int] | None = None,
    max_pages: int = MAX_PAGES,
    what: str = "the API's",
    first: Any = _UNREAD,
    warnings: list[str] | None = None,
) -> AsyncIterator[Any]:
    """Every page's body, in order, until ``paginator`` says there is no other.

    ``send`` asks one request and answers its body (or a :class:`Reply` when the paginator reads
    headers); ``count`` says how many records a body holds; ``first`` is a first page already
    read for ``request``. Past ``max_pages`` pages it raises :class:`TooManyPages`, unless the
    caller can keep what was read and passes ``warnings``: then the walk stops there, and says
    so in them, as it says why the paginator stopped short.
    """
    request = paginator.init_request(request)
    read = 0
    while True:
        got = first if read == 0 and first is not _UNREAD else await send(request)
        reply = got if isinstance(got, Reply) else Reply(got)
        read += 1
        paginator.update_state(reply, None if count is None else count(reply.body))
        yield reply.body
        if not paginator.has_next:
            if paginator.warning and warnings is not None:
                warnings.append(paginator.warning)
            return
        if read >= max_pages:
            stopped = f"{what} paging did not end after {max_pages} pages"
            if warnings is None:
                raise TooManyPages(stopped)
            warnings.append(f"{stopped}: the rest was not read")
            return
        request = paginator.update_request(request)
