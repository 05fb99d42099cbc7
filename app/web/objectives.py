"""Editing and deleting an objective, from the OKRs tree.

The same schema and service as `PATCH` and `DELETE /api/v1/objectives/{id}`. The alignment is
offered as the key results of the same cycle one level up or more (a team objective aligns to a
company key result, an individual's to a team's or the company's), never those of the objective
itself or of the objectives aligned under it, which the service would refuse as a loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.core.db import SessionDep
from app.core.errors import Conflict, DomainError, Forbidden, NotFound
from app.models import KeyResult, Objective
from app.okr import service
from app.okr.schemas import ObjectiveUpdate
from app.web.forms import DeleteTarget, blank_none, delete_page, domain_errors, validation_errors
from app.web.okrs import LEVEL_HELP, LEVELS
from app.web.pages import PageUser, page_principal, path_id, refusal, render

router = APIRouter(include_in_schema=False)

EditorPage = Annotated[PageUser, Depends(page_principal("editor"))]
FIELDS = ("title", "description", "level", "team", "owner", "parent_key_result_id")
_RANK = {level: rank for rank, level in enumerate(LEVELS)}


@dataclass(frozen=True)
class ParentChoice:
    kr: KeyResult
    objective: Objective


def objective_or_404(
    request: Request, session: Session, user: PageUser, objective_id: str
) -> Objective:
    oid = path_id(objective_id)
    try:
        if not oid:
            raise NotFound(f"objective {objective_id} not found")
        return service.get_objective(session, oid)
    except NotFound:
        raise refusal(
            request, 404, "No such objective", "It may have been deleted.", user.principal
        ) from None


def _below(obj: Objective, everything: list[Objective]) -> set[int]:
    """The objective and every objective aligned under it, however deep."""
    aligned_to: dict[int, list[Objective]] = {}
    for other in everything:
        if other.parent_key_result_id is not None:
            aligned_to.setdefault(other.parent_key_result_id, []).append(other)
    found = {obj.id}
    pending = [obj]
    while pending:
        current = pending.pop()
        for kr in current.key_results:
            for child in aligned_to.get(kr.id, []):
                if child.id not in found:
                    found.add(child.id)
                    pending.append(child)
    return found


def parent_choices(obj: Objective, level: str, everything: list[Objective]) -> list[ParentChoice]:
    """Key results of the cycle at a higher level than ``level``, and the current parent."""
    rank = _RANK.get(level, len(LEVELS))
    below = _below(obj, everything)
    choices = [
        ParentChoice(kr, other)
        for other in sorted(everything, key=lambda o: (_RANK.get(o.level, len(LEVELS)), o.id))
        if other.id not in below and _RANK.get(other.level, len(LEVELS)) < rank
        for kr in other.key_results
    ]
    listed = {c.kr.id for c in choices}
    if obj.parent_key_result_id is not None and obj.parent_key_result_id not in listed:
        for other in everything:
            for kr in other.key_results:
                if kr.id == obj.parent_key_result_id:
                    choices.append(ParentChoice(kr, other))
    return choices


def _edit_page(
    request: Request,
    session: Session,
    user: PageUser,
    obj: Objective,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    shown = values or {
        "title": obj.title,
        "description": obj.description,
        "level": obj.level,
        "team": obj.team,
        "owner": obj.owner,
        "parent_key_result_id": str(obj.parent_key_result_id or ""),
    }
    everything = service.cycle_objectives(session, obj.cycle_id)
    context: dict[str, Any] = {
        "principal": user.principal,
        "objective": obj,
        "cycle": obj.cycle,
        "levels": LEVELS,
        "level_help": LEVEL_HELP,
        "choices": parent_choices(obj, shown["level"], everything),
        "errors": errors or {},
        "values": shown,
    }
    return render(request, "objectives/edit.html", context, status_code)


@router.get("/okrs/objectives/{objective_id}/edit")
def edit_objective_page(
    request: Request, session: SessionDep, user: EditorPage, objective_id: str
) -> Response:
    """The form to change an objective: its words, level, team, owner and alignment."""
    obj = objective_or_404(request, session, user, objective_id)
    return _edit_page(request, session, user, obj)


@router.post("/okrs/objectives/{objective_id}/edit")
def edit_objective(
    request: Request,
    session: SessionDep,
    user: EditorPage,
    objective_id: str,
    title: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    level: Annotated[str, Form()] = "",
    team: Annotated[str, Form()] = "",
    owner: Annotated[str, Form()] = "",
    parent_key_result_id: Annotated[str, Form()] = "",
) -> Response:
    """Change an objective as `PATCH /api/v1/objectives/{id}` does; an empty alignment
    makes it a top-level objective."""
    obj = objective_or_404(request, session, user, objective_id)
    values = {
        "title": title,
        "description": description,
        "level": level,
        "team": team,
        "owner": owner,
        "parent_key_result_id": parent_key_result_id.strip(),
    }
    body = {**values, "parent_key_result_id": blank_none(parent_key_result_id)}
    try:
        changes = ObjectiveUpdate.model_validate(body).model_dump(exclude_unset=True)
        service.update_objective(session, obj.id, changes, user.principal.name)
    except ValidationError as exc:
        errors = validation_errors(exc, FIELDS)
    except DomainError as exc:
        session.rollback()
        errors = domain_errors(exc, FIELDS)
    else:
        return RedirectResponse(
            f"/okrs?cycle_id={obj.cycle_id}#objective-{obj.id}", status_code=303
        )
    obj = objective_or_404(request, session, user, objective_id)
    return _edit_page(request, session, user, obj, errors=errors, values=values, status_code=422)


def _delete_page(
    request: Request,
    session: Session,
    user: PageUser,
    obj: Objective,
    *,
    error: str = "",
    status_code: int = 200,
) -> Response:
    held = service.holdings(session, "objective", obj.id)
    target = DeleteTarget(
        "objective",
        obj.title,
        f"{obj.level} objective in {obj.cycle.name}",
        f"/okrs/objectives/{obj.id}/delete",
        f"/okrs?cycle_id={obj.cycle_id}#objective-{obj.id}",
    )
    return delete_page(
        request,
        user,
        target,
        held,
        needs_cascade=held.key_results > 0,
        error=error,
        status_code=status_code,
    )


@router.get("/okrs/objectives/{objective_id}/delete")
def delete_objective_page(
    request: Request, session: SessionDep, user: EditorPage, objective_id: str
) -> Response:
    """Ask before deleting, saying what the objective holds and what would go with it."""
    obj = objective_or_404(request, session, user, objective_id)
    return _delete_page(request, session, user, obj)


@router.post("/okrs/objectives/{objective_id}/delete")
def delete_objective(
    request: Request,
    session: SessionDep,
    user: EditorPage,
    objective_id: str,
    cascade: Annotated[str, Form()] = "",
) -> Response:
    """Delete an objective as `DELETE /api/v1/objectives/{id}` does (`cascade` as the API's)."""
    obj = objective_or_404(request, session, user, objective_id)
    cycle_id = obj.cycle_id
    try:
        service.delete_objective(session, obj.id, cascade == "true", user.principal)
    except (Conflict, Forbidden) as exc:
        session.rollback()
        obj = objective_or_404(request, session, user, objective_id)
        return _delete_page(
            request, session, user, obj, error=exc.message, status_code=exc.status_code
        )
    return RedirectResponse(f"/okrs?cycle_id={cycle_id}", status_code=303)
