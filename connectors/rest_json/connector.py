"""The ``rest_json`` connector: auth headers, the hooks, and how an HTTP answer is classified.

It puts the models, the shared paginators and record reading together; everything that touches
``self.http`` lives here.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from connectors.base import (
    CheckResult,
    Connector,
    ConnectorConfigError,
    FetchResult,
    ForeignOriginError,
    HttpOptions,
    MappingError,
    MetricQuery,
    MetricSpec,
    RetriableError,
    Window,
    excerpt,
    origin_of,
    status_failure,
)
from connectors.errors import Classifier
from connectors.paginate import (
    CursorPaginator,
    LinkHeaderPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    Paginator,
    Reply,
    Request,
    SinglePage,
    compile_path,
    pages,
)
from connectors.rest_json.models import (
    DEFAULT_AUTH_HEADER,
    CursorPagination,
    LinkHeaderPagination,
    OffsetPagination,
    PagePagination,
    Pagination,
    QueryValue,
    RestJsonConfig,
    RestJsonCredentials,
    RestJsonParams,
)
from connectors.rest_json.records import extract, find_records

_EXCERPT = 200
_ERRORS = Classifier(
    "the API",
    {
        (401, 403): "the API refused the credentials ({status}): check `token`, `username`/"
        "`password` or `header_value`: {said}",
        (404, 410): "nothing at the URL ({status}): check `url`: {said}",
        "retriable": "{platform} is having trouble: {said}",
    },
)


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
        return HttpOptions(
            headers=headers,
            credential_origins=(origin_of(config.url),),
            other_origins="strip" if config.follow_other_origins else "refuse",
        )

    async def check(self) -> CheckResult:
        today = self.today
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
        today = self.today
        body = await self._send(self._request(Window(today, today)))
        records = find_records(body, params.records)
        if not records:
            if not compile_path(params.records).findall(body):
                raise MappingError("params.records", f"`{params.records}` finds nothing")
            return
        for part, path in (("params.date", params.date), ("params.value", params.value)):
            if not compile_path(path).findall(records[0]):
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
        walk = pages(paginator, first, self._exchange, count=count, warnings=warnings)
        return [body async for body in walk]

    async def _send(self, request: Request) -> Any:
        return (await self._exchange(request)).body

    async def _exchange(self, request: Request) -> Reply:
        kwargs: dict[str, Any] = {"params": request.params or None}
        if request.method == "POST" and request.body is not None:
            kwargs["json"] = request.body
        try:
            response = await self.http.request(request.method, request.url, **kwargs)
        except ForeignOriginError as exc:
            raise ForeignOriginError(
                f"{exc.message}; if the API really answers from {exc.origin}, set "
                "`follow_other_origins` to true to follow it there without the credentials",
                exc.origin,
            ) from None
        if not response.is_success:
            said, wait = status_failure(self.http, response)
            raise _ERRORS(response, self.http.redact, said=said, wait=wait) from None
        try:
            return Reply(response.json(), response)
        except ValueError:
            raise self._not_json(response) from None

    def _excerpt(self, response: httpx.Response) -> str:
        try:
            return excerpt(response.text, self.http.redact, _EXCERPT)
        except (UnicodeDecodeError, LookupError):
            return "(undecodable bytes)"

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


def make_paginator(spec: Pagination | None) -> Paginator:
    """The shared paginator a source's ``pagination`` config describes."""
    if isinstance(spec, CursorPagination):
        return CursorPaginator(
            cursor=spec.next_cursor_path, param=spec.cursor_param, into=spec.cursor_in
        )
    if isinstance(spec, PagePagination):
        return PageNumberPaginator(
            param=spec.page_param,
            size=spec.size,
            size_param=spec.size_param,
            first_page=spec.first_page,
        )
    if isinstance(spec, OffsetPagination):
        return OffsetPaginator(
            offset_param=spec.offset_param, limit_param=spec.limit_param, limit=spec.limit
        )
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
