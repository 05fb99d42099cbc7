"""Editing and deleting an objective, from the OKRs tree.

The same schema and service as `PATCH` and `DELETE /api/v1/objectives/{id}`. The alignment is
offered as the key results of the same cycle one level up or more (a team objective aligns to a
company key result, an individual's to a team's or the company's), never those of the objective
itself or of the objectives aligned under it, which the service would refuse as a loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from app.models import KeyResult, Objective
from app.okr import service
from app.okr.schemas import ObjectiveUpdate
from app.web.forms import (
    DeleteTarget,
    Deletion,
    FormState,
    Placed,
    blank_none,
    delete_routes,
    render_form,
    submit,
)
from app.web.okrs import LEVEL_HELP, LEVELS, ObjectiveForm
from app.web.pages import EditorPage, Page

router = APIRouter(include_in_schema=False)

FIELDS = Placed(("title", "description", "level", "team", "owner", "parent_key_result_id"))
_RANK = {level: rank for rank, level in enumerate(LEVELS)}


@dataclass(frozen=True)
class ParentChoice:
    kr: KeyResult
    objective: Objective


def objective_or_404(page: Page, objective_id: str) -> Objective:
    get = partial(service.get_objective, page.session)
    return page.found_or_404("objective", objective_id, get)


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


def _edit_page(page: Page, obj: Objective, form: FormState | None = None) -> Response:
    form = form or FormState(
        {
            "title": obj.title,
            "description": obj.description,
            "level": obj.level,
            "team": obj.team,
            "owner": obj.owner,
            "parent_key_result_id": str(obj.parent_key_result_id or ""),
        }
    )
    everything = service.cycle_objectives(page.session, obj.cycle_id)
    context: dict[str, Any] = {
        "objective": obj,
        "cycle": obj.cycle,
        "levels": LEVELS,
        "level_help": LEVEL_HELP,
        "choices": parent_choices(obj, form.values["level"], everything),
    }
    return render_form(page, "objectives/edit.html", form, context)


@router.get("/okrs/objectives/{objective_id}/edit")
def edit_objective_page(page: EditorPage, objective_id: str) -> Response:
    """The form to change an objective: its words, level, team, owner and alignment."""
    obj = objective_or_404(page, objective_id)
    return _edit_page(page, obj)


@router.post("/okrs/objectives/{objective_id}/edit")
def edit_objective(page: EditorPage, objective_id: str, posted: ObjectiveForm) -> Response:
    """Change an objective as `PATCH /api/v1/objectives/{id}` does; an empty alignment
    makes it a top-level objective."""
    obj = objective_or_404(page, objective_id)
    values = posted.model_dump(exclude={"cycle_id"})
    values["parent_key_result_id"] = posted.parent_key_result_id.strip()
    body = {**values, "parent_key_result_id": blank_none(posted.parent_key_result_id)}

    def write() -> str:
        changes = ObjectiveUpdate.model_validate(body).model_dump(exclude_unset=True)
        service.update_objective(page.session, obj.id, changes, page.principal.name)
        return f"/okrs?cycle_id={obj.cycle_id}#objective-{obj.id}"

    def again(form: FormState) -> Response:
        obj = objective_or_404(page, objective_id)
        return _edit_page(page, obj, form)

    return submit(page.session, FIELDS, values, write, again)


def _delete_target(page: Page, objective_id: str) -> DeleteTarget:
    obj = objective_or_404(page, objective_id)
    return DeleteTarget(
        obj.id,
        "objective",
        obj.title,
        f"{obj.level} objective in {obj.cycle.name}",
        f"/okrs/objectives/{obj.id}/delete",
        f"/okrs?cycle_id={obj.cycle_id}#objective-{obj.id}",
        f"/okrs?cycle_id={obj.cycle_id}",
    )


delete_routes(
    router,
    "/okrs/objectives/{objective_id}",
    Deletion(
        "objective", _delete_target, lambda held: held.key_results > 0, service.delete_objective
    ),
)
