"""Shared API types: bounded strings, strict dates, ids, pagination."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from app.core.values import MAX_ABS_VALUE

T = TypeVar("T")

MAX_ID = 2_147_483_647  # the id columns are 32-bit; a larger id can't exist, so it is a 404


def _no_nul(value: str) -> str:
    # PostgreSQL refuses NUL in text; refusing it here keeps both databases alike.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_nul),
]
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    AfterValidator(_no_nul),
]
Short = Annotated[str, StringConstraints(max_length=200), AfterValidator(_no_nul)]
Unit = Annotated[str, StringConstraints(max_length=50), AfterValidator(_no_nul)]
LongText = Annotated[str, StringConstraints(max_length=10_000), AfterValidator(_no_nul)]
#: A figure as krsync stores it (see ``app.core.values``).
Number = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_ABS_VALUE, le=MAX_ABS_VALUE)]

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DATE_FORMAT = "must be a date written YYYY-MM-DD, such as 2026-08-15"


def iso_date(value: object) -> date:
    """A calendar day from exactly `YYYY-MM-DD` (or a `date` from Python code), else ValueError.

    Pydantic's own date parsing is lax: it reads `0` or `1700000000` as a Unix time and
    `2026-07-15T00:00:00` as a day, and `date.fromisoformat` takes `20260815` and `2026-W33-1`,
    so a typo or a wrong field would become a plausible date instead of a 422.
    """
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError(DATE_FORMAT)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a day of the calendar (YYYY-MM-DD)") from None


def _strict_date(value: object) -> date:
    try:
        return iso_date(value)
    except ValueError as exc:
        # A custom error keeps pydantic's "Value error, " prefix out of the 422's message.
        raise PydanticCustomError("date_format", str(exc)) from None


#: Every date krsync reads, in a body or a query; its JSON Schema stays `format: date`.
IsoDate = Annotated[date, BeforeValidator(_strict_date)]

IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="The object's id")]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="Items to skip")]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]


#: id of a route -> the query parameters it reads (routes live as long as the app).
_query_names: dict[int, frozenset[str]] = {}


def _route_query_names(route: Any) -> frozenset[str]:
    """The query parameters a route reads, its dependencies' included."""
    known = _query_names.get(id(route))
    if known is None:
        names: set[str] = set()
        pending = [route.dependant]
        while pending:
            dependant = pending.pop()
            names.update(param.alias for param in dependant.query_params)
            pending.extend(dependant.dependencies)
        known = _query_names[id(route)] = frozenset(names)
    return known


def _known_query_only(request: Request) -> None:
    """A misspelt or unsupported filter would otherwise answer every row, as if all matched."""
    route = request.scope.get("route")
    if getattr(route, "dependant", None) is None:
        return
    known = _route_query_names(route)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known))
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name),
                    "msg": f"this list takes no such parameter; it takes {takes}",
                }
                for name in unknown
            ]
        )


#: On a list route: an unknown query parameter is a 422, as an unknown body field is.
KnownQueryOnly = Depends(_known_query_only)


class StrictModel(BaseModel):
    """Request bodies refuse unknown fields, so a typo is a 422 and not a silent no-op."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every 4xx has this shape, so a client reads one `detail` whatever went wrong."""

    detail: str
    code: str
    field: str | None = None
    errors: list[FieldError] | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body could not be read (not UTF-8 JSON)"},
    401: {"model": ErrorBody, "description": "Missing or unknown API key"},
    403: {"model": ErrorBody, "description": "The key's role is too weak"},
    404: {"model": ErrorBody, "description": "No such object"},
    409: {"model": ErrorBody, "description": "Conflicts with stored data"},
    422: {"model": ErrorBody, "description": "Invalid input"},
}
