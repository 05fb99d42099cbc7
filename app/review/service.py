"""The cycle review: figures, retrospective, findings and statistics, in one read.

Every figure comes from :func:`app.review.figures.review_figures`, the one place a closed
cycle's frozen figures will come from; the exports (`app.review.export`) only lay this out.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import fmean

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.changes import same_named
from app.models import CheckIn, Cycle, KeyResult, Objective
from app.okr import service as okr_service
from app.okr.schemas import CycleRead
from app.review import retrospective
from app.review.figures import CycleFigures, review_figures
from app.review.findings import Finding, find, findings_for, measure_facts, reference_day
from app.review.schemas import (
    ConfidenceWeek,
    CycleReviewRead,
    FindingRead,
    MeasuredBy,
    ObjectiveReviewRead,
    RetrospectiveRead,
    ReviewKeyResult,
    ReviewObjective,
    ReviewStatistics,
    ScoreBand,
    TeamStatistics,
)

#: Score bands of OKR practice: 0.7 and up is a good stretch result, under 0.4 a miss.
BANDS: tuple[tuple[str, float, float], ...] = (
    ("0.0-0.3", 0.0, 0.3),
    ("0.4-0.6", 0.4, 0.6),
    ("0.7-1.0", 0.7, 1.0),
)
NO_SCORE = "no score"


def band_of(score: float | None) -> str:
    """Scores have one decimal (SPEC section 2), so the bands meet without a gap."""
    if score is None:
        return NO_SCORE
    for label, _low, high in BANDS:
        if round(score, 1) <= high:
            return label
    return BANDS[-1][0]


def _mean(values: Sequence[float | None], digits: int = 3) -> float | None:
    present = [v for v in values if v is not None]
    return round(fmean(present), digits) if present else None


def _measured_by(kr: KeyResult, mapped: frozenset[int], checked: dict[int, date]) -> MeasuredBy:
    if kr.kind == "rollup":
        return "rollup"
    if kr.id in mapped:
        return "data"
    return "check_ins" if kr.id in checked else "nothing"


def _confidence_by_week(
    session: Session, cycle: Cycle, kr_ids: Sequence[int], until: date
) -> list[ConfidenceWeek]:
    """The average confidence of the check-ins of each week (Monday to Sunday) of the cycle."""
    if not kr_ids or until < cycle.start_date:
        return []
    rows = session.execute(
        select(CheckIn.date, CheckIn.confidence).where(
            CheckIn.key_result_id.in_(kr_ids),
            CheckIn.confidence.is_not(None),
            CheckIn.date >= cycle.start_date,
            CheckIn.date <= until,
        )
    ).all()
    weeks: dict[date, list[int]] = defaultdict(list)
    for day, confidence in rows:
        weeks[day - timedelta(days=day.weekday())].append(int(confidence or 0))
    return [
        ConfidenceWeek(
            week_start=week, check_ins=len(values), average_confidence=round(fmean(values), 2)
        )
        for week, values in sorted(weeks.items())
    ]


@dataclass(frozen=True)
class _Review:
    figures: CycleFigures
    findings: list[Finding]
    mapped: frozenset[int]
    checked: dict[int, date]


def _finding_read(f: Finding) -> FindingRead:
    return FindingRead.model_validate(f, from_attributes=True)


def _collect(session: Session, figures: CycleFigures) -> _Review:
    objectives = figures.objectives
    kr_ids = [kr.id for o in objectives for kr in o.key_results]
    facts = measure_facts(session, kr_ids, reference_day(figures.cycle, figures.as_of))
    stale = {kid for kid, f in figures.key_result.items() if f.stale}
    cycles = {figures.cycle.id: figures.cycle}
    found = find(objectives, cycles, facts, stale, figures.as_of)
    return _Review(figures, found, facts.mapped, facts.last_check_in)


def cycle_review(session: Session, cycle_id: int, as_of: date) -> CycleReviewRead:
    """Everything a cycle's review shows, in a fixed number of statements."""
    cycle = okr_service.get_cycle(session, cycle_id)
    figures = review_figures(session, cycle, as_of)
    review = _collect(session, figures)
    objectives = figures.objectives
    read_objectives: list[ReviewObjective] = []
    for obj in objectives:
        of = figures.objective.get(obj.id)
        krs: list[ReviewKeyResult] = []
        for kr in obj.key_results:
            kf = figures.key_result.get(kr.id)
            krs.append(
                ReviewKeyResult(
                    **same_named(kr, "id title owner unit kind direction weight carried_from_id"),
                    team=obj.team,
                    current_value=kf.current_value if kf else None,
                    start_value=kf.start_value if kf else kr.start_value,
                    target_value=kf.target_value if kf else kr.target_value,
                    progress=kf.progress if kf else None,
                    score=kf.score if kf else None,
                    status=kf.status if kf else "no_data",
                    stale=kf.stale if kf else False,
                    last_observation_date=kf.last_observation_date if kf else None,
                    measured_by=_measured_by(kr, review.mapped, review.checked),
                    frozen=kf.frozen if kf else False,
                    carried_to_ids=okr_service.carried_to_ids(kr),
                    final_score=kf.final_score if kf else None,
                    final_score_note=kf.final_score_note if kf else None,
                )
            )
        read_objectives.append(
            ReviewObjective(
                **same_named(obj, "id title description level team owner parent_key_result_id"),
                progress=of.progress if of else None,
                score=of.score if of else None,
                status=of.status if of else "no_data",
                frozen=of.frozen if of else False,
                carried_from_id=obj.carried_from_id,
                carried_to_ids=okr_service.carried_to_ids(obj),
                key_results=krs,
            )
        )
    entries, _ = retrospective.list_entries(session, cycle.id, limit=10_000)
    until = reference_day(cycle, as_of)
    confidence = _confidence_by_week(
        session, cycle, [kr.id for o in objectives for kr in o.key_results], until
    )
    return CycleReviewRead(
        cycle=CycleRead.model_validate(cycle),
        as_of=as_of,
        expected_progress=figures.expected_progress,
        objectives=read_objectives,
        retrospective=[
            RetrospectiveRead.model_validate(e) for e in retrospective.board_order(entries)
        ],
        findings=[_finding_read(f) for f in review.findings],
        statistics=_statistics(read_objectives, confidence),
    )


def _statistics(
    objectives: list[ReviewObjective], confidence: list[ConfidenceWeek]
) -> ReviewStatistics:
    krs = [kr for o in objectives for kr in o.key_results]
    bands = Counter(band_of(kr.score) for kr in krs)
    score_bands = [ScoreBand(band=b, low=lo, high=hi, key_results=bands[b]) for b, lo, hi in BANDS]
    if bands[NO_SCORE]:
        score_bands.append(
            ScoreBand(band=NO_SCORE, low=None, high=None, key_results=bands[NO_SCORE])
        )
    teams: dict[str, list[ReviewObjective]] = defaultdict(list)
    for obj in objectives:
        teams[obj.team].append(obj)
    by_team = [
        TeamStatistics(
            team=team,
            objectives=len(objs),
            key_results=sum(len(o.key_results) for o in objs),
            average_score=_mean([kr.score for o in objs for kr in o.key_results]),
            average_progress=_mean([kr.progress for o in objs for kr in o.key_results]),
        )
        for team, objs in sorted(teams.items(), key=lambda t: (t[0] == "", t[0]))
    ]
    measured = Counter(kr.measured_by for kr in krs)
    measurable = len(krs) - measured["rollup"]
    total_checks = sum(w.check_ins for w in confidence)
    return ReviewStatistics(
        objectives=len(objectives),
        key_results=len(krs),
        average_score=_mean([kr.score for kr in krs]),
        score_bands=score_bands,
        by_status=dict(sorted(Counter(kr.status for kr in krs).items())),
        by_team=by_team,
        fed_by_data=measured["data"],
        checked_in_by_hand=measured["check_ins"],
        rollups=measured["rollup"],
        not_measured=measured["nothing"],
        share_fed_by_data=round(measured["data"] / measurable, 3) if measurable else None,
        confidence_by_week=confidence,
        average_confidence=(
            round(sum(w.average_confidence * w.check_ins for w in confidence) / total_checks, 2)
            if total_checks
            else None
        ),
    )


def objective_review(session: Session, objective_id: int, as_of: date) -> ObjectiveReviewRead:
    """One objective's findings, with its key results' staleness read as the review reads it."""
    obj = okr_service.get_objective(session, objective_id)
    figures = review_figures(session, obj.cycle, as_of, objectives=[obj])
    review = _collect(session, figures)
    return ObjectiveReviewRead(
        objective_id=obj.id,
        as_of=as_of,
        findings=[_finding_read(f) for f in review.findings],
    )


def dashboard_findings(
    session: Session,
    objectives: Sequence[Objective],
    stale: set[int],
    as_of: date,
) -> dict[int, list[Finding]]:
    """Findings by objective for a page that already computed progress: two statements."""
    grouped: dict[int, list[Finding]] = defaultdict(list)
    for f in findings_for(session, objectives, stale, as_of):
        grouped[f.objective_id].append(f)
    return dict(grouped)
