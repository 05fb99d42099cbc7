"""What the browser's forms share: a form's strings as the API's JSON, each refusal beside a
field, one way through a submit, one renderer of a page with a form, and one delete page.

The schemas and services word a refusal in the API's terms; some name no field in their error
(a model validator, a definition the progress engine can't measure) but name it in their text
("a metric key result needs target_value or target_change_pct"). Such a message is shown beside
the first field it names, so the person sees it where the fix is.

A submit goes the same way on every page (:func:`submit`): the schema the API uses parses what
was typed, the service the API calls writes it, and the person is sent on (303); a refusal
rolls back and shows the same form again with what was typed (422, or the refusal's own 403 or
409 where the page says so). Cycles, objectives and key results are deleted through one
confirm page and one handler (:func:`delete_routes`), as the API deletes them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.auth.service import Principal
from app.core.errors import Conflict, DomainError, Forbidden, NotFound
from app.models import Cycle
from app.okr import service
from app.okr.service import Holdings
from app.web.pages import EditorPage, Page, field_errors

#: A box of a form as the browser posts it (blank when left out).
FormText = Annotated[str, Form()]
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


class Refusals(Protocol):
    """Where a form shows what the schema or the service refused."""

    def validation_errors(self, exc: ValidationError) -> dict[str, str]: ...

    def domain_errors(self, exc: DomainError) -> dict[str, str]: ...


@dataclass(frozen=True)
class Placed:
    """A refusal beside the field it names, or beside the first field its message mentions."""

    fields: Sequence[str]

    def validation_errors(self, exc: ValidationError) -> dict[str, str]:
        return placed(field_errors(exc, FORM), self.fields)

    def domain_errors(self, exc: DomainError) -> dict[str, str]:
        return placed({exc.field or FORM: exc.message}, self.fields)


@dataclass(frozen=True)
class Exact:
    """A refusal beside the field it names when the form shows that field, else under
    ``default`` (the top of the form, unless the form says otherwise)."""

    fields: Sequence[str]
    default: str = FORM

    def validation_errors(self, exc: ValidationError) -> dict[str, str]:
        return field_errors(exc, self.default, self.fields)

    def domain_errors(self, exc: DomainError) -> dict[str, str]:
        where = exc.field or self.default
        return {where if where in self.fields else self.default: exc.message}


class AsNamed:
    """A refusal under the name the API gives it (the page shows what it knows)."""

    def validation_errors(self, exc: ValidationError) -> dict[str, str]:
        return field_errors(exc, FORM)

    def domain_errors(self, exc: DomainError) -> dict[str, str]:
        return {exc.field or FORM: exc.message}


@dataclass(frozen=True)
class FormState:
    """A form as a page shows it: what is in its boxes, each refusal beside its field, and the
    status the page answers with (422 when it comes back refused)."""

    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    status_code: int = 200


def render_form(page: Page, template: str, form: FormState, context: dict[str, Any]) -> Response:
    """The one renderer of a page with a form: who asks, the page's own context, the form."""
    full = {"principal": page.principal, **context, "errors": form.errors, "values": form.values}
    return page.render(template, full, form.status_code)


def shown_once(page: Page, template: str, secret: str, made: dict[str, Any]) -> Response:
    """The page (201) that shows what was just created with its generated secret, this once:
    an API key, a webhook channel's signing secret, a receiving source's token."""
    context = {"principal": page.principal, "secret": secret, **made}
    return page.render(template, context, 201)


def submit(
    session: Session,
    refusals: Refusals,
    values: dict[str, Any],
    write: Callable[[], str | Response],
    again: Callable[[FormState], Response],
    *,
    catch: type[DomainError] = DomainError,
    own_status: bool = False,
    gone: Callable[[], Response] | None = None,
) -> Response:
    """Write as the API would and go where ``write`` says (303), or answer what it answers.

    A refusal rolls the transaction back and shows the form ``again`` with what was typed:
    422, or with ``own_status`` the refusal's own status (403, 409). With ``gone``, a row that
    is not there (any more) gets that page; a domain error other than ``catch`` is the API's.
    """
    try:
        done = write()
    except ValidationError as exc:
        form = FormState(values, refusals.validation_errors(exc), 422)
    except DomainError as exc:
        if gone is not None and isinstance(exc, NotFound):
            return gone()
        if not isinstance(exc, catch):
            raise
        session.rollback()
        status = exc.status_code if own_status else 422
        form = FormState(values, refusals.domain_errors(exc), status)
    else:
        return done if isinstance(done, Response) else RedirectResponse(done, status_code=303)
    return again(form)


def cycle_or_404(page: Page, cycle_id: str) -> Cycle:
    """The cycle a page's path names (its OKRs, closing, retrospective, carry-over pages)."""
    return page.found_or_404("cycle", cycle_id, partial(page.session.get, Cycle))


# --- deleting a cycle, an objective or a key result ------------------------------------------


@dataclass(frozen=True)
class DeleteTarget:
    """What a delete page names: the thing, where it lives, where its buttons go, and where
    the person goes once it is deleted."""

    row_id: int
    what: str
    name: str
    detail: str
    action: str
    cancel: str
    done: str


@dataclass(frozen=True)
class Deletion:
    """One kind of OKR row, deleted in the browser as the API deletes it."""

    #: The entity `service.holdings` counts for it: ``cycle``, ``objective`` or ``key_result``.
    entity: str
    #: The row the path's one parameter names, as its delete page shows it (or the 404 page).
    load: Callable[[Page, str], DeleteTarget]
    #: Whether what it holds goes only with ``?cascade=true`` (the API's 409 without).
    needs_cascade: Callable[[Holdings], bool]
    #: The service call `DELETE /api/v1/...` makes.
    delete: Callable[[Session, int, bool, Principal], None]


def _delete_page(
    page: Page, kind: Deletion, target: DeleteTarget, refused: DomainError | None = None
) -> Response:
    """Ask before deleting, saying what goes with it; an editor is told before trying that
    mappings go only with an admin (the API's 403)."""
    held = service.holdings(page.session, kind.entity, target.row_id)
    context = {
        "principal": page.principal,
        "what": target.what,
        "name": target.name,
        "detail": target.detail,
        "held": held,
        "needs_cascade": kind.needs_cascade(held),
        "needs_admin": held.mappings > 0 and page.principal.role != "admin",
        "action": target.action,
        "cancel": target.cancel,
        "error": refused.message if refused else "",
    }
    return page.render("okrs/delete.html", context, refused.status_code if refused else 200)


def _path_text(page: Page) -> str:
    (text,) = page.request.path_params.values()
    return str(text)


def delete_routes(router: APIRouter, path: str, kind: Deletion) -> None:
    """``GET path/delete`` asks, saying what the row holds and what would go with it;
    ``POST path/delete`` deletes as the API does (the form's `cascade` as `?cascade=true`):
    a 409 or 403 shows on the same page, with nothing deleted."""

    def confirm(page: EditorPage) -> Response:
        return _delete_page(page, kind, kind.load(page, _path_text(page)))

    def delete(page: EditorPage, cascade: Annotated[str, Form()] = "") -> Response:
        target = kind.load(page, _path_text(page))
        try:
            kind.delete(page.session, target.row_id, cascade == "true", page.principal)
        except (Conflict, Forbidden) as exc:
            page.session.rollback()
            return _delete_page(page, kind, kind.load(page, _path_text(page)), exc)
        except NotFound:
            page.session.rollback()
            raise page.refuse(404, f"No such {target.what}", "It may have been deleted.") from None
        return RedirectResponse(target.done, status_code=303)

    router.add_api_route(f"{path}/delete", confirm, methods=["GET"])
    router.add_api_route(f"{path}/delete", delete, methods=["POST"])
