"""Quality findings: the rules of OKR practice, checked on a cycle's objectives (SPEC section 8).

The rules are deterministic and read what is already loaded (objectives with their key results,
each key result's staleness) plus two facts per key result that :func:`measure_facts` reads for
any number of them in two statements: whether a mapping feeds it, and its latest check-in. Each
message says what to change, in the words an OKR coach would use.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import CheckIn, Cycle, KeyResult, Mapping, Objective

#: More key results than this on one objective is a warning; more than ERROR_ABOVE an error.
WARN_ABOVE = 3
ERROR_ABOVE = 5
#: A metric key result nobody measured for this many days is `unmeasured`.
UNMEASURED_DAYS = 14

#: Verbs that name an activity rather than its outcome, with their usual forms.
_ACTIVITY_VERBS = frozenset(
    """
    launch launches launched launching write writes wrote written writing publish publishes
    published publishing create creates created creating build builds built building
    implement implements implemented implementing develop develops developed developing
    design designs designed designing redesign redesigns redesigned redesigning
    run runs ran running hold holds held holding host hosts hosted hosting organise organises
    organised organising organize organizes organized organizing ship ships shipped shipping
    release releases released releasing deploy deploys deployed deploying complete completes
    completed completing finish finishes finished finishing deliver delivers delivered
    delivering introduce introduces introduced introducing migrate migrates migrated migrating
    hire hires hired hiring send sends sent sending post posts posted posting produce produces
    produced producing draft drafts drafted drafting set setup roll rollout attend attends
    attended attending conduct conducts conducted conducting redo rebuild rebuilt rebuilding
    """.split()
)
_WORD = re.compile(r"[A-Za-z]+")
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    objective_id: int
    key_result_id: int | None
    message: str


@dataclass(frozen=True)
class MeasureFacts:
    #: Key results a mapping feeds.
    mapped: frozenset[int] = frozenset()
    #: Key result id -> the date of its latest check-in on or before the reference day.
    last_check_in: dict[int, date] = field(default_factory=dict)


def names_an_activity(title: str) -> bool:
    """A title that opens with an activity verb and holds no figure ("Launch the new website",
    not "Launch 3 markets with 500 sign-ups each")."""
    if _DIGIT.search(title):
        return False
    first = _WORD.search(title)
    return first is not None and first.group(0).lower() in _ACTIVITY_VERBS


def reference_day(cycle: Cycle, as_of: date) -> date:
    """The day the findings look from: `as_of`, or the cycle's last day once it is over."""
    return min(as_of, cycle.end_date)


def measure_facts(session: Session, kr_ids: Sequence[int], reference: date) -> MeasureFacts:
    """Two statements, however many key results."""
    if not kr_ids:
        return MeasureFacts()
    mapped = session.scalars(
        select(Mapping.key_result_id).where(Mapping.key_result_id.in_(kr_ids)).distinct()
    ).all()
    latest = session.execute(
        select(CheckIn.key_result_id, func.max(CheckIn.date))
        .where(CheckIn.key_result_id.in_(kr_ids), CheckIn.date <= reference)
        .group_by(CheckIn.key_result_id)
    ).all()
    return MeasureFacts(
        mapped=frozenset(mapped),
        last_check_in={kr: _as_date(day) for kr, day in latest},
    )


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _quoted(title: str) -> str:
    return f"'{title}'"


def _objective_findings(obj: Objective) -> list[Finding]:
    found: list[Finding] = []
    name = _quoted(obj.title)
    count = len(obj.key_results)
    if count == 0:
        found.append(
            Finding(
                "no_key_results",
                "error",
                obj.id,
                None,
                f"{name} has no key results: add two or three measurable outcomes that will "
                "show it was achieved.",
            )
        )
    elif count > WARN_ABOVE:
        severity = "error" if count > ERROR_ABOVE else "warning"
        found.append(
            Finding(
                "too_many_key_results",
                severity,
                obj.id,
                None,
                f"{name} has {count} key results: keep the {WARN_ABOVE} that best show the "
                "objective was reached, and drop the rest or move them to a team objective.",
            )
        )
    if not obj.owner.strip():
        found.append(
            Finding(
                "no_owner",
                "warning",
                obj.id,
                None,
                f"{name} has no owner: name the one person who answers for it.",
            )
        )
    if obj.level in ("team", "individual") and obj.parent_key_result_id is None:
        above = "company or team" if obj.level == "team" else "team"
        found.append(
            Finding(
                "not_aligned",
                "warning",
                obj.id,
                None,
                f"{name} is a {obj.level} objective aligned to no key result: align it to the "
                f"{above} key result it moves, or say why it stands alone.",
            )
        )
    return found


def _key_result_findings(
    obj: Objective,
    kr: KeyResult,
    facts: MeasureFacts,
    stale: Collection[int],
    reference: date | None,
    cycle_start: date,
) -> list[Finding]:
    found: list[Finding] = []
    name = _quoted(kr.title)

    def add(rule: str, severity: str, message: str) -> None:
        found.append(Finding(rule, severity, obj.id, kr.id, message))

    if kr.kind == "metric" and kr.target_value is None and kr.target_change_pct is None:
        add(
            "not_measurable",
            "error",
            f"{name} has no target: set target_value, or target_change_pct for a target "
            "relative to the weeks before the cycle, so progress can be measured.",
        )
    if names_an_activity(kr.title):
        add(
            "task_not_outcome",
            "warning",
            f"{name} names an activity: what outcome shows it worked?",
        )
    if not kr.owner.strip():
        add("no_owner", "warning", f"{name} has no owner: name who checks in on it.")
    if (
        kr.kind == "metric"
        and reference is not None
        and kr.id not in facts.mapped
        and (reference - cycle_start).days + 1 >= UNMEASURED_DAYS
    ):
        last = facts.last_check_in.get(kr.id)
        if last is None or (reference - last).days >= UNMEASURED_DAYS:
            since = f"no check-in since {last.isoformat()}" if last else "no check-in yet"
            add(
                "unmeasured",
                "warning",
                f"{name} has no mapping and {since}: map it to a data source, or check in on "
                "it at least every week.",
            )
    if kr.id in stale:
        add(
            "stale_source",
            "warning",
            f"{name} is fed by a data source that has not synced for more than twice its "
            "schedule: repair or resume the source, or its figures will stay behind.",
        )
    return found


def find(
    objectives: Sequence[Objective],
    cycles: dict[int, Cycle],
    facts: MeasureFacts,
    stale: Collection[int],
    as_of: date,
) -> list[Finding]:
    """Every finding on these objectives (with `key_results` loaded), in their order; `stale`
    holds the ids of key results whose progress reads `stale: true`.

    `unmeasured` looks back from the reference day (:func:`reference_day`) and only once the
    cycle has run for as long as the rule's period: in a cycle being set up, a key result nobody
    could measure yet is not overdue.
    """
    found: list[Finding] = []
    for obj in objectives:
        cycle = cycles[obj.cycle_id]
        ref = reference_day(cycle, as_of)
        reference = ref if ref >= cycle.start_date else None
        found.extend(_objective_findings(obj))
        for kr in obj.key_results:
            found.extend(_key_result_findings(obj, kr, facts, stale, reference, cycle.start_date))
    return found


def findings_for(
    session: Session,
    objectives: Sequence[Objective],
    stale: Collection[int],
    as_of: date,
) -> list[Finding]:
    """The findings of objectives (with `key_results` and `cycle` loaded): two statements."""
    cycles = {obj.cycle_id: obj.cycle for obj in objectives}
    kr_ids = [kr.id for obj in objectives for kr in obj.key_results]
    latest_ref = max((reference_day(c, as_of) for c in cycles.values()), default=as_of)
    facts = measure_facts(session, kr_ids, latest_ref)
    return find(objectives, cycles, facts, stale, as_of)
