"""The request one fetch sends, and the small paginator objects that walk its pages.

Kept apart from the connector so each paging style (cursor, page, offset, Link header) reads as
one object with ``update_state`` / ``update_request`` and can be followed without the HTTP code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import httpx

from connectors.base import Window
from connectors.rest_json.models import (
    CursorPagination,
    LinkHeaderPagination,
    OffsetPagination,
    PagePagination,
    Pagination,
    QueryValue,
    _compile,
)

#: Pages one request may take before paging is called broken and stopped.
MAX_PAGES = 1000


# --- requests and pagination ---------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None

    def key(self) -> str:
        return json.dumps([self.method, self.url, self.params, self.body], sort_keys=True)


class Paginator(Protocol):
    """dlt's paginator: told each page, it says whether there is another and how to ask it."""

    has_next: bool
    warning: str | None

    def update_state(self, response: httpx.Response, body: Any, records: int) -> None: ...

    def update_request(self, request: Request) -> Request: ...


@dataclass
class SinglePage:
    has_next: bool = False
    warning: str | None = None

    def update_state(self, response: httpx.Response, body: Any, records: int) -> None:
        self.has_next = False

    def update_request(self, request: Request) -> Request:
        return request


@dataclass
class CursorPaginator:
    spec: CursorPagination
    cursor: str | None = None
    has_next: bool = False
    warning: str | None = None
    seen: set[str] = field(default_factory=set)

    def update_state(self, response: httpx.Response, body: Any, records: int) -> None:
        found = _compile(self.spec.next_cursor_path).findall(body)
        nxt = found[0] if found else None
        if nxt is None or nxt == "" or isinstance(nxt, (dict, list, bool)) or records == 0:
            self.has_next = False
            return
        cursor = str(nxt)
        if cursor in self.seen:
            self.warning = f"the API sent cursor `{cursor[:40]}` twice: paging stopped there"
            self.has_next = False
            return
        self.seen.add(cursor)
        self.cursor, self.has_next = cursor, True

    def update_request(self, request: Request) -> Request:
        if self.cursor is None:
            return request
        if self.spec.cursor_in == "body":
            body = request.body if isinstance(request.body, dict) else {}
            return replace(request, body={**body, self.spec.cursor_param: self.cursor})
        return replace(request, params={**request.params, self.spec.cursor_param: self.cursor})


@dataclass
class PagePaginator:
    spec: PagePagination
    page: int = -1
    has_next: bool = False
    warning: str | None = None

    def update_state(self, response: httpx.Response, body: Any, records: int) -> None:
        self.page = (self.spec.first_page if self.page < 0 else self.page) + 1
        self.has_next = records >= self.spec.size

    def update_request(self, request: Request) -> Request:
        params = {**request.params, self.spec.page_param: str(max(self.page, self.spec.first_page))}
        if self.spec.size_param:
            params[self.spec.size_param] = str(self.spec.size)
        return replace(request, params=params)


@dataclass
class OffsetPaginator:
    spec: OffsetPagination
    offset: int = 0
    has_next: bool = False
    warning: str | None = None

    def update_state(self, response: httpx.Response, body: Any, records: int) -> None:
        self.offset += records
        self.has_next = records >= self.spec.limit

    def update_request(self, request: Request) -> Request:
        params = {
            **request.params,
            self.spec.offset_param: str(self.offset),
            self.spec.limit_param: str(self.spec.limit),
        }
        return replace(request, params=params)


@dataclass
class LinkHeaderPaginator:
    next_url: str | None = None
    has_next: bool = False
    warning: str | None = None
    seen: set[str] = field(default_factory=set)

    def update_state(self, response: httpx.Response, body: Any, records: int) -> None:
        link = response.links.get("next", {}).get("url")
        if not link or records == 0:
            self.has_next = False
            return
        url = str(response.url.join(link))
        if url in self.seen:
            self.warning = "the API's Link header pointed back to a page already read: stopped"
            self.has_next = False
            return
        self.seen.add(url)
        self.next_url, self.has_next = url, True

    def update_request(self, request: Request) -> Request:
        # The next link carries its own query string.
        return request if self.next_url is None else replace(request, url=self.next_url, params={})


def make_paginator(spec: Pagination | None) -> Paginator:
    if isinstance(spec, CursorPagination):
        return CursorPaginator(spec)
    if isinstance(spec, PagePagination):
        return PagePaginator(spec)
    if isinstance(spec, OffsetPagination):
        return OffsetPaginator(spec)
    if isinstance(spec, LinkHeaderPagination):
        return LinkHeaderPaginator()
    return SinglePage()


def _substitute(value: Any, window: Window) -> Any:
    if isinstance(value, str):
        return value.replace("{from}", window.start.isoformat()).replace(
            "{to}", window.end.isoformat()
        )
    if isinstance(value, dict):
        return {k: _substitute(v, window) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, window) for v in value]
    return value


def _text(value: QueryValue) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
