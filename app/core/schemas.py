"""Shared API types: bounded strings, ids, pagination."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

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

IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="The object's id")]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="Items to skip")]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]


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
