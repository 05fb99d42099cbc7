"""Closing and reopening a cycle (SPEC section 8): the figures frozen at the close.

Closing computes every key result's and objective's progress once, as every read computes it,
and stores the whole read on the row (`frozen_progress`), with the sync runs whose points made
each key result's figures. From then on the progress calculator answers the stored read for a
closed cycle instead of computing one, so a later sync, backfill or check-in changes no read of
it (and a frozen read is cheaper than a live one). Reopening drops the stored reads: the live
figures come back.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import fields
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from app.auth.service import audit
from app.core import clock
from app.core.errors import Conflict
from app.models import Cycle, KeyResult, Objective, Observation
from app.notify.events import emit
from app.progress import GroupProgress, ObjectiveProgress, Progress

_DATES = ("as_of", "last_observation_date", "provisional_from")


def progress_json(p: Progress | ObjectiveProgress) -> dict[str, Any]:
    """The read as JSON (dates as ISO text), from the dataclass's own fields."""
    out: dict[str, Any] = {}
    for f in fields(p):
        value = getattr(p, f.name)
        if isinstance(value, date):
            value = value.isoformat()
        elif f.name == "groups":
            value = [
                {"group": g.group, "current_value": g.current_value, "progress": g.progress}
                for g in value
            ]
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def _known(cls: type[Any], stored: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    values = {k: v for k, v in stored.items() if k in names}
    for key in _DATES:
        if isinstance(values.get(key), str):
            values[key] = date.fromisoformat(values[key])
    values["frozen"] = True
    return values


def frozen_key_result(stored: dict[str, Any]) -> Progress:
    values = _known(Progress, stored)
    values["groups"] = tuple(GroupProgress(**g) for g in values.get("groups") or ())
    runs = values.get("sync_run_ids")
    values["sync_run_ids"] = tuple(runs) if runs is not None else ()
    return Progress(**values)


def frozen_objective(stored: dict[str, Any]) -> ObjectiveProgress:
    return ObjectiveProgress(**_known(ObjectiveProgress, stored))


def close_as_of(cycle: Cycle) -> date:
    """The day the frozen figures are read on: today, or the cycle's last day once it is over."""
    return min(clock.today(), cycle.end_date)


def _runs_behind(
    session: Session, cycle: Cycle, krs: list[KeyResult], as_of: date
) -> dict[int, list[int]]:
    """The sync runs whose points lie in each key result's window (and baseline window, for a
    relative target) on `as_of`: one statement."""
    if not krs or as_of < cycle.start_date:
        return {}
    end = min(as_of, cycle.end_date)
    length = (end - cycle.start_date).days + 1
    relative = [k.id for k in krs if k.start_value is None and k.target_change_pct is not None]
    in_window = and_(Observation.date >= cycle.start_date, Observation.date <= end)
    windows = in_window
    if relative:
        windows = or_(
            in_window,
            and_(
                Observation.key_result_id.in_(relative),
                Observation.date >= cycle.start_date - timedelta(days=length),
                Observation.date < cycle.start_date,
            ),
        )
    rows = session.execute(
        select(Observation.key_result_id, Observation.sync_run_id)
        .where(
            Observation.key_result_id.in_([k.id for k in krs]),
            Observation.sync_run_id.is_not(None),
            windows,
        )
        .distinct()
    ).all()
    runs: dict[int, list[int]] = defaultdict(list)
    for kr_id, run_id in sorted((int(k), int(r or 0)) for k, r in rows):
        runs[kr_id].append(run_id)
    return runs


def _cycle_data(cycle: Cycle) -> dict[str, Any]:
    return {
        "id": cycle.id,
        "name": cycle.name,
        "start_date": cycle.start_date.isoformat(),
        "end_date": cycle.end_date.isoformat(),
        "status": cycle.status,
        "closed_at": cycle.closed_at.isoformat() if cycle.closed_at else None,
    }


def _scope(cycle: Cycle, objectives: list[Objective]) -> dict[str, Any]:
    return {
        "cycle_id": cycle.id,
        "objective_id": [o.id for o in objectives],
        "team": sorted({o.team for o in objectives if o.team}),
        "owner": sorted(
            {o.owner for o in objectives if o.owner}
            | {kr.owner for o in objectives for kr in o.key_results if kr.owner}
        ),
    }


def close_cycle(session: Session, cycle_id: int, actor: str) -> Cycle:
    # Imported here: the service imports the calculator, which imports this module's readers.
    from app.okr import service

    cycle = service.get_cycle(session, cycle_id)
    if cycle.closed_at is not None:
        raise Conflict(
            f"cycle {cycle.id} is already closed (on {cycle.closed_at:%Y-%m-%d}); "
            "an admin reopens it first"
        )
    as_of = close_as_of(cycle)
    objectives = service.cycle_objectives(session, cycle.id)
    obj_p, kr_p = service.objectives_progress(session, objectives, as_of)
    krs = [kr for obj in objectives for kr in obj.key_results]
    runs = _runs_behind(session, cycle, krs, as_of)
    for obj in objectives:
        if obj.id in obj_p:
            obj.frozen_progress = progress_json(obj_p[obj.id])
    for kr in krs:
        if kr.id in kr_p:
            kr.frozen_progress = {
                **progress_json(kr_p[kr.id]),
                "sync_run_ids": runs.get(kr.id, []),
            }
    cycle.closed_at = clock.utcnow()
    session.flush()
    summary = {"as_of": as_of.isoformat(), "objectives": len(objectives), "key_results": len(krs)}
    audit(session, actor, "close", "cycle", cycle.id, summary)
    emit(
        session,
        "cycle.closed",
        {
            "cycle": _cycle_data(cycle),
            "closed_by": actor,
            "as_of": as_of.isoformat(),
            "objectives": [
                {
                    "id": o.id,
                    "title": o.title,
                    "team": o.team,
                    "progress": obj_p[o.id].progress if o.id in obj_p else None,
                    "score": obj_p[o.id].score if o.id in obj_p else None,
                    "status": obj_p[o.id].status if o.id in obj_p else None,
                }
                for o in objectives
            ],
        },
        _scope(cycle, objectives),
    )
    return cycle


def reopen_cycle(session: Session, cycle_id: int, actor: str) -> Cycle:
    from app.okr import service

    cycle = service.get_cycle(session, cycle_id)
    if cycle.closed_at is None:
        raise Conflict(f"cycle {cycle.id} is open: there is nothing to reopen")
    closed_at = cycle.closed_at
    objective_ids = select(Objective.id).where(Objective.cycle_id == cycle.id)
    session.execute(
        update(KeyResult)
        .where(KeyResult.objective_id.in_(objective_ids))
        .values(frozen_progress=None),
        execution_options={"synchronize_session": False},
    )
    session.execute(
        update(Objective).where(Objective.cycle_id == cycle.id).values(frozen_progress=None),
        execution_options={"synchronize_session": False},
    )
    cycle.closed_at = None
    session.flush()
    session.expire_all()
    audit(session, actor, "reopen", "cycle", cycle.id, {"closed_at": closed_at.isoformat()})
    objectives = service.cycle_objectives(session, cycle.id)
    # SPEC section 8: reopening raises `cycle.closed` too; `status: open` tells it apart.
    emit(
        session,
        "cycle.closed",
        {
            "cycle": _cycle_data(cycle),
            "reopened": True,
            "reopened_by": actor,
            "was_closed_at": closed_at.isoformat(),
        },
        _scope(cycle, objectives),
    )
    return cycle
