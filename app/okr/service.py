"""Cycles, objectives, key results, check-ins and series: the rules behind the routes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, String, cast, delete, func, literal, select, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased, selectinload, with_expression

from app.auth.service import ROLE_RANK, Principal, audit
from app.core import clock
from app.core.changes import apply_changes, jsonable, require_not_null
from app.core.db import child_or_404, equal_to, paged
from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound, found
from app.core.values import readable
from app.models import (
    CheckIn,
    Cycle,
    DataSource,
    KeyResult,
    Mapping,
    Objective,
    Observation,
    months,
)
from app.okr import cache
from app.okr.progress_service import ProgressCalculator, definition, provisional_days, span
from app.okr.schemas import (
    CycleRead,
    DashboardRead,
    KeyResultRead,
    ObjectiveProgressRead,
    ObjectiveRead,
    ProgressRead,
)
from app.progress import ObjectiveProgress, Progress, expected_progress, validate_definition

MAX_SERIES_DAYS = 3700


# --- cycles -----------------------------------------------------------------------------------


def get_cycle(session: Session, cycle_id: int) -> Cycle:
    return found(session.get(Cycle, cycle_id), f"cycle {cycle_id}")


def create_cycle(session: Session, data: dict[str, Any], actor: str) -> Cycle:
    cycle = Cycle(**data)
    session.add(cycle)
    session.flush()
    audit(session, actor, "create", "cycle", cycle.id, jsonable(data))
    return cycle


def list_cycles(session: Session, limit: int, offset: int) -> tuple[list[Cycle], int]:
    latest = (Cycle.start_date.desc(), Cycle.id)
    return paged(session, select(Cycle), [], *latest, limit=limit, offset=offset)


def update_cycle(session: Session, cycle_id: int, changes: dict[str, Any], actor: str) -> Cycle:
    require_not_null(changes, ["name", "start_date", "end_date"])
    cycle = get_cycle(session, cycle_id)
    start = changes.get("start_date", cycle.start_date)
    end = changes.get("end_date", cycle.end_date)
    if end < start:
        raise InvalidInput("end_date must be on or after start_date", field="end_date")
    diff = apply_changes(cycle, changes)
    session.flush()
    audit(session, actor, "update", "cycle", cycle.id, diff)
    return cycle


def delete_cycle(session: Session, cycle_id: int, cascade: bool, who: Principal) -> None:
    cycle = get_cycle(session, cycle_id)
    children = session.scalar(
        select(func.count()).select_from(Objective).where(Objective.cycle_id == cycle_id)
    )
    if children and not cascade:
        raise Conflict(
            f"cycle {cycle_id} still holds {children} objective(s); "
            "delete them first or pass ?cascade=true"
        )
    krs = (
        select(KeyResult.id)
        .join(Objective, Objective.id == KeyResult.objective_id)
        .where(Objective.cycle_id == cycle_id)
    )
    held = _held(session, krs)
    _require_admin_for_mappings(who, f"cycle {cycle_id}", held)
    session.execute(delete(Cycle).where(Cycle.id == cycle.id))
    audit(
        session,
        who.name,
        "delete",
        "cycle",
        cycle_id,
        {"cascade": cascade, "objectives": children or 0, **held},
    )


def current_cycle(session: Session, as_of: date) -> Cycle:
    """The cycle that holds `as_of`; else the latest that started before it; else the first."""
    cycle = (
        session.scalar(
            select(Cycle)
            .where(Cycle.start_date <= as_of, Cycle.end_date >= as_of)
            .order_by(Cycle.start_date.desc(), Cycle.id)
            .limit(1)
        )
        or session.scalar(
            select(Cycle)
            .where(Cycle.start_date <= as_of)
            .order_by(Cycle.start_date.desc())
            .limit(1)
        )
        or session.scalar(select(Cycle).order_by(Cycle.start_date).limit(1))
    )
    if cycle is None:
        raise NotFound("there is no cycle yet: create one with POST /api/v1/cycles")
    return cycle


# --- objectives -------------------------------------------------------------------------------


def _copies_of(model: type[Objective] | type[KeyResult]) -> Any:
    """The ids of what was carried over from each row, as one string column of the row's own
    statement: carry-over links cost a page no statement of its own."""
    copy = aliased(model)
    return (
        select(func.aggregate_strings(cast(copy.id, String), ","))
        .where(copy.carried_from_id == model.id)
        .scalar_subquery()
    )


def carried_to_ids(row: Objective | KeyResult) -> list[int]:
    """What a row loaded by the objective query was carried over to (empty if not loaded)."""
    csv = row.carried_to_csv
    return sorted(int(part) for part in csv.split(",") if part) if csv else []


def _objective_query() -> Any:
    return select(Objective).options(
        with_expression(Objective.carried_to_csv, _copies_of(Objective)),
        selectinload(Objective.key_results).with_expression(
            KeyResult.carried_to_csv, _copies_of(KeyResult)
        ),
        selectinload(Objective.cycle),
    )


def get_objective(session: Session, objective_id: int) -> Objective:
    obj: Objective | None = session.scalar(_objective_query().where(Objective.id == objective_id))
    return found(obj, f"objective {objective_id}")


def _check_cycle_ref(session: Session, cycle_id: int) -> None:
    if session.get(Cycle, cycle_id) is None:
        raise InvalidInput(f"cycle {cycle_id} does not exist", field="cycle_id")


def _check_alignment(session: Session, objective_id: int | None, parent_kr_id: int) -> None:
    """An objective may not be aligned, directly or through others, to one of its own KRs."""
    kr = session.get(KeyResult, parent_kr_id)
    if kr is None:
        raise InvalidInput(
            f"key result {parent_kr_id} does not exist", field="parent_key_result_id"
        )
    seen: set[int] = set()
    current: KeyResult | None = kr
    while current is not None and current.objective_id not in seen:
        if current.objective_id == objective_id:
            raise InvalidInput(
                "aligning this objective to that key result would make a loop "
                "(the key result belongs to this objective or to one aligned under it)",
                field="parent_key_result_id",
            )
        seen.add(current.objective_id)
        parent_obj = session.get(Objective, current.objective_id)
        nxt = parent_obj.parent_key_result_id if parent_obj else None
        current = session.get(KeyResult, nxt) if nxt is not None else None


def create_objective(session: Session, data: dict[str, Any], actor: str) -> Objective:
    _check_cycle_ref(session, data["cycle_id"])
    if data.get("parent_key_result_id") is not None:
        _check_alignment(session, None, data["parent_key_result_id"])
    obj = Objective(**data)
    session.add(obj)
    session.flush()
    audit(session, actor, "create", "objective", obj.id, jsonable(data))
    return get_objective(session, obj.id)


@dataclass(frozen=True)
class ObjectiveFilter:
    cycle_id: int | None = None
    team: str | None = None
    owner: str | None = None
    level: str | None = None


def list_objectives(
    session: Session, where: ObjectiveFilter, limit: int, offset: int
) -> tuple[list[Objective], int]:
    conditions = equal_to(
        (Objective.cycle_id, where.cycle_id),
        (Objective.team, where.team),
        (Objective.owner, where.owner),
        (Objective.level, where.level),
    )
    return paged(session, _objective_query(), conditions, Objective.id, limit=limit, offset=offset)


def update_objective(
    session: Session, objective_id: int, changes: dict[str, Any], actor: str
) -> Objective:
    require_not_null(changes, ["title", "description", "cycle_id", "owner", "level", "team"])
    obj = get_objective(session, objective_id)
    if "cycle_id" in changes:
        _check_cycle_ref(session, changes["cycle_id"])
    if changes.get("parent_key_result_id") is not None:
        _check_alignment(session, obj.id, changes["parent_key_result_id"])
    diff = apply_changes(obj, changes)
    session.flush()
    audit(session, actor, "update", "objective", obj.id, diff)
    session.expire(obj)
    return get_objective(session, obj.id)


def delete_objective(session: Session, objective_id: int, cascade: bool, who: Principal) -> None:
    obj = get_objective(session, objective_id)
    if obj.key_results and not cascade:
        raise Conflict(
            f"objective {objective_id} still holds {len(obj.key_results)} key result(s); "
            "delete them first or pass ?cascade=true"
        )
    held = _held(session, select(KeyResult.id).where(KeyResult.objective_id == objective_id))
    _require_admin_for_mappings(who, f"objective {objective_id}", held)
    session.execute(delete(Objective).where(Objective.id == objective_id))
    audit(
        session,
        who.name,
        "delete",
        "objective",
        objective_id,
        {"cascade": cascade, "key_results": len(obj.key_results), **held},
    )


# --- key results ------------------------------------------------------------------------------


def get_key_result(session: Session, kr_id: int) -> KeyResult:
    return found(session.get(KeyResult, kr_id), f"key result {kr_id}")


def _validate_kr(kr: KeyResult) -> None:
    problem = validate_definition(definition(kr))
    if problem:
        raise InvalidInput(problem)


def create_key_result(session: Session, data: dict[str, Any], actor: str) -> KeyResult:
    if session.get(Objective, data["objective_id"]) is None:
        raise InvalidInput(f"objective {data['objective_id']} does not exist", field="objective_id")
    kr = KeyResult(**data)
    _validate_kr(kr)
    session.add(kr)
    session.flush()
    audit(session, actor, "create", "key_result", kr.id, jsonable(data))
    _statuses_moved(session, kr.id)
    return kr


@dataclass(frozen=True)
class KeyResultFilter:
    objective_id: int | None = None
    owner: str | None = None
    status: str | None = None


def list_key_results(
    session: Session, where: KeyResultFilter, as_of: date, limit: int, offset: int
) -> tuple[list[KeyResult], dict[int, Progress], int]:
    """The page, the progress of its key results on `as_of`, and how many matched in all."""
    conditions = equal_to(
        (KeyResult.objective_id, where.objective_id), (KeyResult.owner, where.owner)
    )
    query = select(KeyResult).where(*conditions).order_by(KeyResult.id)
    if where.status is None:
        total = session.scalar(select(func.count()).select_from(KeyResult).where(*conditions))
        rows = list(session.scalars(query.limit(limit).offset(offset)).all())
        return rows, key_results_progress(session, rows, as_of), total or 0
    # A status is computed, not stored: every candidate's progress is computed (batched, a
    # fixed number of statements per cycle), then filtered, then paged, so `total` counts the
    # key results that match and not those the page happened to hold.
    candidates = list(session.scalars(query).all())
    progress = key_results_progress(session, candidates, as_of)
    matched = [
        kr for kr in candidates if kr.id in progress and progress[kr.id].status == where.status
    ]
    page = matched[offset : offset + limit]
    return page, {kr.id: progress[kr.id] for kr in page}, len(matched)


def update_key_result(
    session: Session, kr_id: int, changes: dict[str, Any], actor: str
) -> KeyResult:
    require_not_null(
        changes,
        [
            *("objective_id", "title", "owner", "unit", "kind", "direction"),
            *("aggregation", "group_rule", "weight"),
        ],
    )
    kr = get_key_result(session, kr_id)
    if {"final_score", "final_score_note"} & changes.keys():
        _check_final_score(session, kr, changes)
    if "objective_id" in changes and session.get(Objective, changes["objective_id"]) is None:
        raise InvalidInput(
            f"objective {changes['objective_id']} does not exist", field="objective_id"
        )
    diff = apply_changes(kr, changes)
    _validate_kr(kr)
    session.flush()
    if {"objective_id"} & diff.keys():
        aligned = session.scalars(
            select(Objective.id).where(Objective.parent_key_result_id == kr.id)
        ).all()
        for obj_id in aligned:
            _check_alignment(session, obj_id, kr.id)
    audit(session, actor, "update", "key_result", kr.id, diff)
    _statuses_moved(session, kr.id)
    return kr


def _check_final_score(session: Session, kr: KeyResult, changes: dict[str, Any]) -> None:
    """SPEC section 8: a key result is graded once its cycle is closed, never while it runs."""
    cycle = session.scalar(
        select(Cycle)
        .join(Objective, Objective.cycle_id == Cycle.id)
        .where(Objective.id == kr.objective_id)
    )
    if cycle is None or cycle.closed_at is None:
        field = "final_score" if "final_score" in changes else "final_score_note"
        name = f"“{cycle.name}”" if cycle else "its cycle"
        raise Conflict(
            f"a final score is given once the cycle is closed: close {name} first "
            "(its figures are then frozen), then grade the key result",
            field=field,
        )
    if "final_score_note" in changes and changes["final_score_note"] is None:
        changes["final_score_note"] = ""


def delete_key_result(session: Session, kr_id: int, cascade: bool, who: Principal) -> None:
    get_key_result(session, kr_id)
    held = _held(session, select(KeyResult.id).where(KeyResult.id == kr_id))
    if (held["mappings"] or held["check_ins"]) and not cascade:
        admins = " (mappings are managed by admins)" if held["mappings"] else ""
        raise Conflict(
            f"key result {kr_id} still holds {held['mappings']} mapping(s){admins} and "
            f"{held['check_ins']} check-in(s); delete them first or pass ?cascade=true"
        )
    _require_admin_for_mappings(who, f"key result {kr_id}", held)
    session.execute(delete(KeyResult).where(KeyResult.id == kr_id))
    audit(session, who.name, "delete", "key_result", kr_id, {"cascade": cascade, **held})


def _held(session: Session, key_results: Select[int]) -> dict[str, Any]:
    """What deleting these key results takes with them, for the role check and the audit."""
    krs = key_results.scalar_subquery()
    mapping_ids = list(
        session.scalars(
            select(Mapping.id).where(Mapping.key_result_id.in_(krs)).order_by(Mapping.id)
        )
    )

    def count(model: type[CheckIn | Observation]) -> int:
        where = model.key_result_id.in_(krs)
        return session.scalar(select(func.count()).select_from(model).where(where)) or 0

    return {
        "mappings": len(mapping_ids),
        "mapping_ids": mapping_ids,
        "check_ins": count(CheckIn),
        "observations": count(Observation),
    }


def _require_admin_for_mappings(who: Principal, what: str, held: dict[str, Any]) -> None:
    """Mappings are admin-managed (SPEC 3): an editor's cascade may not take them along."""
    if held["mappings"] and ROLE_RANK[who.role] < ROLE_RANK["admin"]:
        raise Forbidden(
            f"{what} holds {held['mappings']} mapping(s), which are managed by admins: "
            "an admin must delete them (or delete this with ?cascade=true)"
        )


@dataclass(frozen=True)
class Holdings:
    """What deleting a cycle, an objective or a key result takes along, so a person can be
    told before asking: the API refuses with 409 what holds anything without ``?cascade=true``
    and an editor's cascade that would take mappings with 403."""

    objectives: int
    key_results: int
    check_ins: int
    mappings: int
    observations: int
    #: Objectives elsewhere aligned to one of these key results: they keep living, unaligned.
    aligned: int


def holdings(session: Session, entity: str, entity_id: int) -> Holdings:
    """What deleting ``entity`` (``cycle``, ``objective`` or ``key_result``) would take along,
    in a fixed number of statements whatever it holds."""
    if entity == "cycle":
        objectives = select(Objective.id).where(Objective.cycle_id == entity_id)
        krs = select(KeyResult.id).where(KeyResult.objective_id.in_(objectives.scalar_subquery()))
    elif entity == "objective":
        objectives = select(Objective.id).where(Objective.id == entity_id)
        krs = select(KeyResult.id).where(KeyResult.objective_id == entity_id)
    else:
        objectives = select(Objective.id).where(Objective.id.is_(None))
        krs = select(KeyResult.id).where(KeyResult.id == entity_id)
    held = _held(session, krs)
    gone_objectives = objectives.scalar_subquery()
    counted = session.execute(
        select(
            select(func.count()).select_from(objectives.subquery()).scalar_subquery(),
            select(func.count()).select_from(krs.subquery()).scalar_subquery(),
            select(func.count())
            .select_from(Objective)
            .where(
                Objective.parent_key_result_id.in_(krs.scalar_subquery()),
                Objective.id.not_in(gone_objectives),
            )
            .scalar_subquery(),
        )
    ).one()
    return Holdings(
        objectives=counted[0],
        key_results=counted[1],
        check_ins=held["check_ins"],
        mappings=held["mappings"],
        observations=held["observations"],
        aligned=counted[2],
    )


def cycle_objective_counts(session: Session) -> dict[int, int]:
    """How many objectives each cycle holds, in one statement."""
    rows = session.execute(
        select(Objective.cycle_id, func.count()).group_by(Objective.cycle_id)
    ).all()
    return {int(cycle_id): int(count) for cycle_id, count in rows}


def carried_links(
    session: Session, objective_ids: Sequence[int], kr_ids: Sequence[int]
) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Where each objective and key result was carried over to (SPEC section 8), as
    `{id: [copy ids]}` for objectives and for key results: one statement for any number."""
    if not objective_ids and not kr_ids:
        return {}, {}
    rows = session.execute(
        union_all(
            select(literal("o"), Objective.carried_from_id, Objective.id).where(
                Objective.carried_from_id.in_(list(objective_ids))
            ),
            select(literal("k"), KeyResult.carried_from_id, KeyResult.id).where(
                KeyResult.carried_from_id.in_(list(kr_ids))
            ),
        )
    ).all()
    objectives: dict[int, list[int]] = {}
    key_results: dict[int, list[int]] = {}
    for kind, source, copy in sorted((str(k), int(s or 0), int(c)) for k, s, c in rows):
        (objectives if kind == "o" else key_results).setdefault(source, []).append(copy)
    return objectives, key_results


# --- progress ---------------------------------------------------------------------------------


def objectives_progress(
    session: Session, objectives: Sequence[Objective], as_of: date
) -> tuple[dict[int, ObjectiveProgress], dict[int, Progress]]:
    calc = ProgressCalculator(session, as_of)
    calc.run(objectives)
    return calc.obj_results, calc.kr_results


def key_results_progress(
    session: Session, krs: Sequence[KeyResult], as_of: date
) -> dict[int, Progress]:
    obj_ids = {kr.objective_id for kr in krs}
    if not obj_ids:
        return {}
    objectives = session.scalars(_objective_query().where(Objective.id.in_(obj_ids))).all()
    calc = ProgressCalculator(session, as_of)
    calc.run(objectives, only=[kr.id for kr in krs])
    return calc.kr_results


def resolve_cycle(session: Session, cycle_id: int | None, as_of: date) -> Cycle:
    return get_cycle(session, cycle_id) if cycle_id is not None else current_cycle(session, as_of)


def cycle_objectives(session: Session, cycle_id: int) -> list[Objective]:
    return list(
        session.scalars(
            _objective_query().where(Objective.cycle_id == cycle_id).order_by(Objective.id)
        ).all()
    )


# --- check-ins and series ---------------------------------------------------------------------


#: A check-in may be dated up to today in the earliest time zone on Earth (UTC+14), so nobody's
#: own today is refused, while a typo in the year still is.
EARLIEST_UTC_OFFSET = timedelta(hours=14)


def _latest_check_in_day() -> date:
    return (clock.utcnow() + EARLIEST_UTC_OFFSET).date()


def _check_in_cycle(session: Session, kr_id: int) -> Cycle:
    """The cycle of a key result that takes check-ins."""
    kr = get_key_result(session, kr_id)
    if kr.kind == "rollup":
        raise InvalidInput(
            "a roll-up key result takes its progress from the objectives aligned to it; "
            "check in on those instead"
        )
    cycle = session.scalar(
        select(Cycle)
        .join(Objective, Objective.cycle_id == Cycle.id)
        .where(Objective.id == kr.objective_id)
    )
    assert cycle is not None  # the foreign keys cascade deletes
    return cycle


def _check_in_date(cycle: Cycle, day: date) -> None:
    """Before the cycle a check-in feeds the baseline; after today or the cycle it is a typo."""
    if day > _latest_check_in_day():
        raise InvalidInput(
            f"a check-in can't be dated after today: no time zone has reached {day} yet",
            field="date",
        )
    if day > cycle.end_date:
        raise InvalidInput(
            f"{day} is after the end of cycle {cycle.name!r} ({cycle.end_date}): check in on a "
            "key result of the cycle that holds that day, or correct the date",
            field="date",
        )


def _refuse_value_on_mapped(session: Session, kr_id: int) -> None:
    """SPEC 1: a hand-typed figure is never added to the figures a source syncs."""
    sources = session.execute(
        select(Mapping.id, DataSource.name)
        .join(DataSource, DataSource.id == Mapping.data_source_id)
        .where(Mapping.key_result_id == kr_id)
        .order_by(Mapping.id)
    ).all()
    if not sources:
        return
    named = " and ".join(f"`{name}` (mapping {mid})" for mid, name in sources)
    plural = "s" if len(sources) > 1 else ""
    raise InvalidInput(
        f"this key result is measured by the data source{plural} {named}: a check-in here "
        "carries a note and a confidence only, so that no hand-typed figure is added to the "
        "synced ones; leave out `value`",
        field="value",
    )


def _settle_day(session: Session, kr_id: int, day: date) -> None:
    """The day's manual value is that of its latest (most recently created) check-in with one."""
    session.flush()
    months.mark(session, [kr_id], day, day)
    value = session.scalar(
        select(CheckIn.value)
        .where(CheckIn.key_result_id == kr_id, CheckIn.date == day, CheckIn.value.is_not(None))
        .order_by(CheckIn.id.desc())
        .limit(1)
    )
    if value is None:
        session.execute(
            delete(Observation).where(
                Observation.key_result_id == kr_id,
                Observation.mapping_id.is_(None),
                Observation.group == "",
                Observation.role == "value",
                Observation.date == day,
            ),
            execution_options=months.MARKED,
        )
        return
    values = {
        "key_result_id": kr_id,
        "mapping_id": None,
        "group": "",
        "role": "value",
        "date": day,
        "value": value,
    }
    dialect = session.get_bind().dialect.name
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert_fn(Observation).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key_result_id", "group", "role", "date"],
        index_where=Observation.mapping_id.is_(None),
        set_={"value": stmt.excluded.value, "recorded_at": func.now()},
    )
    session.execute(stmt, execution_options=months.MARKED)


def add_check_in(session: Session, kr_id: int, data: dict[str, Any], actor: str) -> CheckIn:
    """The check-in stays in the history; the day's manual observation takes its value."""
    cycle = _check_in_cycle(session, kr_id)
    _check_in_date(cycle, data["date"])
    if data.get("value") is not None:
        _refuse_value_on_mapped(session, kr_id)
    author = data.pop("author", None) or actor
    check_in = CheckIn(key_result_id=kr_id, author=author, **data)
    session.add(check_in)
    if check_in.value is not None:
        _settle_day(session, kr_id, check_in.date)
    session.flush()
    audit(
        session,
        actor,
        "create",
        "check_in",
        check_in.id,
        jsonable({"key_result_id": kr_id, **data, "author": author}),
    )
    _statuses_moved(session, kr_id)
    return check_in


def get_check_in(session: Session, kr_id: int, check_in_id: int) -> CheckIn:
    get_key_result(session, kr_id)
    what = f"check-in {check_in_id} of key result {kr_id}"
    return child_or_404(session, CheckIn, check_in_id, ("key_result_id", kr_id), what)


def update_check_in(
    session: Session, kr_id: int, check_in_id: int, changes: dict[str, Any], actor: str
) -> CheckIn:
    """Both the day it left and the day it moved to take their latest remaining value."""
    require_not_null(changes, ["date", "note"])
    check_in = get_check_in(session, kr_id, check_in_id)
    cycle = _check_in_cycle(session, kr_id)
    if "date" in changes:
        _check_in_date(cycle, changes["date"])
    if changes.get("value") is not None:
        _refuse_value_on_mapped(session, kr_id)
    merged = {k: changes.get(k, getattr(check_in, k)) for k in ("value", "note", "confidence")}
    if merged["value"] is None and not merged["note"].strip() and merged["confidence"] is None:
        raise InvalidInput(
            "a check-in carries a value, a note or a confidence: delete it rather than empty it"
        )
    old_day = check_in.date
    diff = apply_changes(check_in, changes)
    if {"date", "value"} & diff.keys():
        _settle_day(session, kr_id, old_day)
        if check_in.date != old_day:
            _settle_day(session, kr_id, check_in.date)
    session.flush()
    audit(session, actor, "update", "check_in", check_in.id, {"key_result_id": kr_id, **diff})
    _statuses_moved(session, kr_id)
    return check_in


def delete_check_in(session: Session, kr_id: int, check_in_id: int, actor: str) -> None:
    check_in = get_check_in(session, kr_id, check_in_id)
    day = check_in.date
    gone = jsonable(
        {
            "key_result_id": kr_id,
            "date": day,
            "value": check_in.value,
            "note": check_in.note,
            "confidence": check_in.confidence,
            "author": check_in.author,
        }
    )
    session.delete(check_in)
    _settle_day(session, kr_id, day)
    audit(session, actor, "delete", "check_in", check_in_id, gone)
    _statuses_moved(session, kr_id)


def _statuses_moved(session: Session, kr_id: int) -> None:
    """The key result's status (and its roll-ups') evaluated in this write's transaction, so
    the `key_result.*` events it raises commit with it (SPEC section 7)."""
    from app.notify.evaluate import key_results_changed

    session.flush()
    key_results_changed(session, [kr_id])


def list_check_ins(
    session: Session, kr_id: int, limit: int, offset: int
) -> tuple[list[CheckIn], int]:
    get_key_result(session, kr_id)
    where = [CheckIn.key_result_id == kr_id]
    newest = (CheckIn.date.desc(), CheckIn.id.desc())
    return paged(session, select(CheckIn), where, *newest, limit=limit, offset=offset)


def cycle_of_key_result(session: Session, kr_id: int) -> Cycle:
    """From the identity map when the key result was just read (as `series` reads it)."""
    kr = get_key_result(session, kr_id)
    obj = session.get(Objective, kr.objective_id)
    assert obj is not None  # the foreign keys cascade deletes
    cycle = session.get(Cycle, obj.cycle_id)
    assert cycle is not None
    return cycle


def series(
    session: Session, kr_id: int, start: date | None, end: date | None
) -> tuple[date, date, list[tuple[Any, ...]]]:
    kr = get_key_result(session, kr_id)
    obj = session.get(Objective, kr.objective_id)
    cycle = session.get(Cycle, obj.cycle_id) if obj else None
    start = start or (cycle.start_date if cycle else date(1900, 1, 1))
    end = end or (cycle.end_date if cycle else date(2999, 12, 31))
    if end < start:
        raise InvalidInput("'to' must be on or after 'from'", field="to")
    if (end - start) > timedelta(days=MAX_SERIES_DAYS):
        raise InvalidInput(f"ask for at most {MAX_SERIES_DAYS} days at a time", field="to")
    rows = session.execute(
        select(
            Observation.date,
            Observation.group,
            Observation.role,
            Observation.value * func.coalesce(Mapping.scale, 1.0),
            Observation.mapping_id,
            Observation.sync_run_id,
            Observation.recorded_at,
        )
        .outerjoin(Mapping, Mapping.id == Observation.mapping_id)
        .where(
            Observation.key_result_id == kr_id,
            Observation.date >= start,
            Observation.date <= end,
            readable(Observation.value),
        )
        .order_by(Observation.date, Observation.group, Observation.role, Observation.id)
    ).all()
    # A check-in (no mapping) is what someone saw: never provisional.
    first = provisional_days(session, kr_id)
    closed_at = cycle.closed_at if cycle else None
    return (
        start,
        end,
        [
            (
                *r[:-1],
                r.mapping_id in first and r.date >= first[r.mapping_id],
                closed_at is not None and _utc(r.recorded_at) <= closed_at,
            )
            for r in rows
        ],
    )


def _utc(moment: datetime) -> datetime:
    """`recorded_at` as an aware UTC datetime (a bare column read hands SQLite's back naive)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- reads: progress as the API answers it, cached until a write ----------------------------------


def _kr_read(
    kr: KeyResult, progress: Progress | None, carried_to: list[int] | None = None
) -> KeyResultRead:
    read = KeyResultRead.model_validate(kr)
    if progress is not None:
        # From the dataclass's attributes: `dataclasses.asdict` deep-copies every field first.
        read.progress = ProgressRead.model_validate(progress, from_attributes=True)
    read.carried_to_ids = carried_to or []
    return read


def key_result_reads(
    session: Session, krs: list[KeyResult], progress: dict[int, Progress]
) -> list[KeyResultRead]:
    _, carried = carried_links(session, [], [kr.id for kr in krs])
    return [_kr_read(kr, progress.get(kr.id), carried.get(kr.id)) for kr in krs]


def _objective_read(
    obj: Objective,
    obj_progress: dict[int, ObjectiveProgress],
    kr_progress: dict[int, Progress],
) -> ObjectiveRead:
    read = ObjectiveRead.model_validate(obj, from_attributes=True)
    if obj.id in obj_progress:
        read.progress = ObjectiveProgressRead.model_validate(
            obj_progress[obj.id], from_attributes=True
        )
    read.carried_to_ids = carried_to_ids(obj)
    read.key_results = [
        _kr_read(kr, kr_progress.get(kr.id), carried_to_ids(kr)) for kr in obj.key_results
    ]
    return read


def objective_reads(
    session: Session, objectives: list[Objective], as_of: date
) -> list[ObjectiveRead]:
    """Objectives loaded by the service's objective query, which reads their carry-over links."""
    obj_p, kr_p = objectives_progress(session, objectives, as_of)
    return [_objective_read(o, obj_p, kr_p) for o in objectives]


def dashboard(session: Session, cycle_id: int | None, day: date) -> DashboardRead:
    """Every objective of a cycle (default: the current one on `day`) with progress."""
    cycle = resolve_cycle(session, cycle_id, day)
    objectives = cycle_objectives(session, cycle.id)
    reads = objective_reads(session, objectives, day)
    # A closed cycle's pace is the one its figures were frozen on, not `day`'s.
    frozen_on = next(
        (o.progress.as_of for o in reads if o.progress is not None and o.progress.frozen),
        None,
    )
    return DashboardRead(
        as_of=day,
        cycle=CycleRead.model_validate(cycle),
        expected_progress=expected_progress(span(cycle), frozen_on or day),
        frozen=cycle.closed_at is not None,
        objectives=reads,
    )


async def dashboard_json(session: Session, cycle_id: int | None, day: date) -> bytes:
    # Which cycle is "current" on `day` moves only with cycle writes, which bump the
    # revision: keying by what was asked (cycle_id or None) is as exact as by the cycle.
    return await cache.read(
        session, ("dashboard", cycle_id, day), lambda: dashboard(session, cycle_id, day)
    )


async def objective_json(session: Session, objective_id: int, day: date) -> bytes:
    def build() -> ObjectiveRead:
        return objective_reads(session, [get_objective(session, objective_id)], day)[0]

    return await cache.read(session, ("objective", objective_id, day), build)


async def key_result_json(session: Session, kr_id: int, day: date) -> bytes:
    def build() -> KeyResultRead:
        kr = get_key_result(session, kr_id)
        return key_result_reads(session, [kr], key_results_progress(session, [kr], day))[0]

    return await cache.read(session, ("key_result", kr_id, day), build)
