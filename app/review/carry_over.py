"""Carry-over: unfinished key results continue in the next cycle (SPEC section 8).

Each carried key result is copied with its definition and mappings under a copy of its
objective (one copy an objective, reused by later carry-overs), and both copies name what they
continue (`carried_from_id`). A relative target (`target_change_pct` without `start_value`)
is copied as a relative target, so the new cycle measures it against its own baseline window:
mappings are backfilled over that window as a new mapping is, and a key result fed by check-ins
takes the day values it had in that window, so its baseline is there from the first day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import BackgroundTasks
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.service import AuditEntity, audit
from app.core.errors import InvalidInput
from app.models import Cycle, DataSource, KeyResult, Mapping, Objective, Observation
from app.okr import service as okr_service
from app.okr.progress_service import span
from app.progress import baseline_window
from app.review.figures import KeyResultFigures, review_figures
from app.sources.service import schedule_backfill

_KR_FIELDS = (
    "title",
    "owner",
    "unit",
    "kind",
    "direction",
    "start_value",
    "target_value",
    "target_change_pct",
    "aggregation",
    "group_rule",
    "weight",
)
_OBJECTIVE_FIELDS = ("title", "description", "owner", "level", "team")
_MAPPING_FIELDS = ("data_source_id", "metric", "params", "filters", "role", "group", "scale")
_LEVEL_RANK = {"company": 0, "team": 1, "individual": 2}


@dataclass
class CarryOver:
    """(from id, to id, created) of each objective, key result and mapping carried."""

    objectives: list[tuple[int, int, bool]] = field(default_factory=list)
    key_results: list[tuple[int, int, bool]] = field(default_factory=list)
    mappings: list[tuple[int, int, bool]] = field(default_factory=list)


def _target(session: Session, source: Cycle, to_cycle_id: int) -> Cycle:
    target = session.get(Cycle, to_cycle_id)
    if target is None:
        raise InvalidInput(f"cycle {to_cycle_id} does not exist", field="to_cycle_id")
    if target.id == source.id:
        raise InvalidInput(
            "key results are carried over into another cycle, not into their own: pick the "
            "next cycle",
            field="to_cycle_id",
        )
    if target.start_date <= source.start_date:
        raise InvalidInput(
            f"cycle {target.name!r} starts on {target.start_date}, not after {source.name!r} "
            f"({source.start_date}): carry unfinished key results forward, into a later cycle",
            field="to_cycle_id",
        )
    return target


def _chosen(
    session: Session, source: Cycle, objectives: Sequence[Objective], ids: list[int] | None
) -> set[int]:
    in_cycle = {kr.id for obj in objectives for kr in obj.key_results}
    if ids is not None:
        unknown = sorted(set(ids) - in_cycle)
        if unknown:
            listed = ", ".join(str(i) for i in unknown)
            raise InvalidInput(
                f"key result(s) {listed} are not in cycle {source.name!r}: carry over key "
                "results of the cycle named in the path",
                field="key_result_ids",
            )
        return set(ids)
    # "Unfinished" as the cycle ended: the review's figures, frozen ones once it is closed.
    figures = review_figures(session, source, source.end_date, objectives)
    return {kid for kid in in_cycle if unfinished(figures.key_result.get(kid))}


def unfinished(figures: KeyResultFigures | None) -> bool:
    """What a carry-over takes when no key results are named: those not `done` as the cycle
    ended (one without figures is not done)."""
    return figures is None or figures.status != "done"


def carry_over(
    session: Session,
    background: BackgroundTasks,
    cycle_id: int,
    data: dict[str, Any],
    actor: str,
) -> CarryOver:
    source = okr_service.get_cycle(session, cycle_id)
    target = _target(session, source, data["to_cycle_id"])
    objectives = okr_service.cycle_objectives(session, source.id)
    chosen = _chosen(session, source, objectives, data.get("key_result_ids"))
    done = CarryOver()
    existing_objectives = {
        o.carried_from_id: o
        for o in okr_service.cycle_objectives(session, target.id)
        if o.carried_from_id is not None
    }
    existing_krs = {
        kr.carried_from_id: kr
        for o in okr_service.cycle_objectives(session, target.id)
        for kr in o.key_results
        if kr.carried_from_id is not None
    }
    #: Old key result id -> its copy in the target cycle, to re-point alignments.
    kr_copies: dict[int, int] = {old: kr.id for old, kr in existing_krs.items()}
    new_krs: list[tuple[KeyResult, KeyResult]] = []
    ordered = sorted(objectives, key=lambda o: (_LEVEL_RANK.get(o.level, 3), o.id))
    for obj in ordered:
        carried = [kr for kr in obj.key_results if kr.id in chosen]
        if not carried:
            continue
        copy = existing_objectives.get(obj.id)
        if copy is None:
            values = {name: getattr(obj, name) for name in _OBJECTIVE_FIELDS}
            parent = kr_copies.get(obj.parent_key_result_id or 0)
            links = {
                "cycle_id": target.id,
                "parent_key_result_id": parent,
                "carried_from_id": obj.id,
            }
            copy = _copied(
                session, actor, "objective", Objective(**values, **links), {**values, **links}
            )
            existing_objectives[obj.id] = copy
            done.objectives.append((obj.id, copy.id, True))
        else:
            done.objectives.append((obj.id, copy.id, False))
        for kr in carried:
            if kr.id in existing_krs:
                done.key_results.append((kr.id, existing_krs[kr.id].id, False))
                continue
            values = {name: getattr(kr, name) for name in _KR_FIELDS}
            links = {"objective_id": copy.id, "carried_from_id": kr.id}
            kr_copy = _copied(
                session, actor, "key_result", KeyResult(**values, **links), {**values, **links}
            )
            kr_copies[kr.id] = kr_copy.id
            existing_krs[kr.id] = kr_copy
            new_krs.append((kr, kr_copy))
            done.key_results.append((kr.id, kr_copy.id, True))
    sources = _copy_mappings(session, new_krs, actor, done)
    _copy_baseline_days(session, target, new_krs, actor)
    audit(
        session,
        actor,
        "carry_over",
        "cycle",
        source.id,
        {
            "to_cycle_id": target.id,
            "objectives": [[a, b] for a, b, created in done.objectives if created],
            "key_results": [[a, b] for a, b, created in done.key_results if created],
            "mappings": [[a, b] for a, b, _ in done.mappings],
        },
    )
    session.flush()
    # As creating a mapping does: each source backfills its new mappings (cycle and baseline).
    for data_source in sources:
        schedule_backfill(session, background, data_source)
    return done


_Copy = TypeVar("_Copy", Objective, KeyResult, Mapping)


def _copied(
    session: Session, actor: str, entity: AuditEntity, copy: _Copy, written: dict[str, Any]
) -> _Copy:
    """Store a carried copy, audited as the API audits a create: the fields it took over from
    the original, then what ties it to the new cycle and to the original."""
    session.add(copy)
    session.flush()
    audit(session, actor, "create", entity, copy.id, written)
    return copy


def _copy_mappings(
    session: Session,
    new_krs: list[tuple[KeyResult, KeyResult]],
    actor: str,
    done: CarryOver,
) -> list[DataSource]:
    if not new_krs:
        return []
    copy_of = {old.id: new.id for old, new in new_krs}
    rows = session.scalars(
        select(Mapping).where(Mapping.key_result_id.in_(list(copy_of))).order_by(Mapping.id)
    ).all()
    source_ids: list[int] = []
    for mapping in rows:
        values = {name: getattr(mapping, name) for name in _MAPPING_FIELDS}
        kr_id = copy_of[mapping.key_result_id]
        copy = Mapping(**values, key_result_id=kr_id, backfill_pending=True)
        written = {**values, "key_result_id": kr_id, "carried_from_id": mapping.id}
        _copied(session, actor, "mapping", copy, written)
        done.mappings.append((mapping.id, copy.id, True))
        if mapping.data_source_id not in source_ids:
            source_ids.append(mapping.data_source_id)
    return [s for sid in source_ids if (s := session.get(DataSource, sid)) is not None]


def _copy_baseline_days(
    session: Session, target: Cycle, new_krs: list[tuple[KeyResult, KeyResult]], actor: str
) -> None:
    """A relative target fed by check-ins keeps its baseline: the day values the old key result
    had in the new cycle's baseline window become check-ins of the copy, each saying so."""
    relative = [
        (old, new)
        for old, new in new_krs
        if new.start_value is None and new.target_change_pct is not None and new.kind == "metric"
    ]
    if not relative:
        return
    mapped = set(
        session.scalars(
            select(Mapping.key_result_id).where(
                Mapping.key_result_id.in_([new.id for _, new in relative])
            )
        ).all()
    )
    start, end = baseline_window(span(target))
    for old, new in relative:
        if new.id in mapped:
            continue  # its source's backfill brings the baseline
        days = session.execute(
            select(Observation.date, Observation.value)
            .where(
                Observation.key_result_id == old.id,
                Observation.mapping_id.is_(None),
                Observation.date >= start,
                Observation.date <= end,
            )
            .order_by(Observation.date)
        ).all()
        for day, value in days:
            okr_service.add_check_in(
                session,
                new.id,
                {
                    "date": day,
                    "value": float(value),
                    "note": f"carried over from key result {old.id} for the baseline",
                    "author": actor,
                },
                actor,
            )
