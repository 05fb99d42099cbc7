"""The key-result page: its figures, a chart of the cycle, the points with the run behind each,
the check-in history and its mappings; editors check in, correct and delete check-ins here.

The same service calls as `/api/v1/key-results/{id}`, `/series` and `/check-ins`, so a refusal
reads as the API words it, beside the field it names.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy import select

from app.core import clock
from app.core.errors import InvalidInput, NotFound
from app.models import Cycle, DataSource, Objective
from app.okr import service
from app.okr.schemas import (
    CheckInCreate,
    CheckInRead,
    CheckInUpdate,
    KeyResultUpdate,
    ProgressRead,
)
from app.sources import service as sources_service
from app.web import kr_chart
from app.web.forms import Exact, FormState, submit
from app.web.pages import (
    EditorPage,
    Page,
    ViewerPage,
    num,
    path_id,
)

router = APIRouter(include_in_schema=False)

_CHECK_INS_SHOWN = 200
_MAPPINGS_SHOWN = 50
#: The latest points are listed; all of them are in the series CSV.
_POINTS_SHOWN = 62
_FIELDS = Exact(("date", "value", "note", "confidence"))
_SCORE_FIELDS = Exact(("final_score", "final_score_note"))


def _today() -> date:
    return clock.today()


class CheckInFields(BaseModel):
    """The check-in form's boxes as the browser posts them (blank when left out)."""

    date: str = ""
    value: str = ""
    note: str = ""
    confidence: str = ""


class ScoreFields(BaseModel):
    """The final score form's boxes as the browser posts them (blank when left out)."""

    final_score: str = ""
    final_score_note: str = ""


CheckInForm = Annotated[CheckInFields, Form()]
ScoreForm = Annotated[ScoreFields, Form()]


def _check_in_body(values: dict[str, str]) -> dict[str, Any]:
    """A form's strings as the API's JSON would carry them: an empty box is no value."""
    return {
        "date": values["date"].strip(),
        "value": values["value"].strip() or None,
        "note": values["note"],
        "confidence": values["confidence"].strip() or None,
    }


def _page(
    page: Page,
    kr_id: int,
    *,
    form: FormState | None = None,
    edited: tuple[int, FormState] | None = None,
    score: FormState | None = None,
) -> Response:
    """The page; a refused check-in in ``form``, a refused correction in ``edited``, a refused
    grade in ``score``."""
    try:
        kr = service.get_key_result(page.session, kr_id) if kr_id else None
    except NotFound:
        kr = None
    if kr is None:
        raise page.refuse(404, "No such key result", "It may have been deleted.")
    objective = page.session.get(Objective, kr.objective_id)
    assert objective is not None  # the foreign keys cascade deletes
    cycle = page.session.get(Cycle, objective.cycle_id)
    assert cycle is not None
    today = _today()
    raw = service.key_results_progress(page.session, [kr], today).get(kr.id)
    progress = None if raw is None else ProgressRead.model_validate(raw, from_attributes=True)
    try:
        _, _, rows = service.series(page.session, kr.id, None, None)
    except InvalidInput:  # a cycle longer than a series read may span
        rows = []
    mappings, _ = sources_service.list_mappings(page.session, kr.id, None, _MAPPINGS_SHOWN, 0)
    by_mapping = {m.id: m for m in mappings}
    source_ids = {m.data_source_id for m in mappings}
    named = select(DataSource.id, DataSource.name).where(DataSource.id.in_(source_ids))
    names = dict(page.session.execute(named).all()) if source_ids else {}
    points = [
        {
            "date": day,
            "group": group,
            "role": role,
            "value": float(value),
            "mapping": by_mapping.get(mapping_id) if mapping_id is not None else None,
            "run_id": run_id,
            "provisional": provisional,
            "frozen": frozen,
        }
        for day, group, role, value, mapping_id, run_id, provisional, frozen in rows
    ]
    line = kr_chart.daily_line(
        kr.aggregation,
        (
            kr_chart.DayValue(p["date"], p["group"], p["role"], p["value"], p["provisional"])
            for p in points
            if p["date"] >= cycle.start_date
        ),
    )
    draw = functools.partial(
        kr_chart.build,
        start=cycle.start_date,
        end=cycle.end_date,
        as_of=today,
        line=line,
        aggregation=kr.aggregation,
        direction=kr.direction,
        start_value=progress.start_value if progress else kr.start_value,
        target_value=progress.target_value if progress else kr.target_value,
        forecast_value=progress.forecast_value if progress else None,
        provisional_from=progress.provisional_from if progress else None,
        number=num,
    )
    charts = [draw(size=size) for size in (kr_chart.WIDE, kr_chart.NARROW)]
    check_ins, total_check_ins = service.list_check_ins(page.session, kr.id, _CHECK_INS_SHOWN, 0)
    editor = page.at_least("editor")
    default_day = min(today, cycle.end_date).isoformat()
    context: dict[str, Any] = {
        "principal": page.principal,
        "kr": kr,
        "objective": objective,
        "cycle": cycle,
        "progress": progress,
        "charts": charts,
        "points": points[-_POINTS_SHOWN:][::-1],
        "total_points": len(points),
        "check_ins": [CheckInRead.model_validate(c) for c in check_ins],
        "total_check_ins": total_check_ins,
        "mappings": mappings,
        "source_names": names,
        "is_admin": page.principal.role == "admin",
        "editor": editor,
        "mapped": bool(mappings),
        "errors": form.errors if form else {},
        "values": form.values
        if form
        else {"date": default_day, "value": "", "note": "", "confidence": ""},
        "edit_errors": {edited[0]: edited[1].errors} if edited else {},
        "edit_values": {edited[0]: edited[1].values} if edited else {},
        "score_errors": score.errors if score else {},
        "score_values": score.values
        if score
        else {
            "final_score": "" if kr.final_score is None else f"{kr.final_score:g}",
            "final_score_note": kr.final_score_note,
        },
    }
    refused = form or score or (edited[1] if edited else None)
    return page.render("key_results/show.html", context, refused.status_code if refused else 200)


@router.get("/key-results/{kr_id}")
def key_result_page(page: ViewerPage, kr_id: str) -> Response:
    """One key result in full: where it stands, how it got there, and who said what."""
    return _page(page, path_id(kr_id))


def _again(page: Page, kid: int, box: Literal["form", "score"]) -> Callable[[FormState], Response]:
    """The key result's page again, with what was typed in the form that was refused."""

    def again(form: FormState) -> Response:
        if box == "score":
            return _page(page, kid, score=form)
        return _page(page, kid, form=form)

    return again


@router.post("/key-results/{kr_id}/check-ins")
def check_in(page: EditorPage, kr_id: str, posted: CheckInForm) -> Response:
    """Check in as `POST /api/v1/key-results/{id}/check-ins` does."""
    kid = path_id(kr_id)
    values = posted.model_dump()

    def write() -> str:
        body = CheckInCreate.model_validate(_check_in_body(values))
        if not kid:
            raise NotFound(f"key result {kr_id} not found")
        service.add_check_in(page.session, kid, body.model_dump(), page.principal.name)
        return f"/key-results/{kid}#check-ins"

    again = _again(page, kid, "form")
    gone = functools.partial(_page, page, 0)
    return submit(page.session, _FIELDS, values, write, again, catch=InvalidInput, gone=gone)


@router.post("/key-results/{kr_id}/final-score")
def final_score(page: EditorPage, kr_id: str, posted: ScoreForm) -> Response:
    """Grade a closed key result as `PATCH /api/v1/key-results/{id}` with `final_score` and
    `final_score_note` does; an empty score box takes the grade away."""
    kid = path_id(kr_id)
    values = posted.model_dump()

    def write() -> str:
        score = posted.final_score.strip() or None
        body = KeyResultUpdate.model_validate({**values, "final_score": score})
        if not kid:
            raise NotFound(f"key result {kr_id} not found")
        changes = body.model_dump(exclude_unset=True)
        service.update_key_result(page.session, kid, changes, page.principal.name)
        return f"/key-results/{kid}#final-score"

    again = _again(page, kid, "score")
    gone = functools.partial(_page, page, 0)
    return submit(page.session, _SCORE_FIELDS, values, write, again, own_status=True, gone=gone)


@router.post("/key-results/{kr_id}/check-ins/{check_in_id}")
def edit_check_in(page: EditorPage, kr_id: str, check_in_id: str, posted: CheckInForm) -> Response:
    """Correct a check-in as `PATCH .../check-ins/{id}` does; an empty value box takes the
    figure out and keeps the note and confidence."""
    kid, cid = path_id(kr_id), path_id(check_in_id)
    values = posted.model_dump()

    def write() -> str:
        body = CheckInUpdate.model_validate(_check_in_body(values))
        if not (kid and cid):
            raise NotFound(f"check-in {check_in_id} of key result {kr_id} not found")
        service.update_check_in(page.session, kid, cid, body.model_dump(), page.principal.name)
        return f"/key-results/{kid}#check-in-{cid}"

    def again(form: FormState) -> Response:
        return _page(page, kid, edited=(cid, form))

    gone = functools.partial(_gone, page, kid)
    return submit(page.session, _FIELDS, values, write, again, catch=InvalidInput, gone=gone)


@router.post("/key-results/{kr_id}/check-ins/{check_in_id}/delete")
def delete_check_in(page: EditorPage, kr_id: str, check_in_id: str) -> Response:
    """Delete a check-in as `DELETE .../check-ins/{id}` does: its day takes the value of the
    day's latest remaining check-in."""
    kid, cid = path_id(kr_id), path_id(check_in_id)
    try:
        if not (kid and cid):
            raise NotFound(f"check-in {check_in_id} of key result {kr_id} not found")
        service.delete_check_in(page.session, kid, cid, page.principal.name)
    except NotFound:
        return _gone(page, kid)
    return RedirectResponse(f"/key-results/{kid}#check-ins", status_code=303)


def _gone(page: Page, kid: int) -> Response:
    """An unknown key result, or a check-in gone since the page was read."""
    try:
        if kid:
            service.get_key_result(page.session, kid)
    except NotFound:
        kid = 0
    if not kid:
        return _page(page, 0)
    return page.refuse(
        404, "No such check-in", "It may have been deleted since the page was read."
    ).response
