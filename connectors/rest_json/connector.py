"""Daily figures from any JSON endpoint: records found by JSONPath, summed per (day, group).

``{from}`` and ``{to}`` in the URL, the query values and the body's strings become the window's
ISO dates. The credentials (bearer, basic or a named header) ride on the engine's client, which
retries, rate-limits, redacts and refuses private addresses on every redirect hop, and go to the
origin of ``config.url`` only: a redirect or ``Link`` elsewhere is refused, or followed without
them when ``follow_other_origins`` says so. Pages are walked by :mod:`connectors.paginate`'s
paginators (cursor, page, offset, ``Link: rel="next"``; dlt's ``update_request`` /
``update_state``), which stop, with a warning, on a cursor or link seen twice or too many pages.
Every query asks the same request, so the pages are fetched once and each query's JSONPaths
(compiled when it is saved) read them; a record whose date or value can't be read is reported
by index in the warnings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Literal

import httpx
from pydantic import Field, field_validator, model_validator

from connectors.base import (
    CheckResult,
    Connector,
    ConnectorConfigError,
    FetchResult,
    ForeignOriginError,
    HttpOptions,
    MappingError,
    MetricQuery,
    RetriableError,
    Window,
    as_number,
    basic_auth,
    excerpt,
    origin_of,
)
from connectors.errors import Classifier, raise_failure
from connectors.models import (
    HttpAddress,
    JsonPath,
    Pagination,
    Params,
    Strict,
    StrptimeFormat,
    has_password,
)
from connectors.paginate import Reply, Request, SinglePage, compile_path, first, pages
from connectors.records import Fields, find_records, parse_day, reported, tally, value_metric

DEFAULT_AUTH_HEADER = "X-API-Key"


QueryValue = str | int | float | bool


#: Header names whose values are credentials: they belong in the encrypted credentials.
_CREDENTIAL_HEADER = re.compile(
    r"(?i)^(authorization|proxy-authorization|cookie)$|api[-_]?key|token|secret|passw|session"
)


class RestJsonConfig(Strict):
    url: HttpAddress = Field(
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
    follow_other_origins: bool = Field(
        False,
        description="The credentials go to the scheme, host and port of `url` only. A redirect "
        "or `Link` next page to another origin fails the run unless this is true; then it is "
        "followed without the credentials.",
    )

    @field_validator("url")
    @classmethod
    def _one_origin(cls, value: str) -> str:
        # The origin is where the credentials may go: it must be one, whatever the window.
        if re.match(r"^[^:]+://[^/?#]*[{}]", value):
            raise ValueError("`{from}` and `{to}` go in the path or query of `url`, not its host")
        try:
            origin_of(value)
        except (httpx.InvalidURL, UnicodeError):
            raise ValueError("`url` is not a valid address") from None
        if has_password(value):
            raise ValueError(
                "`url` must not contain a password (the config is stored and shown in clear):"
                " put `username` and `password` in the credentials"
            )
        return value

    @field_validator("headers")
    @classmethod
    def _no_credential_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name in headers:
            if _CREDENTIAL_HEADER.search(name):
                raise ValueError(
                    f"the header `{name}` carries a credential, and the config is stored and"
                    " shown in clear: put a bearer token in the credentials as `token`, or the"
                    " value in `header_value` with `auth_header` naming the header"
                )
        return headers

    @model_validator(mode="after")
    def _body_needs_post(self) -> RestJsonConfig:
        if self.body is not None and self.method != "POST":
            raise ValueError("a `body` is sent only with `method` POST")
        return self


class RestJsonCredentials(Strict):
    """One way in, or none for a public endpoint."""

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


class RestJsonParams(Params):
    records: JsonPath = Field("$", description="JSONPath of the list of records in the body.")
    date: JsonPath = Field(description="JSONPath of a record's date, e.g. `$.day`.")
    value: JsonPath = Field(description="JSONPath of a record's figure, e.g. `$.stats.signups`.")
    group: JsonPath | None = Field(None, description="JSONPath of a record's group label.")
    date_format: StrptimeFormat | None = Field(
        None, description="A strptime format; ISO dates otherwise."
    )


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
    metrics = value_metric(
        "A field of the endpoint's records, summed over the records of each day", RestJsonParams
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
        body = await self._today()
        kind = type(body).__name__ if not isinstance(body, dict) else "object"
        keys = sorted(body)[:20] if isinstance(body, dict) else []
        return CheckResult(
            f"The endpoint answered with a JSON {kind}" + (": " + ", ".join(keys) if keys else ""),
            details={"keys": keys},
        )

    async def validate_mapping_online(self, query: MetricQuery) -> None:
        params = query.params
        assert isinstance(params, RestJsonParams)
        body = await self._today()
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
            spec = self.config.pagination
            walk = pages(
                spec.paginator() if spec else SinglePage(),
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
        records = [r for body in pages for r in find_records(body, params.records)]
        bad: dict[int, str] = {}
        result.values += tally(
            query.id,
            enumerate(records),
            Fields(first, params.date, params.value, params.group),
            window,
            bad,
            read_day=partial(parse_day, date_format=params.date_format),
            read_value=partial(_figure, path=params.value),
        )
        result.warnings += reported(bad, "record", "records")

    async def _today(self) -> Any:
        return (await self._exchange(self._request(Window(self.today, self.today)))).body

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
        raise_failure(_ERRORS, self.http, response)
        try:
            return Reply(response.json(), response)
        except ValueError:
            raise self._not_json(response) from None

    def _not_json(self, response: httpx.Response) -> Exception:
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        try:
            began = excerpt(response.text, self.http.redact, _EXCERPT) or "an empty body"
        except (UnicodeDecodeError, LookupError):
            began = "(undecodable bytes)"
        head = began.lstrip().lower()
        if "html" in kind or head.startswith(("<!doctype html", "<html")):
            return ConnectorConfigError(
                f"the URL answered {response.status_code} with a web page ({kind}), not JSON: "
                f"check `url`; it began: {began}"
            )
        return RetriableError(
            f"the API answered {response.status_code} with something that isn't JSON "
            f"({kind}): {began}"
        )


def _substitute(value: Any, window: Window) -> Any:
    if isinstance(value, str):
        return value.replace("{from}", str(window.start)).replace("{to}", str(window.end))
    if isinstance(value, dict):
        return {k: _substitute(v, window) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, window) for v in value]
    return value


def _text(value: QueryValue) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _figure(raw: Any, path: str) -> float | str:
    value = as_number(raw)
    if value is None:
        what = "no value" if raw is None else f"`{str(raw)[:40]}` is not a number"
        return f"{what} at `{path}`"
    return value
