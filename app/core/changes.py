"""Applying a PATCH and describing it for the audit trail, the same way in every domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from app.core.errors import InvalidInput


def plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: plain(v) for k, v in values.items()}


def same_named(source: object, names: str) -> dict[str, Any]:
    """`source`'s attributes named in `names` (space-separated), under the same names.

    For views built from a row: what is copied as it is reads as one list, and only what a
    view computes or renames stands out beside it.
    """
    return {name: getattr(source, name) for name in names.split()}


def apply_changes(row: Any, changes: dict[str, Any]) -> dict[str, Any]:
    """Set the fields and return `{field: [old, new]}` of what really changed, for the audit."""
    diff: dict[str, Any] = {}
    for key, value in changes.items():
        old = getattr(row, key)
        if old != value:
            diff[key] = [plain(old), plain(value)]
            setattr(row, key, value)
    return diff


def require_not_null(changes: dict[str, Any], fields: Sequence[str]) -> None:
    """A PATCH may leave a field out, but may not null one the model requires."""
    for name in fields:
        if name in changes and changes[name] is None:
            raise InvalidInput(f"{name} can't be null", field=name)
