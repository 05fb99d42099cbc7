"""The retrospective page of a cycle: its entries on a board by format and category; editors
add, correct and delete entries, viewers read.

The same schemas and service as `/api/v1/cycles/{id}/retrospective`, so a refusal (a category
that is not part of the format, an objective of another cycle) reads as the API words it,
beside the field it names.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.auth.service import ROLE_RANK
from app.core.db import SessionDep
from app.core.errors import DomainError, NotFound
from app.models import Cycle
from app.okr import service as okr_service
from app.review import retrospective
from app.review.schemas import (
    CATEGORIES,
    CATEGORY_LABELS,
    FORMAT_LABELS,
    RetrospectiveCreate,
    RetrospectiveUpdate,
)
from app.web.forms import domain_errors, validation_errors
from app.web.pages import PageUser, page_principal, path_id, refusal, render

router = APIRouter(include_in_schema=False)

ViewerPage = Annotated[PageUser, Depends(page_principal("viewer"))]
EditorPage = Annotated[PageUser, Depends(page_principal("editor"))]
FIELDS = ("format", "category", "text", "objective_id")
_ENTRIES_SHOWN = 2000
REVIEW_FORMATS = (("xlsx", "Excel"), ("csv", "CSV"), ("md", "Markdown"), ("json", "JSON"))


def _values(format: str, category: str, text: str, objective_id: str) -> dict[str, str]:
    return {"format": format, "category": category, "text": text, "objective_id": objective_id}


def _body(values: dict[str, str]) -> dict[str, Any]:
    """A form's strings as the API's JSON: "whole cycle" is no objective."""
    return {
        "format": values["format"],
        "category": values["category"],
        "text": values["text"],
        "objective_id": values["objective_id"].strip() or None,
    }


def _cycle(request: Request, session: Session, user: PageUser, cycle_id: str) -> Cycle:
    cid = path_id(cycle_id)
    cycle = session.get(Cycle, cid) if cid else None
    if cycle is None:
        raise refusal(request, 404, "No such cycle", "It may have been deleted.", user.principal)
    return cycle


def _page(
    request: Request,
    session: Session,
    user: PageUser,
    cycle: Cycle,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    edit_errors: dict[int, dict[str, str]] | None = None,
    edit_values: dict[int, dict[str, str]] | None = None,
    status_code: int = 200,
) -> Response:
    entries, total = retrospective.list_entries(session, cycle.id, limit=_ENTRIES_SHOWN)
    objectives = okr_service.cycle_objectives(session, cycle.id)
    board = {
        fmt: {cat: [e for e in entries if e.format == fmt and e.category == cat] for cat in cats}
        for fmt, cats in CATEGORIES.items()
    }
    context: dict[str, Any] = {
        "principal": user.principal,
        "cycle": cycle,
        "board": board,
        "total": total,
        "objectives": objectives,
        "objective_titles": {o.id: o.title for o in objectives},
        "format_labels": FORMAT_LABELS,
        "category_labels": CATEGORY_LABELS,
        "categories": CATEGORIES,
        "review_formats": REVIEW_FORMATS,
        "can_edit": ROLE_RANK[user.principal.role] >= ROLE_RANK["editor"],
        "errors": errors or {},
        "values": values or _values("start_stop_continue", "start", "", ""),
        "edit_errors": edit_errors or {},
        "edit_values": edit_values or {},
    }
    return render(request, "cycles/retrospective.html", context, status_code)


@router.get("/cycles/{cycle_id}/retrospective")
def retrospective_page(
    request: Request, session: SessionDep, user: ViewerPage, cycle_id: str
) -> Response:
    """The cycle's look back, by format and category."""
    return _page(request, session, user, _cycle(request, session, user, cycle_id))


@router.post("/cycles/{cycle_id}/retrospective")
def add_entry(
    request: Request,
    session: SessionDep,
    user: EditorPage,
    cycle_id: str,
    format: Annotated[str, Form()] = "",
    category: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
    objective_id: Annotated[str, Form()] = "",
) -> Response:
    """Add an entry as `POST /api/v1/cycles/{id}/retrospective` does."""
    cycle = _cycle(request, session, user, cycle_id)
    values = _values(format, category, text, objective_id)
    try:
        body = RetrospectiveCreate.model_validate(_body(values))
        entry = retrospective.create_entry(
            session, cycle.id, body.model_dump(), user.principal.name
        )
    except ValidationError as exc:
        errors = validation_errors(exc, FIELDS)
    except DomainError as exc:
        session.rollback()
        errors = domain_errors(exc, FIELDS)
    else:
        return RedirectResponse(
            f"/cycles/{cycle.id}/retrospective#entry-{entry.id}", status_code=303
        )
    cycle = _cycle(request, session, user, cycle_id)
    return _page(request, session, user, cycle, errors=errors, values=values, status_code=422)


def _gone(request: Request, user: PageUser) -> Response:
    return refusal(
        request,
        404,
        "No such entry",
        "It may have been deleted since the page was read.",
        user.principal,
    ).response


@router.post("/cycles/{cycle_id}/retrospective/{entry_id}")
def edit_entry(
    request: Request,
    session: SessionDep,
    user: EditorPage,
    cycle_id: str,
    entry_id: str,
    format: Annotated[str, Form()] = "",
    category: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
    objective_id: Annotated[str, Form()] = "",
) -> Response:
    """Correct an entry as `PATCH /api/v1/cycles/{id}/retrospective/{entry_id}` does."""
    cycle = _cycle(request, session, user, cycle_id)
    eid = path_id(entry_id)
    values = _values(format, category, text, objective_id)
    try:
        body = RetrospectiveUpdate.model_validate(_body(values))
        if not eid:
            raise NotFound("no such entry")
        retrospective.update_entry(session, cycle.id, eid, body.model_dump(), user.principal.name)
    except ValidationError as exc:
        errors = validation_errors(exc, FIELDS)
    except NotFound:
        return _gone(request, user)
    except DomainError as exc:
        session.rollback()
        errors = domain_errors(exc, FIELDS)
    else:
        return RedirectResponse(f"/cycles/{cycle.id}/retrospective#entry-{eid}", status_code=303)
    cycle = _cycle(request, session, user, cycle_id)
    return _page(
        request,
        session,
        user,
        cycle,
        edit_errors={eid: errors},
        edit_values={eid: values},
        status_code=422,
    )


@router.post("/cycles/{cycle_id}/retrospective/{entry_id}/delete")
def delete_entry(
    request: Request, session: SessionDep, user: EditorPage, cycle_id: str, entry_id: str
) -> Response:
    """Delete an entry as `DELETE /api/v1/cycles/{id}/retrospective/{entry_id}` does."""
    cycle = _cycle(request, session, user, cycle_id)
    eid = path_id(entry_id)
    try:
        if not eid:
            raise NotFound("no such entry")
        retrospective.delete_entry(session, cycle.id, eid, user.principal.name)
    except NotFound:
        return _gone(request, user)
    return RedirectResponse(f"/cycles/{cycle.id}/retrospective", status_code=303)
