"""Carrying a cycle's unfinished key results into the next one, in the browser (SPEC section 8).

The page lists every key result of the cycle with its objective and the figures the carry-over
itself reads ("unfinished" as the cycle ended, the frozen figures once it is closed), the ones
not `done` ticked, so the person sees what goes before it goes. The post is the API's
`POST /api/v1/cycles/{id}/carry-over` with the ticked ids: the same schema and service, so a
refusal (the cycle itself, an earlier one, a key result of another cycle) reads as the API
words it. Done, the person lands on the target cycle's OKRs, which say what came over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.models import Cycle, KeyResult, Objective
from app.okr import service as okr_service
from app.review import carry_over as carry_service
from app.review.figures import KeyResultFigures, review_figures
from app.review.schemas import CarryOverRequest
from app.web.forms import Exact, FormState, cycle_or_404, render_form, submit
from app.web.pages import EditorPage, Page

router = APIRouter(include_in_schema=False)

FIELDS = Exact(("to_cycle_id", "key_result_ids"))
_MAX_CYCLES = 200


@dataclass(frozen=True)
class Candidate:
    """A key result as the checklist shows it: what it is, where it sits, how it ended."""

    kr: KeyResult
    objective: Objective
    figures: KeyResultFigures | None

    @property
    def unfinished(self) -> bool:
        """Ticked at first: what the API carries when no key results are named."""
        return carry_service.unfinished(self.figures)


def next_cycle(cycle: Cycle, others: list[Cycle]) -> Cycle | None:
    """The cycle that follows: the first to start after this one starts."""
    later = [c for c in others if c.start_date > cycle.start_date]
    return min(later, key=lambda c: (c.start_date, c.id), default=None)


def _candidates(session: Session, cycle: Cycle) -> list[Candidate]:
    objectives = okr_service.cycle_objectives(session, cycle.id)
    figures = review_figures(session, cycle, cycle.end_date, objectives)
    return [
        Candidate(kr, obj, figures.key_result.get(kr.id))
        for obj in objectives
        for kr in obj.key_results
    ]


def _page(page: Page, cycle: Cycle, form: FormState | None = None) -> Response:
    listed, _ = okr_service.list_cycles(page.session, _MAX_CYCLES, 0)
    others = sorted((c for c in listed if c.id != cycle.id), key=lambda c: (c.start_date, c.id))
    candidates = _candidates(page.session, cycle)
    following = next_cycle(cycle, others)
    if form is None:
        form = FormState(
            {
                "to_cycle_id": str(following.id) if following else "",
                "key_result_ids": [str(c.kr.id) for c in candidates if c.unfinished],
            }
        )
    by_objective: dict[int, tuple[Objective, list[Candidate]]] = {}
    for c in candidates:
        by_objective.setdefault(c.objective.id, (c.objective, []))[1].append(c)
    context: dict[str, Any] = {
        "cycle": cycle,
        "others": others,
        "following": following,
        "groups": list(by_objective.values()),
        "total": len(candidates),
        "unfinished": sum(c.unfinished for c in candidates),
    }
    return render_form(page, "cycles/carry_over.html", form, context)


@router.get("/cycles/{cycle_id}/carry-over")
def carry_over_page(page: EditorPage, cycle_id: str) -> Response:
    """Pick the next cycle and the key results to carry into it; the unfinished are ticked."""
    return _page(page, cycle_or_404(page, cycle_id))


@router.post("/cycles/{cycle_id}/carry-over")
def carry_over(
    page: EditorPage,
    background: BackgroundTasks,
    cycle_id: str,
    to_cycle_id: Annotated[str, Form()] = "",
    key_result_ids: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Carry over as `POST /api/v1/cycles/{id}/carry-over` does, with the ticked key results."""
    cycle = cycle_or_404(page, cycle_id)
    # The checklist is always an explicit choice: nothing ticked is refused as the API refuses
    # an empty list, never read as "the default".
    values: dict[str, Any] = {"to_cycle_id": to_cycle_id, "key_result_ids": key_result_ids or []}

    def write() -> str:
        body = CarryOverRequest.model_validate(
            {"to_cycle_id": to_cycle_id.strip() or None, "key_result_ids": values["key_result_ids"]}
        )
        carry_service.carry_over(
            page.session, background, cycle.id, body.model_dump(), page.principal.name
        )
        return f"/okrs?cycle_id={body.to_cycle_id}&carried_from={cycle.id}"

    def again(form: FormState) -> Response:
        return _page(page, cycle_or_404(page, cycle_id), form)

    return submit(page.session, FIELDS, values, write, again)
