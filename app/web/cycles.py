"""The cycles page: every cycle with its dates and objectives; editors create, edit, delete and
close a cycle, admins reopen one.

The same schemas and service calls as `/api/v1/cycles`: an edit is the API's PATCH (only what
changed is written and audited), and a delete is refused as the API refuses it: with 409 while
the cycle holds objectives unless the person asks for everything to go (`?cascade=true`), and
with 403 when that would take an admin's mappings along and the person is an editor.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.auth.service import ROLE_RANK
from app.core.db import SessionDep
from app.core.errors import Conflict, DomainError, Forbidden, NotFound
from app.models import Cycle
from app.okr import freeze, service
from app.okr.schemas import CycleCreate, CycleUpdate
from app.web.forms import DeleteTarget, delete_page, domain_errors, validation_errors
from app.web.pages import PageUser, page_principal, path_id, refusal, render
from app.web.retrospective import REVIEW_FORMATS

router = APIRouter(include_in_schema=False)

ViewerPage = Annotated[PageUser, Depends(page_principal("viewer"))]
EditorPage = Annotated[PageUser, Depends(page_principal("editor"))]
AdminPage = Annotated[PageUser, Depends(page_principal("admin"))]
_MAX_CYCLES = 200
FIELDS = ("name", "start_date", "end_date")


def _values(name: str, start_date: str, end_date: str) -> dict[str, str]:
    return {"name": name, "start_date": start_date.strip(), "end_date": end_date.strip()}


def _cycles_page(
    request: Request,
    session: Session,
    user: PageUser,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    cycles, total = service.list_cycles(session, _MAX_CYCLES, 0)
    context: dict[str, Any] = {
        "principal": user.principal,
        "cycles": cycles,
        "total": total,
        "counts": service.cycle_objective_counts(session),
        "can_edit": ROLE_RANK[user.principal.role] >= ROLE_RANK["editor"],
        "is_admin": user.principal.role == "admin",
        "errors": errors or {},
        "values": values or {"name": "", "start_date": "", "end_date": ""},
        "review_formats": REVIEW_FORMATS,
    }
    return render(request, "cycles/index.html", context, status_code)


def _cycle(request: Request, session: Session, user: PageUser, cycle_id: str) -> Cycle:
    cid = path_id(cycle_id)
    cycle = session.get(Cycle, cid) if cid else None
    if cycle is None:
        raise refusal(request, 404, "No such cycle", "It may have been deleted.", user.principal)
    return cycle


@router.get("/cycles")
def cycles_page(request: Request, session: SessionDep, user: ViewerPage) -> Response:
    """Every cycle, latest first, each a way into its OKRs."""
    return _cycles_page(request, session, user)


@router.post("/cycles")
def create_cycle(
    request: Request,
    session: SessionDep,
    user: EditorPage,
    name: Annotated[str, Form()] = "",
    start_date: Annotated[str, Form()] = "",
    end_date: Annotated[str, Form()] = "",
) -> Response:
    """Create a cycle as `POST /api/v1/cycles` does."""
    values = _values(name, start_date, end_date)
    try:
        body = CycleCreate.model_validate(values)
        cycle = service.create_cycle(session, body.model_dump(), user.principal.name)
    except ValidationError as exc:
        errors = validation_errors(exc, FIELDS)
    except DomainError as exc:
        session.rollback()
        errors = domain_errors(exc, FIELDS)
    else:
        return RedirectResponse(f"/cycles#cycle-{cycle.id}", status_code=303)
    return _cycles_page(request, session, user, errors=errors, values=values, status_code=422)


def _edit_page(
    request: Request,
    user: PageUser,
    cycle: Cycle,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    shown = values or {
        "name": cycle.name,
        "start_date": cycle.start_date.isoformat(),
        "end_date": cycle.end_date.isoformat(),
    }
    context = {"principal": user.principal, "cycle": cycle, "errors": errors or {}, "values": shown}
    return render(request, "cycles/edit.html", context, status_code)


@router.get("/cycles/{cycle_id}/edit")
def edit_cycle_page(
    request: Request, session: SessionDep, user: EditorPage, cycle_id: str
) -> Response:
    """The form to rename a cycle or move its dates."""
    return _edit_page(request, user, _cycle(request, session, user, cycle_id))


@router.post("/cycles/{cycle_id}/edit")
def edit_cycle(
    request: Request,
    session: SessionDep,
    user: EditorPage,
    cycle_id: str,
    name: Annotated[str, Form()] = "",
    start_date: Annotated[str, Form()] = "",
    end_date: Annotated[str, Form()] = "",
) -> Response:
    """Change a cycle as `PATCH /api/v1/cycles/{id}` does: only what changed is written."""
    cycle = _cycle(request, session, user, cycle_id)
    values = _values(name, start_date, end_date)
    try:
        body = CycleUpdate.model_validate(values)
        service.update_cycle(
            session, cycle.id, body.model_dump(exclude_unset=True), user.principal.name
        )
    except ValidationError as exc:
        errors = validation_errors(exc, FIELDS)
    except DomainError as exc:
        session.rollback()
        errors = domain_errors(exc, FIELDS)
    else:
        return RedirectResponse(f"/cycles#cycle-{cycle.id}", status_code=303)
    cycle = _cycle(request, session, user, cycle_id)
    return _edit_page(request, user, cycle, errors=errors, values=values, status_code=422)


def _delete_page(
    request: Request,
    session: Session,
    user: PageUser,
    cycle: Cycle,
    *,
    error: str = "",
    status_code: int = 200,
) -> Response:
    held = service.holdings(session, "cycle", cycle.id)
    target = DeleteTarget(
        "cycle",
        cycle.name,
        f"From {cycle.start_date} to {cycle.end_date}",
        f"/cycles/{cycle.id}/delete",
        "/cycles",
    )
    return delete_page(
        request,
        user,
        target,
        held,
        needs_cascade=held.objectives > 0,
        error=error,
        status_code=status_code,
    )


@router.get("/cycles/{cycle_id}/delete")
def delete_cycle_page(
    request: Request, session: SessionDep, user: EditorPage, cycle_id: str
) -> Response:
    """Ask before deleting, saying what the cycle holds and what would go with it."""
    return _delete_page(request, session, user, _cycle(request, session, user, cycle_id))


@router.post("/cycles/{cycle_id}/delete")
def delete_cycle(
    request: Request,
    session: SessionDep,
    user: EditorPage,
    cycle_id: str,
    cascade: Annotated[str, Form()] = "",
) -> Response:
    """Delete a cycle as `DELETE /api/v1/cycles/{id}` does (`cascade` as `?cascade=true`)."""
    cycle = _cycle(request, session, user, cycle_id)
    try:
        service.delete_cycle(session, cycle.id, cascade == "true", user.principal)
    except (Conflict, Forbidden) as exc:
        session.rollback()
        cycle = _cycle(request, session, user, cycle_id)
        return _delete_page(
            request, session, user, cycle, error=exc.message, status_code=exc.status_code
        )
    except NotFound:
        session.rollback()
        raise refusal(
            request, 404, "No such cycle", "It may have been deleted.", user.principal
        ) from None
    return RedirectResponse("/cycles", status_code=303)


# --- closing and reopening (SPEC section 8) ------------------------------------------------------


def _close_page(
    request: Request,
    session: Session,
    user: PageUser,
    cycle: Cycle,
    *,
    error: str = "",
    status_code: int = 200,
) -> Response:
    held = service.holdings(session, "cycle", cycle.id)
    context = {
        "principal": user.principal,
        "cycle": cycle,
        "held": held,
        "as_of": freeze.close_as_of(cycle),
        "error": error,
    }
    return render(request, "cycles/close.html", context, status_code)


@router.get("/cycles/{cycle_id}/close")
def close_cycle_page(
    request: Request, session: SessionDep, user: EditorPage, cycle_id: str
) -> Response:
    """Ask before closing, saying what freezing means: the figures stop moving."""
    return _close_page(request, session, user, _cycle(request, session, user, cycle_id))


@router.post("/cycles/{cycle_id}/close")
def close_cycle(request: Request, session: SessionDep, user: EditorPage, cycle_id: str) -> Response:
    """Close a cycle as `POST /api/v1/cycles/{id}/close` does (409 when already closed)."""
    cycle = _cycle(request, session, user, cycle_id)
    try:
        freeze.close_cycle(session, cycle.id, user.principal.name)
    except Conflict as exc:
        session.rollback()
        cycle = _cycle(request, session, user, cycle_id)
        return _close_page(
            request, session, user, cycle, error=exc.message, status_code=exc.status_code
        )
    return RedirectResponse(f"/cycles#cycle-{cycle.id}", status_code=303)


@router.post("/cycles/{cycle_id}/reopen")
def reopen_cycle(request: Request, session: SessionDep, user: AdminPage, cycle_id: str) -> Response:
    """Reopen a cycle as `POST /api/v1/cycles/{id}/reopen` does (409 when it is open)."""
    cycle = _cycle(request, session, user, cycle_id)
    try:
        freeze.reopen_cycle(session, cycle.id, user.principal.name)
    except Conflict as exc:
        session.rollback()
        raise refusal(request, 409, "The cycle is open", exc.message, user.principal) from None
    return RedirectResponse(f"/cycles#cycle-{cycle.id}", status_code=303)
