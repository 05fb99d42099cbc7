"""What the OKR forms share: a form's strings as the API's JSON, and each refusal beside a field.

The schemas and services word a refusal in the API's terms; some name no field in their error
(a model validator, a definition the progress engine can't measure) but name it in their text
("a metric key result needs target_value or target_change_pct"). Such a message is shown beside
the first field it names, so the person sees it where the fix is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError

from app.core.errors import DomainError
from app.okr.service import Holdings
from app.web.pages import PageUser, field_errors, render

#: Where a refusal that names no field of the form is shown: at the top of the form.
FORM = "form"
#: Words a message may use for a field instead of its name.
_ALIASES = {"target": "target_value", "start": "start_value"}


def blank_none(value: str) -> str | None:
    """An empty box is no value (JSON's null), as the API reads a missing number."""
    stripped = value.strip()
    return stripped or None


def plain_number(value: float | None) -> str:
    """A stored figure as a person would type it back: 3000, not 3000.0."""
    if value is None:
        return ""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _named(message: str, fields: Sequence[str]) -> str | None:
    names = [*fields, *_ALIASES]
    found = re.search(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b", message)
    if found is None:
        return None
    word = found.group(1)
    return word if word in fields else _ALIASES[word] if _ALIASES[word] in fields else None


def placed(errors: dict[str, str], fields: Sequence[str]) -> dict[str, str]:
    """Move a message that names no field of the form beside the first field it mentions."""
    result = {k: v for k, v in errors.items() if k in fields}
    for key, message in errors.items():
        if key in fields:
            continue
        target = _named(message, fields)
        if target is not None and target not in result:
            result[target] = message
        else:
            result.setdefault(FORM, message)
    return result


def validation_errors(exc: ValidationError, fields: Sequence[str]) -> dict[str, str]:
    return placed(field_errors(exc, FORM), fields)


def domain_errors(exc: DomainError, fields: Sequence[str]) -> dict[str, str]:
    return placed({exc.field or FORM: exc.message}, fields)


@dataclass(frozen=True)
class DeleteTarget:
    """What a delete page names: the thing, where it lives, and where its buttons go."""

    what: str
    name: str
    detail: str
    action: str
    cancel: str


def delete_page(
    request: Request,
    user: PageUser,
    target: DeleteTarget,
    held: Holdings,
    *,
    needs_cascade: bool,
    error: str = "",
    status_code: int = 200,
) -> Response:
    """Ask before deleting, saying what goes with it; an editor is told before trying that
    mappings go only with an admin (the API's 403)."""
    context = {
        "principal": user.principal,
        "what": target.what,
        "name": target.name,
        "detail": target.detail,
        "held": held,
        "needs_cascade": needs_cascade,
        "needs_admin": held.mappings > 0 and user.principal.role != "admin",
        "action": target.action,
        "cancel": target.cancel,
        "error": error,
    }
    return render(request, "okrs/delete.html", context, status_code)
