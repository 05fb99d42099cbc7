"""What a ``rest_json`` source is told: the endpoint, its paging and auth, and the JSONPaths.

Pydantic checks every JSONPath when a source or mapping is saved, with the compiler that paging
(:mod:`connectors.paginate`) and record reading use.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import httpx
import jsonpath
from pydantic import AfterValidator, Field, field_validator, model_validator

from connectors.base import origin_of
from connectors.models import HttpAddress, Params, Strict, StrptimeFormat, has_password
from connectors.paginate import compile_path

DEFAULT_AUTH_HEADER = "X-API-Key"


def _check_path(value: str) -> str:
    try:
        compile_path(value)
    except jsonpath.JSONPathError as exc:
        raise ValueError(f"`{value}` is not a JSONPath: {str(exc).splitlines()[0]}") from None
    return value


#: A JSONPath, compiled when a source or mapping is saved so a typo is refused there.
JsonPath = Annotated[str, AfterValidator(_check_path)]


# --- config --------------------------------------------------------------------------------------


class CursorPagination(Strict):
    type: Literal["cursor"]
    cursor_param: str = Field(min_length=1, description="The query (or body) field of the cursor.")
    next_cursor_path: JsonPath = Field(description="JSONPath of the next cursor in the body.")
    cursor_in: Literal["query", "body"] = Field(
        "query", description="Where the cursor goes: the query string or the JSON body."
    )


class PagePagination(Strict):
    type: Literal["page"]
    page_param: str = Field("page", min_length=1)
    size_param: str | None = Field("per_page", description="Omitted from the request when null.")
    size: int = Field(100, ge=1, le=10_000)
    first_page: int = Field(1, ge=0)


class OffsetPagination(Strict):
    type: Literal["offset"]
    offset_param: str = Field("offset", min_length=1)
    limit_param: str = Field("limit", min_length=1)
    limit: int = Field(100, ge=1, le=10_000)


class LinkHeaderPagination(Strict):
    type: Literal["link_header"]


Pagination = Annotated[
    CursorPagination | PagePagination | OffsetPagination | LinkHeaderPagination,
    Field(discriminator="type"),
]
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
