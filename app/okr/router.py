"""Cycles, objectives, key results, check-ins, series and the dashboard."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from app.auth.deps import Admin, Editor, Viewer
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
    Short,
)
from app.okr import freeze, service
from app.okr.schemas import (
    CheckInCreate,
    CheckInRead,
    CheckInUpdate,
    CycleCreate,
    CycleRead,
    CycleUpdate,
    DashboardRead,
    KeyResultCreate,
    KeyResultRead,
    KeyResultUpdate,
    Level,
    ObjectiveCreate,
    ObjectiveRead,
    ObjectiveUpdate,
    SeriesPoint,
    SeriesRead,
    Status,
)

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

AsOf = Annotated[
    IsoDate | None,
    Query(description="Report progress as it stood on this day (default: today)"),
]
Cascade = Annotated[bool, Query(description="Also delete everything the object holds")]


def _as_of(value: date | None) -> date:
    return value or clock.today()


def _json(body: bytes) -> Response:
    return Response(content=body, media_type="application/json")


# --- cycles -----------------------------------------------------------------------------------


@router.post("/cycles", status_code=status.HTTP_201_CREATED, tags=["cycles"])
def create_cycle(body: CycleCreate, session: SessionDep, who: Editor) -> CycleRead:
    """Create a cycle (a quarter, usually); both dates are inclusive."""
    return CycleRead.model_validate(service.create_cycle(session, body.model_dump(), who.name))


@router.get("/cycles", tags=["cycles"], dependencies=[KnownQueryOnly])
def list_cycles(
    session: SessionDep, who: Viewer, limit: Limit = 50, offset: Offset = 0
) -> Page[CycleRead]:
    """List cycles, latest first."""
    rows, total = service.list_cycles(session, limit, offset)
    return Page(items=[CycleRead.model_validate(r) for r in rows], total=total)


@router.get("/cycles/{cycle_id}", tags=["cycles"])
def get_cycle(cycle_id: IdPath, session: SessionDep, who: Viewer) -> CycleRead:
    """Read a cycle."""
    return CycleRead.model_validate(service.get_cycle(session, cycle_id))


@router.patch("/cycles/{cycle_id}", tags=["cycles"])
def update_cycle(
    cycle_id: IdPath, body: CycleUpdate, session: SessionDep, who: Editor
) -> CycleRead:
    """Change a cycle's name or dates."""
    cycle = service.update_cycle(session, cycle_id, body.model_dump(exclude_unset=True), who.name)
    return CycleRead.model_validate(cycle)


@router.delete("/cycles/{cycle_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["cycles"])
def delete_cycle(
    cycle_id: IdPath, session: SessionDep, who: Editor, cascade: Cascade = False
) -> None:
    """Delete a cycle; objectives need `?cascade=true`, mappings under them an admin."""
    service.delete_cycle(session, cycle_id, cascade, who)


@router.post("/cycles/{cycle_id}/close", tags=["cycles"])
def close_cycle(cycle_id: IdPath, session: SessionDep, who: Editor) -> CycleRead:
    """Close a cycle: every key result's and objective's figures are frozen as they stand
    (today, or on the cycle's last day once it is over); 409 if it is already closed."""
    return CycleRead.model_validate(freeze.close_cycle(session, cycle_id, who.name))


@router.post("/cycles/{cycle_id}/reopen", tags=["cycles"])
def reopen_cycle(cycle_id: IdPath, session: SessionDep, who: Admin) -> CycleRead:
    """Reopen a closed cycle: the frozen figures are dropped and reads compute live ones
    again (final scores are kept); 409 if it is open."""
    return CycleRead.model_validate(freeze.reopen_cycle(session, cycle_id, who.name))


# --- objectives -------------------------------------------------------------------------------


@router.post("/objectives", status_code=status.HTTP_201_CREATED, tags=["objectives"])
def create_objective(
    body: ObjectiveCreate, session: SessionDep, who: Editor, as_of: AsOf = None
) -> ObjectiveRead:
    """Create an objective, optionally aligned to a parent key result."""
    obj = service.create_objective(session, body.model_dump(), who.name)
    return service.objective_reads(session, [obj], _as_of(as_of))[0]


@router.get("/objectives", tags=["objectives"], dependencies=[KnownQueryOnly])
def list_objectives(
    session: SessionDep,
    who: Viewer,
    cycle_id: IdQuery = None,
    team: Annotated[Short | None, Query(description="Only this team's (exact name)")] = None,
    owner: Annotated[Short | None, Query(description="Only this owner's (exact name)")] = None,
    level: Annotated[Level | None, Query(description="Only this level")] = None,
    as_of: AsOf = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[ObjectiveRead]:
    """List objectives with their key results and progress; filters combine with AND."""
    where = service.ObjectiveFilter(cycle_id=cycle_id, team=team, owner=owner, level=level)
    rows, total = service.list_objectives(session, where, limit, offset)
    return Page(items=service.objective_reads(session, rows, _as_of(as_of)), total=total)


@router.get("/objectives/{objective_id}", tags=["objectives"], response_model=ObjectiveRead)
async def get_objective(
    objective_id: IdPath, session: SessionDep, who: Viewer, as_of: AsOf = None
) -> Response:
    """Read an objective with its progress and its key results."""
    return _json(await service.objective_json(session, objective_id, _as_of(as_of)))


@router.patch("/objectives/{objective_id}", tags=["objectives"])
def update_objective(
    objective_id: IdPath,
    body: ObjectiveUpdate,
    session: SessionDep,
    who: Editor,
    as_of: AsOf = None,
) -> ObjectiveRead:
    """Change an objective, its cycle or its alignment."""
    obj = service.update_objective(
        session, objective_id, body.model_dump(exclude_unset=True), who.name
    )
    return service.objective_reads(session, [obj], _as_of(as_of))[0]


@router.delete(
    "/objectives/{objective_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["objectives"]
)
def delete_objective(
    objective_id: IdPath, session: SessionDep, who: Editor, cascade: Cascade = False
) -> None:
    """Delete an objective; key results need `?cascade=true`, mappings under them an admin."""
    service.delete_objective(session, objective_id, cascade, who)


# --- key results ------------------------------------------------------------------------------


@router.post("/key-results", status_code=status.HTTP_201_CREATED, tags=["key results"])
def create_key_result(
    body: KeyResultCreate, session: SessionDep, who: Editor, as_of: AsOf = None
) -> KeyResultRead:
    """Create a key result."""
    kr = service.create_key_result(session, body.model_dump(), who.name)
    progress = service.key_results_progress(session, [kr], _as_of(as_of))
    return service.key_result_reads(session, [kr], progress)[0]


@router.get("/key-results", tags=["key results"], dependencies=[KnownQueryOnly])
def list_key_results(
    session: SessionDep,
    who: Viewer,
    objective_id: IdQuery = None,
    owner: Annotated[Short | None, Query(description="Only this owner's (exact name)")] = None,
    status: Annotated[
        Status | None, Query(description="Only those with this status on `as_of` (today)")
    ] = None,
    as_of: AsOf = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[KeyResultRead]:
    """List key results with their progress; filters combine with AND."""
    where = service.KeyResultFilter(objective_id=objective_id, owner=owner, status=status)
    rows, progress, total = service.list_key_results(session, where, _as_of(as_of), limit, offset)
    return Page(items=service.key_result_reads(session, rows, progress), total=total)


@router.get("/key-results/{kr_id}", tags=["key results"], response_model=KeyResultRead)
async def get_key_result(
    kr_id: IdPath, session: SessionDep, who: Viewer, as_of: AsOf = None
) -> Response:
    """Read a key result with its progress block."""
    return _json(await service.key_result_json(session, kr_id, _as_of(as_of)))


@router.patch("/key-results/{kr_id}", tags=["key results"])
def update_key_result(
    kr_id: IdPath, body: KeyResultUpdate, session: SessionDep, who: Editor, as_of: AsOf = None
) -> KeyResultRead:
    """Change a key result's definition."""
    kr = service.update_key_result(session, kr_id, body.model_dump(exclude_unset=True), who.name)
    progress = service.key_results_progress(session, [kr], _as_of(as_of))
    return service.key_result_reads(session, [kr], progress)[0]


@router.delete("/key-results/{kr_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["key results"])
def delete_key_result(
    kr_id: IdPath, session: SessionDep, who: Editor, cascade: Cascade = False
) -> None:
    """Delete a key result; check-ins or mappings need `?cascade=true`, mappings an admin."""
    service.delete_key_result(session, kr_id, cascade, who)


@router.post(
    "/key-results/{kr_id}/check-ins", status_code=status.HTTP_201_CREATED, tags=["check-ins"]
)
def create_check_in(
    kr_id: IdPath, body: CheckInCreate, session: SessionDep, who: Editor
) -> CheckInRead:
    """Record a check-in; a later value replaces the day's; a mapped key result takes none."""
    row = service.add_check_in(session, kr_id, body.model_dump(), who.name)
    return CheckInRead.model_validate(row)


@router.get("/key-results/{kr_id}/check-ins", tags=["check-ins"], dependencies=[KnownQueryOnly])
def list_check_ins(
    kr_id: IdPath, session: SessionDep, who: Viewer, limit: Limit = 50, offset: Offset = 0
) -> Page[CheckInRead]:
    """The check-in history, latest first."""
    rows, total = service.list_check_ins(session, kr_id, limit, offset)
    return Page(items=[CheckInRead.model_validate(r) for r in rows], total=total)


@router.patch("/key-results/{kr_id}/check-ins/{check_in_id}", tags=["check-ins"])
def update_check_in(
    kr_id: IdPath, check_in_id: IdPath, body: CheckInUpdate, session: SessionDep, who: Editor
) -> CheckInRead:
    """Correct a check-in; the days it touches take their latest remaining check-in's value."""
    row = service.update_check_in(
        session, kr_id, check_in_id, body.model_dump(exclude_unset=True), who.name
    )
    return CheckInRead.model_validate(row)


@router.delete(
    "/key-results/{kr_id}/check-ins/{check_in_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["check-ins"],
)
def delete_check_in(kr_id: IdPath, check_in_id: IdPath, session: SessionDep, who: Editor) -> None:
    """Delete a check-in; its day takes the value of the day's latest remaining check-in."""
    service.delete_check_in(session, kr_id, check_in_id, who.name)


@router.get(
    "/key-results/{kr_id}/series",
    tags=["key results"],
    response_model=SeriesRead,
    responses={200: {"content": {"text/csv": {}}}},
)
def get_series(
    kr_id: IdPath,
    session: SessionDep,
    who: Viewer,
    from_: Annotated[IsoDate | None, Query(alias="from")] = None,
    to: IsoDate | None = None,
    format: Literal["json", "csv"] = "json",
) -> SeriesRead | Response:
    """Daily observations (JSON or CSV), each traceable to the sync run that wrote it; a
    `provisional` one is inside its metric's `settle_days` and may still be restated."""
    start, end, rows = service.series(session, kr_id, from_, to)
    if format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(
            ["date", "group", "role", "value", "mapping_id", "sync_run_id", "provisional"]
        )
        for day, group, role, value, mapping_id, run_id, provisional, _frozen in rows:
            writer.writerow(
                [
                    day.isoformat(),
                    group,
                    role,
                    repr(float(value)),
                    mapping_id,
                    run_id,
                    "true" if provisional else "false",
                ]
            )
        return Response(
            content=buffer.getvalue(),
            media_type="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="key-result-{kr_id}-series.csv"'
            },
        )
    points = [
        SeriesPoint(
            date=d, group=g, role=r, value=v, mapping_id=m, sync_run_id=s, provisional=p, frozen=f
        )
        for d, g, r, v, m, s, p, f in rows
    ]
    frozen = service.cycle_of_key_result(session, kr_id).closed_at is not None
    return SeriesRead(key_result_id=kr_id, from_=start, to=end, frozen=frozen, points=points)


# --- dashboard --------------------------------------------------------------------------------


@router.get("/dashboard", tags=["dashboard"], response_model=DashboardRead)
async def get_dashboard(
    session: SessionDep, who: Viewer, cycle_id: IdQuery = None, as_of: AsOf = None
) -> Response:
    """Every objective of a cycle (default: the current one) with key results and progress."""
    return _json(await service.dashboard_json(session, cycle_id, _as_of(as_of)))
