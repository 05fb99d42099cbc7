"""One error hierarchy for the domain; one handler turns it into the JSON error body."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        problems: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        #: Each offending location with its reason, when there are several: a form shows each
        #: beside its own field (the message joins them for the API's one line).
        self.problems = problems or ({field: message} if field else {})

    def __init_subclass__(cls, *, status_code: int = 0, code: str = "", **kwargs: object) -> None:
        """A kind of error is its HTTP status and its body's `code`, named where it is declared."""
        super().__init_subclass__(**kwargs)
        if status_code:
            cls.status_code = status_code
        if code:
            cls.code = code


class NotFound(DomainError, status_code=404, code="not_found"): ...


class Conflict(DomainError, status_code=409, code="conflict"): ...


class InvalidInput(DomainError, status_code=422, code="invalid_input"): ...


class Unauthorized(DomainError, status_code=401, code="unauthorized"): ...


class Forbidden(DomainError, status_code=403, code="forbidden"): ...


#: How pydantic wraps the words of a validator that raised ValueError or failed an assert.
_PYDANTIC_WRAPPERS = ("Value error, ", "Assertion failed, ")


def found(row: T | None, what: str) -> T:
    """The row a lookup by id found, or the API's 404 naming what was asked for."""
    if row is None:
        raise NotFound(f"{what} not found")
    return row


def reason(pydantic_msg: str) -> str:
    """A validation message as its validator worded it, without pydantic's wrapper words."""
    for wrapper in _PYDANTIC_WRAPPERS:
        if pydantic_msg.startswith(wrapper):
            return pydantic_msg[len(wrapper) :]
    return pydantic_msg
