"""Daily figures from any JSON endpoint: records found by JSONPath, summed per (day, group).

The request is ``config.method`` ``config.url`` with ``config.query`` and (for POST)
``config.body``; ``{from}`` and ``{to}`` in the URL, the query values and the body's string values
become the window's ISO dates. Authentication is a bearer ``token``, ``username`` + ``password``
(basic) or ``header_value`` sent in the header named by ``config.auth_header``; all of it rides
on the engine's client, which retries, rate-limits, redacts and refuses private addresses (on
every redirect hop too).

Pages are followed with one small paginator object (dlt's ``update_request`` /
``update_state``): cursor, page number, offset or the ``Link: rel="next"`` header. Paging stops on
an empty page, a missing cursor or next link, or a page shorter than the size asked; a cursor or
link seen twice, or more than :data:`MAX_PAGES` pages, stops it too, with a warning.

Every query of a fetch asks the same request, so the pages are fetched once and each query's
params (JSONPaths: ``records`` from the body, ``date``, ``value`` and ``group`` from a record) are
applied to them. A record whose date or value can't be read is reported by index in the warnings.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Annotated, Any, Literal, Protocol

import httpx
import jsonpath
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.base import (
    CheckResult,
    Connector,
    ConnectorAuthError,
    ConnectorConfigError,
    DailyValue,
    FetchResult,
    HttpOptions,
    MappingError,
    MetricQuery,
    MetricSpec,
    RateLimited,
    RetriableError,
    Window,
)

#: Pages one request may take before paging is called broken and stopped.
MAX_PAGES = 1000
#: Bad records listed one by one in the warnings; the rest are counted.
MAX_LISTED_BAD_RECORDS = 20
#: The group label of a record without a group.
BLANK_GROUP = "(blank)"
DEFAULT_AUTH_HEADER = "X-API-Key"
_EXCERPT = 200


def _compile(path: str) -> jsonpath.JSONPath | jsonpath.CompoundJSONPath:
    text = path.strip()
    if text.startswith("@"):
        text = "$" + text[1:]
    elif not text.startswith("$"):
        text = "$." + text if not text.startswith("[") else "$" + text
    return jsonpath.compile(text)


def _check_path(value: str) -> str:
    try:
        _compile(value)
    except jsonpath.JSONPathError as exc:
        raise ValueError(f"`{value}` is not a JSONPath: {str(exc).splitlines()[0]}") from None
    return value


# --- config --------------------------------------------------------------------------------------


class CursorPagination(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["cursor"]
    cursor_param: str = Field(min_length=1, description="The query (or body) field of the cursor.")
    next_cursor_path: str = Field(description="JSONPath of the next cursor in the body.")
    cursor_in: Literal["query", "body"] = Field(
        "query", description="Where the cursor goes: the query string or the JSON body."
    )

    _path = field_validator("next_cursor_path")(_check_path)


class PagePagination(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["page"]
    page_param: str = Field("page", min_length=1)
    size_param: str | None = Field("per_page", description="Omitted from the request when null.")
    size: int = Field(100, ge=1, le=10_000)
    first_page: int = Field(1, ge=0)


class OffsetPagination(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["offset"]
    offset_param: str = Field("offset", min_length=1)
    limit_param: str = Field("limit", min_length=1)
    limit: int = Field(100, ge=1, le=10_000)


class LinkHeaderPagination(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["link_header"]


Pagination = Annotated[
    CursorPagination | PagePagination | OffsetPagination | LinkHeaderPagination,
    Field(discriminator="type"),
]
QueryValue = str | int | float | bool


class RestJsonConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        description="The endpoint, e.g. https://api.example.com/stats?since={from}&until={to}."
    )
    method: Literal["GET", "POST"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, QueryValue] = Field(
        default_factory=dict, description="Query parameters; `{from}`/`{to}` are substituted."
    )
    body: Any = Field(None, description="A JSON body for POST; `{from}`/`{to}` substituted.")
    pagination: Pagination | None = None
    auth_header: str | None = Field(
        None, description=f"The header `header_value` is sent in ({DEFAULT_AUTH_HEADER} if unset)."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"(?i)^https?://[^/\s]+", value.strip()):
            raise ValueError("`url` must be an http:// or https:// address")
        return value.strip()

    @model_validator(mode="after")
    def _body_needs_post(self) -> RestJsonConfig:
        if self.body is not None and self.method != "POST":
            raise ValueError("a `body` is sent only with `method` POST")
        return self


class RestJsonCredentials(BaseModel):
    """One way in, or none for a public endpoint."""

    model_config = ConfigDict(extra="forbid")

    token: str | None = Field(None, description="Sent as `Authorization: Bearer <token>`.")
    username: str | None = None
    password: str | None = None
    header_value: str | None = Field(None, description="Sent in the `auth_header` header.")

    @model_validator(mode="after")
    def _one_way_in(self) -> RestJsonCredentials:
        if (self.username is None) != (self.password is None):
            raise ValueError("basic authentication needs both `username` and `password`")
        ways = [self.token is not None, self.username is not None, self.header_value is not None]
        if sum(ways) > 1:
            raise ValueError("give one of `token`, `username`+`password` or `header_value`")
        return self


class RestJsonParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    records: str = Field("$", description="JSONPath of the list of records in the body.")
    date: str = Field(description="JSONPath of a record's date, e.g. `$.day`.")
    value: str = Field(description="JSONPath of a record's figure, e.g. `$.stats.signups`.")
    group: str | None = Field(None, description="JSONPath of a record's group label.")
    date_format: str | None = Field(None, description="A strptime format; ISO dates otherwise.")

    _paths = field_validator("records", "date", "value", "group")(
        lambda v: v if v is None else _check_path(v)
    )

    @field_validator("date_format")
    @classmethod
    def _strptime_format(cls, value: str | None) -> str | None:
        if value is not None and "%" not in value:
            raise ValueError("`date_format` is a strptime format, e.g. `%d/%m/%Y`")
        return value


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


# --- reading records -----------------------------------------------------------------------------


def find_records(body: Any, path: str) -> list[Any]:
    """The records at ``path``: the one list it names, or every node it matches."""
    found = _compile(path).findall(body)
    if len(found) == 1 and isinstance(found[0], list):
        return list(found[0])
    return list(found)


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_day(raw: Any, date_format: str | None) -> date | str:
    """The day, or the reason it isn't one."""
    if raw is None:
        return "no date"
    text = str(raw).strip()
    if date_format is not None:
        try:
            return datetime.strptime(text, date_format).date()  # noqa: DTZ007 - a day
        except ValueError:
            return f"`{text[:40]}` does not match `{date_format}`"
    if _ISO_DAY.match(text):
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            pass
    return f"`{text[:40]}` is not an ISO date: set `date_format`"


def parse_value(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw.strip())
        except ValueError:
            return None
    return None


def _first(path: str, record: Any) -> Any:
    found = _compile(path).findall(record)
    return found[0] if found else None


def extract(
    query: MetricQuery, pages: list[Any], window: Window
) -> tuple[list[DailyValue], list[str]]:
    params = query.params
    assert isinstance(params, RestJsonParams)
    sums: dict[tuple[date, str | None], float] = {}
    bad: list[str] = []
    index = 0
    for body in pages:
        for record in find_records(body, params.records):
            at = index
            index += 1
            day = parse_day(_first(params.date, record), params.date_format)
            if isinstance(day, str):
                bad.append(f"record {at}: {day}")
                continue
            if day not in window:
                continue
            raw = _first(params.value, record)
            value = parse_value(raw)
            if value is None:
                what = "no value" if raw is None else f"`{str(raw)[:40]}` is not a number"
                bad.append(f"record {at}: {what} at `{params.value}`")
                continue
            group = None
            if params.group is not None:
                label = _first(params.group, record)
                group = BLANK_GROUP if label is None or label == "" else str(label)
            sums[day, group] = sums.get((day, group), 0.0) + value
    values = [
        DailyValue(query.id, day, total, group)
        for (day, group), total in sorted(sums.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
    ]
    warnings = bad[:MAX_LISTED_BAD_RECORDS]
    if len(bad) > MAX_LISTED_BAD_RECORDS:
        warnings.append(f"and {len(bad) - MAX_LISTED_BAD_RECORDS} more records that can't be read")
    return values, warnings


# --- the connector -------------------------------------------------------------------------------


class RestJsonConnector(Connector[RestJsonConfig, RestJsonCredentials]):
    """One metric, ``value``: a JSON field of the endpoint's records, summed per day (and group)."""

    key = "rest_json"
    name = "JSON API"
    category = "generic"
    config_model = RestJsonConfig
    credentials_model = RestJsonCredentials
    metrics = (
        MetricSpec(
            name="value",
            description="A field of the endpoint's records, summed over the records of each day",
            unit="value",
            params_model=RestJsonParams,
            history="daily",
            additive=True,
        ),
    )

    @classmethod
    def http_options(cls, config: RestJsonConfig, credentials: RestJsonCredentials) -> HttpOptions:
        headers = dict(config.headers)
        if credentials.token is not None:
            headers["Authorization"] = f"Bearer {credentials.token}"
        elif credentials.username is not None:
            pair = f"{credentials.username}:{credentials.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        elif credentials.header_value is not None:
            headers[config.auth_header or DEFAULT_AUTH_HEADER] = credentials.header_value
        return HttpOptions(headers=headers)

    async def check(self) -> CheckResult:
        today = datetime.now(self.zone).date()
        body = await self._send(self._request(Window(today, today)))
        kind = type(body).__name__ if not isinstance(body, dict) else "object"
        keys = sorted(body)[:20] if isinstance(body, dict) else []
        return CheckResult(
            f"The endpoint answered with a JSON {kind}" + (": " + ", ".join(keys) if keys else ""),
            details={"keys": keys},
        )

    async def validate_mapping_online(self, query: MetricQuery) -> None:
        params = query.params
        assert isinstance(params, RestJsonParams)
        today = datetime.now(self.zone).date()
        body = await self._send(self._request(Window(today, today)))
        records = find_records(body, params.records)
        if not records:
            if not _compile(params.records).findall(body):
                raise MappingError("params.records", f"`{params.records}` finds nothing")
            return
        for part, path in (("params.date", params.date), ("params.value", params.value)):
            if not _compile(path).findall(records[0]):
                raise MappingError(part, f"`{path}` finds nothing in the first record")

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult()
        fetched: dict[str, list[Any]] = {}
        for query in queries:
            request = self._request(window)
            pages = fetched.get(request.key())
            if pages is None:
                pages = fetched[request.key()] = await self._pages(
                    request, self._counter(queries), result.warnings
                )
            values, warnings = extract(query, pages, window)
            result.values += values
            result.warnings += warnings
        return result

    # --- HTTP ------------------------------------------------------------------------------------

    def _request(self, window: Window) -> Request:
        c = self.config
        return Request(
            c.method,
            _substitute(c.url, window),
            {k: _substitute(_text(v), window) for k, v in c.query.items()},
            _substitute(c.body, window),
        )

    @staticmethod
    def _counter(queries: Sequence[MetricQuery]) -> Callable[[Any], int]:
        paths = {q.params.records for q in queries if isinstance(q.params, RestJsonParams)} or {"$"}
        return lambda body: max(len(find_records(body, p)) for p in paths)

    async def _pages(
        self, first: Request, count: Callable[[Any], int], warnings: list[str]
    ) -> list[Any]:
        paginator = make_paginator(self.config.pagination)
        pages: list[Any] = []
        while True:
            request = paginator.update_request(first)
            response, body = await self._exchange(request)
            pages.append(body)
            paginator.update_state(response, body, count(body))
            if paginator.warning:
                warnings.append(paginator.warning)
            if not paginator.has_next:
                return pages
            if len(pages) >= MAX_PAGES:
                warnings.append(f"paging stopped after {MAX_PAGES} pages: the rest was not read")
                return pages

    async def _send(self, request: Request) -> Any:
        return (await self._exchange(request))[1]

    async def _exchange(self, request: Request) -> tuple[httpx.Response, Any]:
        kwargs: dict[str, Any] = {"params": request.params or None}
        if request.method == "POST" and request.body is not None:
            kwargs["json"] = request.body
        response = await self.http.request(request.method, request.url, **kwargs)
        if not response.is_success:
            message, retry_after = f"HTTP {response.status_code}", None
            try:
                # The engine's client raises its own redacted HttpStatusError, which this
                # package can't import (connectors don't depend on app/): read it by duck typing.
                self.http.raise_for_status(response)  # type: ignore[attr-defined]
            except Exception as exc:
                message = str(getattr(exc, "message", exc))
                retry_after = getattr(exc, "retry_after", None)
            raise self._error(response.status_code, message, retry_after) from None
        try:
            return response, response.json()
        except ValueError:
            raise self._not_json(response) from None

    def _excerpt(self, response: httpx.Response) -> str:
        try:
            text = response.text.strip().replace("\n", " ")[:_EXCERPT]
        except (UnicodeDecodeError, LookupError):
            text = "(undecodable bytes)"
        redactor = getattr(self.http, "redactor", None)
        return str(redactor.redact(text)) if redactor is not None else text

    def _not_json(self, response: httpx.Response) -> Exception:
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        excerpt = self._excerpt(response) or "an empty body"
        head = excerpt.lstrip().lower()
        if "html" in kind or head.startswith(("<!doctype html", "<html")):
            return ConnectorConfigError(
                f"the URL answered {response.status_code} with a web page ({kind}), not JSON: "
                f"check `url`; it began: {excerpt}"
            )
        return RetriableError(
            f"the API answered {response.status_code} with something that isn't JSON "
            f"({kind}): {excerpt}"
        )

    def _error(self, status: int, message: str, retry_after: float | None) -> Exception:
        if status in (401, 403):
            return ConnectorAuthError(
                f"the API refused the credentials ({status}): check `token`, `username`/"
                f"`password` or `header_value`: {message}"
            )
        if status in (404, 410):
            return ConnectorConfigError(f"nothing at the URL ({status}): check `url`: {message}")
        if status == 429:
            return RateLimited(f"the API asks to slow down: {message}", retry_after)
        if status >= 500 or status == 408:
            return RetriableError(f"the API is having trouble: {message}")
        return ConnectorConfigError(f"the API refused the request ({status}): {message}")
