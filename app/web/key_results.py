"""The key-result page: its figures, a chart of the cycle, the points with the run behind each,
the check-in history and its mappings; editors check in, correct and delete check-ins here.

The same service calls as `/api/v1/key-results/{id}`, `/series` and `/check-ins`, so a refusal
reads as the API words it, beside the field it names.
"""

from __future__ import annotations

import functools
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.service import ROLE_RANK
from app.core import clock
from app.core.db import SessionDep
from app.core.errors import DomainError, InvalidInput, NotFound
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
from app.web.pages import PageUser, field_errors, num, page_principal, path_id, refusal, render

router = APIRouter(include_in_schema=False)

ViewerPage = Annotated[PageUser, Depends(page_principal("viewer"))]
EditorPage = Annotated[PageUser, Depends(page_principal("editor"))]
_CHECK_INS_SHOWN = 200
_MAPPINGS_SHOWN = 50
#: The latest points are listed; all of them are in the series CSV.
_POINTS_SHOWN = 62
#: Where a refusal that names no field of the form is shown.
FORM = "form"
_FIELDS = ("date", "value", "note", "confidence")
_SCORE_FIELDS = ("final_score", "final_score_note")


def _today() -> date:
    return clock.today()


def _form(date_: str, value: str, note: str, confidence: str) -> dict[str, Any]:
    """A form's strings as the API's JSON would carry them: an empty box is no value."""
    return {
        "date": date_.strip(),
        "value": value.strip() or None,
        "note": note,
        "confidence": confidence.strip() or None,
    }


def _page(
    request: Request,
    session: Session,
    user: PageUser,
    kr_id: int,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    edit_errors: dict[int, dict[str, str]] | None = None,
    edit_values: dict[int, dict[str, str]] | None = None,
    score_errors: dict[str, str] | None = None,
    score_values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    try:
        kr = service.get_key_result(session, kr_id) if kr_id else None
    except NotFound:
        kr = None
    if kr is None:
        raise refusal(
            request, 404, "No such key result", "It may have been deleted.", user.principal
        )
    objective = session.get(Objective, kr.objective_id)
    assert objective is not None  # the foreign keys cascade deletes
    cycle = session.get(Cycle, objective.cycle_id)
    assert cycle is not None
    today = _today()
    raw = service.key_results_progress(session, [kr], today).get(kr.id)
    progress = None if raw is None else ProgressRead.model_validate(raw, from_attributes=True)
    try:
        _, _, rows = service.series(session, kr.id, None, None)
    except InvalidInput:  # a cycle longer than a series read may span
        rows = []
    mappings, _ = sources_service.list_mappings(session, kr.id, None, _MAPPINGS_SHOWN, 0)
    by_mapping = {m.id: m for m in mappings}
    source_ids = {m.data_source_id for m in mappings}
    named = select(DataSource.id, DataSource.name).where(DataSource.id.in_(source_ids))
    names = dict(session.execute(named).all()) if source_ids else {}
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
    check_ins, total_check_ins = service.list_check_ins(session, kr.id, _CHECK_INS_SHOWN, 0)
    editor = ROLE_RANK[user.principal.role] >= ROLE_RANK["editor"]
    default_day = min(today, cycle.end_date).isoformat()
    context: dict[str, Any] = {
        "principal": user.principal,
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
        "is_admin": user.principal.role == "admin",
        "editor": editor,
        "mapped": bool(mappings),
        "errors": errors or {},
        "values": values or {"date": default_day, "value": "", "note": "", "confidence": ""},
        "edit_errors": edit_errors or {},
        "edit_values": edit_values or {},
        "score_errors": score_errors or {},
        "score_values": score_values
        or {
            "final_score": "" if kr.final_score is None else f"{kr.final_score:g}",
            "final_score_note": kr.final_score_note,
        },
    }
    return render(request, "key_results/show.html", context, status_code)


@router.get("/key-results/{kr_id}")
def key_result_page(
    request: Request, session: SessionDep, user: ViewerPage, kr_id: str
) -> Response:
    """One key result in full: where it stands, how it got there, and who said what."""
    return _page(request, session, user, path_id(kr_id))


@router.post("/key-results/{kr_id}/check-ins")
def check_in(
    request: Request,
    session: SessionDep,
    user: EditorPage,
    kr_id: str,
    date: Annotated[str, Form()] = "",
    value: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    confidence: Annotated[str, Form()] = "",
) -> Response:
    """Check in as `POST /api/v1/key-results/{id}/check-ins` does."""
    kid = path_id(kr_id)
    values = {"date": date, "value": value, "note": note, "confidence": confidence}
    try:
        body = CheckInCreate.model_validate(_form(date, value, note, confidence))
        if not kid:
            raise NotFound(f"key result {kr_id} not found")
        service.add_check_in(session, kid, body.model_dump(), user.principal.name)
    except ValidationError as exc:
        errors = field_errors(exc, FORM, _FIELDS)
    except NotFound:
        return _page(request, session, user, 0)
    except InvalidInput as exc:
        session.rollback()
        errors = {exc.field if exc.field in _FIELDS else FORM: exc.message}
    else:
        return RedirectResponse(f"/key-results/{kid}#check-ins", status_code=303)
    return _page(request, session, user, kid, errors=errors, values=values, status_code=422)


@router.post("/key-results/{kr_id}/final-score")
def final_score(
    request: Request,
    session: SessionDep,
    user: EditorPage,
    kr_id: str,
    final_score: Annotated[str, Form()] = "",
    final_score_note: Annotated[str, Form()] = "",
) -> Response:
    """Grade a closed key result as `PATCH /api/v1/key-results/{id}` with `final_score` and
    `final_score_note` does; an empty score box takes the grade away."""
    kid = path_id(kr_id)
    values = {"final_score": final_score, "final_score_note": final_score_note}
    try:
        body = KeyResultUpdate.model_validate(
            {"final_score": final_score.strip() or None, "final_score_note": final_score_note}
        )
        if not kid:
            raise NotFound(f"key result {kr_id} not found")
        service.update_key_result(
            session, kid, body.model_dump(exclude_unset=True), user.principal.name
        )
    except ValidationError as exc:
        errors = field_errors(exc, FORM, _SCORE_FIELDS)
        status_code = 422
    except NotFound:
        return _page(request, session, user, 0)
    except DomainError as exc:
        session.rollback()
        errors = {exc.field if exc.field in _SCORE_FIELDS else FORM: exc.message}
        status_code = exc.status_code
    else:
        return RedirectResponse(f"/key-results/{kid}#final-score", status_code=303)
    return _page(
        request,
        session,
        user,
        kid,
        score_errors=errors,
        score_values=values,
        status_code=status_code,
    )


@router.post("/key-results/{kr_id}/check-ins/{check_in_id}")
def edit_check_in(
    request: Request,
    session: SessionDep,
    user: EditorPage,
    kr_id: str,
    check_in_id: str,
    date: Annotated[str, Form()] = "",
    value: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    confidence: Annotated[str, Form()] = "",
) -> Response:
    """Correct a check-in as `PATCH .../check-ins/{id}` does; an empty value box takes the
    figure out and keeps the note and confidence."""
    kid, cid = path_id(kr_id), path_id(check_in_id)
    values = {"date": date, "value": value, "note": note, "confidence": confidence}
    try:
        body = CheckInUpdate.model_validate(_form(date, value, note, confidence))
        if not (kid and cid):
            raise NotFound(f"check-in {check_in_id} of key result {kr_id} not found")
        service.update_check_in(session, kid, cid, body.model_dump(), user.principal.name)
    except ValidationError as exc:
        errors = field_errors(exc, FORM, _FIELDS)
    except NotFound:
        return _gone(request, session, user, kid)
    except InvalidInput as exc:
        session.rollback()
        errors = {exc.field if exc.field in _FIELDS else FORM: exc.message}
    else:
        return RedirectResponse(f"/key-results/{kid}#check-in-{cid}", status_code=303)
    return _page(
        request,
        session,
        user,
        kid,
        edit_errors={cid: errors},
        edit_values={cid: values},
        status_code=422,
    )


@router.post("/key-results/{kr_id}/check-ins/{check_in_id}/delete")
def delete_check_in(
    request: Request, session: SessionDep, user: EditorPage, kr_id: str, check_in_id: str
) -> Response:
    """Delete a check-in as `DELETE .../check-ins/{id}` does: its day takes the value of the
    day's latest remaining check-in."""
    kid, cid = path_id(kr_id), path_id(check_in_id)
    try:
        if not (kid and cid):
            raise NotFound(f"check-in {check_in_id} of key result {kr_id} not found")
        service.delete_check_in(session, kid, cid, user.principal.name)
    except NotFound:
        return _gone(request, session, user, kid)
    return RedirectResponse(f"/key-results/{kid}#check-ins", status_code=303)


def _gone(request: Request, session: Session, user: PageUser, kid: int) -> Response:
    """An unknown key result, or a check-in gone since the page was read."""
    try:
        if kid:
            service.get_key_result(session, kid)
    except NotFound:
        kid = 0
    if not kid:
        return _page(request, session, user, 0)
    return refusal(
        request,
        404,
        "No such check-in",
        "It may have been deleted since the page was read.",
        user.principal,
    ).response
