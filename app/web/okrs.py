"""The OKRs page: a cycle's objectives as the alignment tree, and a form for new objectives.

An objective aligned to a key result (``parent_key_result_id``) sits under that key result, so
the page reads from the company's objectives down to the team's and the individuals'. Filters
are those of `GET /api/v1/objectives` (cycle, team, owner) and `GET /api/v1/key-results`
(status), checked by the same types so a bad value is refused in the API's words; the form
goes through the same schema and service as `POST /api/v1/objectives`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from app.core import clock
from app.core.errors import NotFound
from app.core.schemas import MAX_ID, Short
from app.models import Cycle, KeyResult, Objective
from app.okr import service
from app.okr.schemas import ObjectiveCreate, Status
from app.progress import ObjectiveProgress, Progress
from app.web.forms import AsNamed, FormState, submit
from app.web.pages import (
    STATUS_LABELS,
    EditorPage,
    Page,
    ViewerPage,
    field_errors,
    path_id,
)

router = APIRouter(include_in_schema=False)

_MAX_CYCLES = 200
#: Enough for any real cycle; the page is one cycle's objectives, never the whole history.
_MAX_OBJECTIVES = 2000
LEVELS = ("company", "team", "individual")
LEVEL_HELP = {
    "company": "what the whole organisation aims for this cycle",
    "team": "a team's contribution, usually aligned to a company key result",
    "individual": "one person's contribution, usually aligned to a team key result",
}


class OkrFilters(BaseModel):
    """The page's query, with the API's types: `cycle_id` as `IdQuery`, `status` as `Status`."""

    model_config = ConfigDict(extra="ignore")

    cycle_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    team: Short | None = None
    owner: Short | None = None
    status: Status | None = None


class ObjectiveFields(BaseModel):
    """The objective form's boxes as the browser posts them (blank when left out)."""

    cycle_id: str = ""
    title: str = ""
    description: str = ""
    level: str = ""
    team: str = ""
    owner: str = ""
    parent_key_result_id: str = ""


ObjectiveForm = Annotated[ObjectiveFields, Form()]


@dataclass
class KrNode:
    kr: KeyResult
    progress: Progress | None
    #: Objectives aligned to this key result, shown under it.
    children: list[ObjectiveNode] = field(default_factory=list)


@dataclass
class ObjectiveNode:
    objective: Objective
    progress: ObjectiveProgress | None
    key_results: list[KrNode]
    #: The key result it is aligned to when that one is not on the page (filtered out).
    aligned_to: KeyResult | None = None


def _parse_filters(params: dict[str, str]) -> tuple[OkrFilters, dict[str, str]]:
    """An empty field means "any"; a refused one is dropped and its message kept."""
    given = {k: v for k, v in params.items() if k in OkrFilters.model_fields and v != ""}
    try:
        return OkrFilters.model_validate(given), {}
    except ValidationError as exc:
        errors = field_errors(exc, "form")
        kept = {k: v for k, v in given.items() if k not in errors}
        return OkrFilters.model_validate(kept), errors


def _tree(
    shown: list[Objective],
    obj_progress: dict[int, ObjectiveProgress],
    kr_progress: dict[int, Progress],
    status: str | None,
    key_results: dict[int, KeyResult],
) -> list[ObjectiveNode]:
    """Objectives under the key results they are aligned to; the rest are roots, by level."""
    nodes: dict[int, ObjectiveNode] = {}
    kr_nodes: dict[int, KrNode] = {}
    for obj in shown:
        krs = []
        for kr in obj.key_results:
            progress = kr_progress.get(kr.id)
            if status is not None and (progress is None or progress.status != status):
                continue
            kr_nodes[kr.id] = KrNode(kr, progress)
            krs.append(kr_nodes[kr.id])
        nodes[obj.id] = ObjectiveNode(obj, obj_progress.get(obj.id), krs)
    roots: list[ObjectiveNode] = []
    for obj in shown:
        node = nodes[obj.id]
        parent = obj.parent_key_result_id
        if parent is not None and parent in kr_nodes:
            kr_nodes[parent].children.append(node)
        else:
            node.aligned_to = key_results.get(parent) if parent is not None else None
            roots.append(node)
    rank = {level: i for i, level in enumerate(LEVELS)}
    roots.sort(key=lambda n: (rank.get(n.objective.level, len(LEVELS)), n.objective.id))
    return roots


@dataclass(frozen=True)
class Carried:
    """What this cycle holds from an earlier one, read back after a carry-over: the rows say
    it (`carried_from_id`), so the confirmation can't claim more than was copied."""

    source: Cycle
    objectives: int
    key_results: int


def _carried(session: Session, from_text: str, everything: list[Objective]) -> Carried | None:
    source_id = path_id(from_text)
    source = session.get(Cycle, source_id) if source_id else None
    if source is None:
        return None
    earlier = service.cycle_objectives(session, source.id)
    objective_ids = {o.id for o in earlier}
    kr_ids = {kr.id for o in earlier for kr in o.key_results}
    return Carried(
        source,
        sum(o.carried_from_id in objective_ids for o in everything),
        sum(kr.carried_from_id in kr_ids for o in everything for kr in o.key_results),
    )


def _okrs_page(page: Page, params: dict[str, str], form: FormState | None = None) -> Response:
    today = clock.today()
    where, filter_errors = _parse_filters(params)
    cycles, _ = service.list_cycles(page.session, _MAX_CYCLES, 0)
    can_edit = page.at_least("editor")
    context: dict[str, Any] = {
        "principal": page.principal,
        "cycles": cycles,
        "cycle": None,
        "filters": where,
        "filter_errors": filter_errors,
        "statuses": STATUS_LABELS,
        "teams": [],
        "owners": [],
        "tree": [],
        "shown": 0,
        "total": 0,
        "can_edit": can_edit,
        "levels": LEVELS,
        "level_help": LEVEL_HELP,
        "parent_choices": [],
        "form_errors": form.errors if form else {},
        "form_values": form.values if form else {"level": "team"},
        "carried": None,
    }
    status_code = form.status_code if form else 200
    if filter_errors:
        status_code = 422
    if not cycles:
        return page.render("okrs/index.html", context, status_code)
    try:
        cycle: Cycle = service.resolve_cycle(page.session, where.cycle_id, today)
    except NotFound:
        raise page.refuse(
            404,
            "No such cycle",
            f"There is no cycle {where.cycle_id} (any more); pick one from the list.",
        ) from None
    everything = service.cycle_objectives(page.session, cycle.id)
    shown = everything
    if where.team is not None or where.owner is not None:
        shown, _ = service.list_objectives(
            page.session,
            service.ObjectiveFilter(cycle_id=cycle.id, team=where.team, owner=where.owner),
            _MAX_OBJECTIVES,
            0,
        )
    obj_progress, kr_progress = service.objectives_progress(page.session, shown, today)
    if where.status is not None:  # as `/key-results?status=`: objectives with a match stay
        shown = [
            o
            for o in shown
            if any(
                kr.id in kr_progress and kr_progress[kr.id].status == where.status
                for kr in o.key_results
            )
        ]
    all_krs = {kr.id: kr for o in everything for kr in o.key_results}
    titles = {o.id: o.title for o in everything}
    context.update(
        carried=_carried(page.session, params.get("carried_from", ""), everything),
        cycle=cycle,
        teams=sorted({o.team for o in everything if o.team}),
        owners=sorted({o.owner for o in everything if o.owner}),
        tree=_tree(shown, obj_progress, kr_progress, where.status, all_krs),
        shown=len(shown),
        total=len(everything),
        parent_choices=[(kr, titles[kr.objective_id]) for kr in all_krs.values()],
    )
    return page.render("okrs/index.html", context, status_code)


def _query(request: Request) -> dict[str, str]:
    return dict(request.query_params.items())


@router.get("/okrs")
def okrs_page(page: ViewerPage) -> Response:
    """A cycle's objectives from the company down, with their key results and progress."""
    return _okrs_page(page, _query(page.request))


@router.post("/okrs/objectives")
def create_objective(page: EditorPage, posted: ObjectiveForm) -> Response:
    """Create an objective as `POST /api/v1/objectives` does; a refusal shows by its field."""
    values = posted.model_dump()
    body = {**values, "parent_key_result_id": posted.parent_key_result_id or None}

    def write() -> str:
        made = ObjectiveCreate.model_validate(body)
        obj = service.create_objective(page.session, made.model_dump(), page.principal.name)
        return f"/okrs?cycle_id={obj.cycle_id}#objective-{obj.id}"

    def again(form: FormState) -> Response:
        params = {"cycle_id": posted.cycle_id}
        return _okrs_page(page, params, form)

    return submit(page.session, AsNamed(), values, write, again, own_status=True)
