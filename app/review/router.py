"""Closing a cycle over the API: retrospective, review export, quality findings, carry-over."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Response, status

from app.auth.deps import Editor, Viewer
from app.core import clock
from app.core.db import SessionDep
from app.core.schemas import (
    ERROR_RESPONSES,
    IdPath,
    IdQuery,
    IsoDate,
    KnownQueryOnly,
    Limit,
    Offset,
    Page,
)
from app.review import carry_over as carry_service
from app.review import export, retrospective
from app.review import service as review_service
from app.review.figures import FINAL_SCORES
from app.review.schemas import (
    CarriedItem,
    CarryOverRead,
    CarryOverRequest,
    CycleReviewRead,
    ObjectiveReviewRead,
    RetrospectiveCreate,
    RetrospectiveRead,
    RetrospectiveUpdate,
    ReviewFormat,
)

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

AsOf = Annotated[
    IsoDate | None,
    Query(description="Report figures as they stood on this day (default: today)"),
]
MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "md": "text/markdown; charset=utf-8",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _as_of(value: date | None) -> date:
    return value or clock.today()


def review_filename(cycle_id: int, name: str, fmt: str) -> str:
    """A file name any system saves as given: the cycle's name in safe characters."""
    slug = _UNSAFE.sub("-", name).strip("-.")[:80] or f"cycle-{cycle_id}"
    return f"review-{slug}.{fmt}"


# --- retrospective ----------------------------------------------------------------------------


@router.post(
    "/cycles/{cycle_id}/retrospective",
    status_code=status.HTTP_201_CREATED,
    tags=["closing a cycle"],
)
def create_retrospective_entry(
    cycle_id: IdPath, body: RetrospectiveCreate, session: SessionDep, who: Editor
) -> RetrospectiveRead:
    """Add a retrospective entry; its category must belong to its format."""
    entry = retrospective.create_entry(session, cycle_id, body.model_dump(), who.name)
    return RetrospectiveRead.model_validate(entry)


@router.get(
    "/cycles/{cycle_id}/retrospective",
    tags=["closing a cycle"],
    dependencies=[KnownQueryOnly],
)
def list_retrospective_entries(
    cycle_id: IdPath,
    session: SessionDep,
    who: Viewer,
    objective_id: IdQuery = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[RetrospectiveRead]:
    """A cycle's retrospective entries, in the order they were written."""
    rows, total = retrospective.list_entries(session, cycle_id, objective_id, limit, offset)
    return Page(items=[RetrospectiveRead.model_validate(r) for r in rows], total=total)


@router.patch("/cycles/{cycle_id}/retrospective/{entry_id}", tags=["closing a cycle"])
def update_retrospective_entry(
    cycle_id: IdPath,
    entry_id: IdPath,
    body: RetrospectiveUpdate,
    session: SessionDep,
    who: Editor,
) -> RetrospectiveRead:
    """Change a retrospective entry."""
    entry = retrospective.update_entry(
        session, cycle_id, entry_id, body.model_dump(exclude_unset=True), who.name
    )
    return RetrospectiveRead.model_validate(entry)


@router.delete(
    "/cycles/{cycle_id}/retrospective/{entry_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["closing a cycle"],
)
def delete_retrospective_entry(
    cycle_id: IdPath, entry_id: IdPath, session: SessionDep, who: Editor
) -> None:
    """Delete a retrospective entry."""
    retrospective.delete_entry(session, cycle_id, entry_id, who.name)


# --- review and findings ----------------------------------------------------------------------


def _final_scores_shown(review: CycleReviewRead) -> bytes:
    if FINAL_SCORES:
        return review.model_dump_json().encode()
    hidden = {
        "objectives": {"__all__": {"key_results": {"__all__": {"final_score", "final_score_note"}}}}
    }
    return review.model_dump_json(exclude=hidden).encode()


@router.get(
    "/cycles/{cycle_id}/review",
    tags=["closing a cycle"],
    response_model=CycleReviewRead,
    responses={
        200: {
            "content": {MEDIA_TYPES[f]: {} for f in ("csv", "xlsx", "md")},
            "description": "The review in the format asked for",
        }
    },
    dependencies=[KnownQueryOnly],
)
def get_cycle_review(
    cycle_id: IdPath,
    session: SessionDep,
    who: Viewer,
    format: Annotated[
        ReviewFormat, Query(description="`json`, `csv` (a row a key result), `xlsx` or `md`")
    ] = "json",
    as_of: AsOf = None,
) -> Response:
    """Every objective and key result with its figures, the retrospective, the quality findings
    and the cycle's statistics, as JSON, CSV, XLSX or Markdown."""
    review = review_service.cycle_review(session, cycle_id, _as_of(as_of))
    if format == "json":
        body = _final_scores_shown(review)
    elif format == "csv":
        body = export.to_csv(review).encode()
    elif format == "xlsx":
        body = export.to_xlsx(review)
    else:
        body = export.to_markdown(review).encode()
    headers = {}
    if format != "json":
        name = review_filename(cycle_id, review.cycle.name, format)
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return Response(content=body, media_type=MEDIA_TYPES[format], headers=headers)


@router.get(
    "/objectives/{objective_id}/review",
    tags=["closing a cycle"],
    dependencies=[KnownQueryOnly],
)
def get_objective_review(
    objective_id: IdPath, session: SessionDep, who: Viewer, as_of: AsOf = None
) -> ObjectiveReviewRead:
    """The quality findings of one objective and its key results, each saying what to change."""
    return review_service.objective_review(session, objective_id, _as_of(as_of))


# --- carry-over -------------------------------------------------------------------------------


@router.post("/cycles/{cycle_id}/carry-over", tags=["closing a cycle"])
def carry_over(
    cycle_id: IdPath,
    body: CarryOverRequest,
    background: BackgroundTasks,
    session: SessionDep,
    who: Editor,
) -> CarryOverRead:
    """Copy unfinished key results (default: those not `done` at the cycle's end) with their
    objectives and mappings into a later cycle; relative targets are measured afresh there."""
    done = carry_service.carry_over(session, background, cycle_id, body.model_dump(), who.name)

    def items(rows: list[tuple[int, int, bool]]) -> list[CarriedItem]:
        return [CarriedItem(carried_from_id=a, id=b, created=c) for a, b, c in rows]

    return CarryOverRead(
        from_cycle_id=cycle_id,
        to_cycle_id=body.to_cycle_id,
        objectives=items(done.objectives),
        key_results=items(done.key_results),
        mappings=items(done.mappings),
    )
