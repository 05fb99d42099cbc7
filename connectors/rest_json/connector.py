"""The ``rest_json`` connector: auth headers, the hooks, how an HTTP answer is classified, and
the records read off the pages (found by JSONPath, their days and figures summed per group)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
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
    as_number,
    basic_auth,
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
from connectors.series import BLANK_GROUP, Sums, iso_day, listed

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
        ),
    )

    @classmethod
    def http_options(cls, config: RestJsonConfig, credentials: RestJsonCredentials) -> HttpOptions:
        headers = dict(config.headers)
        if credentials.token is not None:
            headers["Authorization"] = f"Bearer {credentials.token}"
        elif credentials.username is not None:
            headers["Authorization"] = basic_auth(credentials.username, credentials.password or "")
        elif credentials.header_value is not None:
            headers[config.auth_header or DEFAULT_AUTH_HEADER] = credentials.header_value
        return HttpOptions(
            headers=headers,
            credential_origins=(origin_of(config.url),),
            other_origins="strip" if config.follow_other_origins else "refuse",
        )

    async def check(self) -> CheckResult:
        body = await self._send(self._request(Window(self.today, self.today)))
        kind = type(body).__name__ if not isinstance(body, dict) else "object"
        keys = sorted(body)[:20] if isinstance(body, dict) else []
        return CheckResult(
            f"The endpoint answered with a JSON {kind}" + (": " + ", ".join(keys) if keys else ""),
            details={"keys": keys},
        )

    async def validate_mapping_online(self, query: MetricQuery) -> None:
        params = query.params
        assert isinstance(params, RestJsonParams)
        body = await self._send(self._request(Window(self.today, self.today)))
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
        if queries:  # every query asks the same request: its pages are read once
            paginator = make_paginator(self.config.pagination)
            walk = pages(
                paginator,
                self._request(window),
                self._exchange,
                count=self._counter(queries),
                warnings=result.warnings,
            )
            bodies = [body async for body in walk]
            for query in queries:
                self._extract(query, bodies, window, result)
        return result

    @staticmethod
    def _extract(query: MetricQuery, pages: list[Any], window: Window, result: FetchResult) -> None:
        """A query's records in the pages, summed per (day, group)."""
        params = query.params
        assert isinstance(params, RestJsonParams)
        sums = Sums()
        bad: list[str] = []
        records = [r for body in pages for r in find_records(body, params.records)]
        for at, record in enumerate(records):
            day = parse_day(_first(params.date, record), params.date_format)
            if isinstance(day, str):
                bad.append(f"record {at}: {day}")
                continue
            if day not in window:
                continue
            raw = _first(params.value, record)
            value = as_number(raw)
            if value is None:
                what = "no value" if raw is None else f"`{str(raw)[:40]}` is not a number"
                bad.append(f"record {at}: {what} at `{params.value}`")
                continue
            group = None
            if params.group is not None:
                label = _first(params.group, record)
                group = BLANK_GROUP if label is None or label == "" else str(label)
            sums.add(day, value, group)
        result.values += sums.values(query.id)
        result.warnings += listed(bad, "records")

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


def find_records(body: Any, path: str) -> list[Any]:
    """The records at ``path``: the one list it names, or every node it matches."""
    found = compile_path(path).findall(body)
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
    day = iso_day(text) if _ISO_DAY.match(text) else None
    return day if day is not None else f"`{text[:40]}` is not an ISO date: set `date_format`"


def _first(path: str, record: Any) -> Any:
    found = compile_path(path).findall(record)
    return found[0] if found else None
