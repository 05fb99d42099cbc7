"""The parts a connector's config, credentials, params and catalogue are built from.

One home for what connectors' models kept writing again: the strict bases, the ``base_url``
field, OAuth tokens, an expiry given as Unix seconds or an ISO date, ids typed as numbers,
versions, formats and JSONPaths checked with a message that says what to type, pagination as a
config declares it, and a catalogue built from a table. The same words then reach every
connector's form and every refusal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

import jsonpath
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

from connectors.base import BaseUrl, MetricSpec
from connectors.paginate import (
    CursorPaginator,
    LinkHeaderPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    Paginator,
    compile_path,
)


class Strict(BaseModel):
    """A source's config or credentials: a field the connector doesn't know is a typo to report,
    not a setting to drop without a word."""

    model_config = ConfigDict(extra="forbid")


class Params(BaseModel):
    """A metric's params: strict like :class:`Strict`, and frozen, since a validated query's
    params are shared by the queries fetched together."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def root_field(root: str, *, unset: bool = False) -> Any:
    """A ``base_url`` field: ``root`` by default (typed ``BaseUrl``), or, with ``unset``, None
    while the connector works its root out (typed ``BaseUrl | None``); ``root`` then says what
    it replaces."""
    if unset:
        return Field(None, description=f"Replaces {root} (a proxy, a test server).")
    return Field(root, description="The API root; a proxy or a local test server replaces it.")


#: An http(s) address with no query or fragment, as a root that paths are added to must be.
HTTP_ROOT = re.compile(r"(?i)^https?://[^/\s?#]+(?:/[^\s?#]*)?$")


def http_root(value: object) -> str | None:
    """``value`` as a root without its trailing slash, or None when it is not one."""
    if not isinstance(value, str) or not HTTP_ROOT.match(value.strip()):
        return None
    return value.strip().rstrip("/")


def _root_only(value: str, info: ValidationInfo) -> str:
    if http_root(value) is None:
        raise ValueError(
            f"`{info.field_name}` must be an http:// or https:// address, with no query"
        )
    return value


#: A ``base_url`` that paths are added to as they are: a query or a fragment would end up before
#: them, so it is refused.
RootUrl = Annotated[BaseUrl, AfterValidator(_root_only)]


def _http_address(value: str, info: ValidationInfo) -> str:
    value = value.strip()
    if not re.match(r"(?i)^https?://[^/\s]+", value):
        raise ValueError(f"`{info.field_name}` must be an http:// or https:// address")
    return value


#: An http(s) address a source reads from, stripped of the blanks a paste brings along.
HttpAddress = Annotated[str, AfterValidator(_http_address)]


def has_password(url: str) -> bool:
    """Whether ``url`` carries a password, which a config, stored and shown in clear, must not."""
    try:
        return urlsplit(url.strip()).password is not None
    except ValueError:  # an address urlsplit can't read (a stray bracket) has no password it finds
        return False


def matching(pattern: str | re.Pattern[str], message: str) -> AfterValidator:
    """A string field's check: stripped, then ``pattern`` matched whole, else ``message`` (which
    names the field and shows an example, where a regex in an error would not)."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        value = value.strip()
        if not compiled.fullmatch(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


def numeric_id(*prefixes: str, example: str) -> BeforeValidator:
    """An id of digits: a JSON number (ids copied from an API explorer often are) is read as its
    text, and a prefix copied along with it (``urn:li:organization:``) is dropped."""

    def check(value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            value = value.strip()
            for prefix in prefixes:
                value = value.removeprefix(prefix)
            if not (value.isascii() and value.isdigit()):
                raise ValueError(f"`{info.field_name}` is a numeric id, e.g. {example}")
        return value

    return BeforeValidator(check)


def _strptime_format(value: str, info: ValidationInfo) -> str:
    if "%" not in value:
        raise ValueError(f"`{info.field_name}` is a strptime format, e.g. `%d/%m/%Y`")
    return value


#: A date format as ``datetime.strptime`` takes it, such as ``%d/%m/%Y``.
StrptimeFormat = Annotated[str, AfterValidator(_strptime_format)]


def _check_path(value: str) -> str:
    try:
        compile_path(value)
    except jsonpath.JSONPathError as exc:
        raise ValueError(f"`{value}` is not a JSONPath: {str(exc).splitlines()[0]}") from None
    return value


#: A JSONPath, compiled when a source or mapping is saved so a typo is refused there.
JsonPath = Annotated[str, AfterValidator(_check_path)]


def _epoch(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("give Unix seconds or an ISO date such as 2026-12-31") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


#: A moment as Unix seconds; an ISO date or datetime (UTC unless it says) is read as one, since
#: that is what an admin copies from a platform's console.
Epoch = Annotated[float, BeforeValidator(_epoch)]


class OAuthClient(Strict):
    """An OAuth app's client and a grant's tokens; krsync refreshes the access token with the
    client and the refresh token, and stores what it gets back. A connector narrows which of
    them it requires."""

    access_token: str | None = Field(
        None, description="The OAuth access token in use; kept by krsync after each refresh."
    )
    refresh_token: str | None = Field(None, description="Lets krsync refresh the access token.")
    client_id: str | None = Field(None, description="The OAuth app's client id (for refresh).")
    client_secret: str | None = Field(
        None, description="The OAuth app's client secret (for refresh)."
    )

    @model_validator(mode="after")
    def _refresh_needs_client(self) -> Self:
        if self.refresh_token and not (self.client_id and self.client_secret):
            raise ValueError(
                "refreshing the access token needs the app's `client_id` and `client_secret` "
                "with the `refresh_token`"
            )
        return self


class OAuthCredentials(OAuthClient):
    """:class:`OAuthClient` with the access token's expiry, so a sync doesn't refresh a token
    that is still valid."""

    expires_at: Epoch | None = Field(
        None,
        description="When the access token expires: Unix seconds or an ISO date (kept by krsync "
        "after each refresh).",
    )


#: A catalogue entry: name → (description, unit), or (description, unit, its own fields).
Entry = tuple[str, str] | tuple[str, str, Mapping[str, Any]]


def catalogue(
    table: Mapping[str, Entry], *, describe: str = "{}", **shared: Any
) -> tuple[MetricSpec, ...]:
    """A connector's metrics from a table, with the fields they share (``params_model``,
    ``filters``, ``history``...) given once; ``describe`` words each description."""
    specs = []
    for name, (description, unit, *own) in table.items():
        fields = shared | dict(own[0] if own else {})
        text = describe.format(description)
        specs.append(MetricSpec(name=name, description=text, unit=unit, **fields))
    return tuple(specs)


# Pagination as a config declares it (dlt's ``rest_api`` ``paginator`` settings): each kind
# builds its :mod:`connectors.paginate` paginator, for a connector whose user describes the API.


class CursorPagination(Strict):
    type: Literal["cursor"]
    cursor_param: str = Field(min_length=1, description="The query (or body) field of the cursor.")
    next_cursor_path: JsonPath = Field(description="JSONPath of the next cursor in the body.")
    cursor_in: Literal["query", "body"] = Field(
        "query", description="Where the cursor goes: the query string or the JSON body."
    )

    def paginator(self) -> Paginator:
        return CursorPaginator(
            cursor=self.next_cursor_path, param=self.cursor_param, into=self.cursor_in
        )


class PagePagination(Strict):
    type: Literal["page"]
    page_param: str = Field("page", min_length=1)
    size_param: str | None = Field("per_page", description="Omitted from the request when null.")
    size: int = Field(100, ge=1, le=10_000)
    first_page: int = Field(1, ge=0)

    def paginator(self) -> Paginator:
        kept = self.model_dump(include={"size", "size_param", "first_page"})
        return PageNumberPaginator(param=self.page_param, **kept)


class OffsetPagination(Strict):
    type: Literal["offset"]
    offset_param: str = Field("offset", min_length=1)
    limit_param: str = Field("limit", min_length=1)
    limit: int = Field(100, ge=1, le=10_000)

    def paginator(self) -> Paginator:
        return OffsetPaginator(**self.model_dump(exclude={"type"}))


class LinkHeaderPagination(Strict):
    type: Literal["link_header"]

    def paginator(self) -> Paginator:
        return LinkHeaderPaginator()


Pagination = Annotated[
    CursorPagination | PagePagination | OffsetPagination | LinkHeaderPagination,
    Field(discriminator="type"),
]
