"""The figures a review reads, through one function.

Everything that reports a cycle's end (the review in every format, the findings' staleness,
carry-over's "not done") asks :func:`review_figures` and nothing else, so that a closed cycle's
frozen figures (SPEC section 8: final `current_value`, `progress`, `score`, `status`) replace the
computed ones in one place: the progress calculator answers a closed cycle's stored reads
(`app.okr.freeze`), marked `frozen=True`, and every export follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from app.core.changes import same_named
from app.models import Cycle, KeyResult, Objective
from app.okr import service as okr_service
from app.okr.progress_service import span
from app.progress import ObjectiveProgress, Progress, expected_progress

#: Whether key results carry an editor's `final_score` and `final_score_note` (SPEC section 8).
#: The review's exports show those columns only when the model has them; the freeze work adds
#: the columns, and this turns them on everywhere.
FINAL_SCORES: bool = hasattr(KeyResult, "final_score")


@dataclass(frozen=True)
class KeyResultFigures:
    current_value: float | None
    start_value: float | None
    target_value: float | None
    progress: float | None
    score: float | None
    status: str
    stale: bool
    last_observation_date: date | None
    frozen: bool = False
    final_score: float | None = None
    final_score_note: str | None = None


@dataclass(frozen=True)
class ObjectiveFigures:
    progress: float | None
    score: float | None
    status: str
    stale: bool
    frozen: bool = False


@dataclass(frozen=True)
class CycleFigures:
    cycle: Cycle
    as_of: date
    expected_progress: float
    #: With `key_results` and `cycle` loaded, in id order.
    objectives: list[Objective]
    objective: dict[int, ObjectiveFigures]
    key_result: dict[int, KeyResultFigures]


def _kr(kr: KeyResult, p: Progress) -> KeyResultFigures:
    return KeyResultFigures(
        **same_named(
            p,
            "current_value start_value target_value progress score status stale"
            " last_observation_date frozen",
        ),
        final_score=getattr(kr, "final_score", None),
        final_score_note=getattr(kr, "final_score_note", None),
    )


def _objective(p: ObjectiveProgress) -> ObjectiveFigures:
    return ObjectiveFigures(
        progress=p.progress, score=p.score, status=p.status, stale=p.stale, frozen=p.frozen
    )


def review_figures(
    session: Session,
    cycle: Cycle,
    as_of: date,
    objectives: Sequence[Objective] | None = None,
) -> CycleFigures:
    """The figures of a cycle's objectives and key results on `as_of` (all of the cycle's
    objectives unless `objectives` narrows them), computed as every progress read computes them
    and in the same fixed number of statements.

    A closed cycle answers its frozen figures (`frozen=True`), whatever `as_of` says: the
    progress calculator reads them from the rows instead of computing them.
    """
    shown = (
        list(objectives)
        if objectives is not None
        else okr_service.cycle_objectives(session, cycle.id)
    )
    obj_p, kr_p = okr_service.objectives_progress(session, shown, as_of)
    return CycleFigures(
        cycle=cycle,
        as_of=as_of,
        expected_progress=expected_progress(span(cycle), as_of),
        objectives=shown,
        objective={oid: _objective(p) for oid, p in obj_p.items()},
        key_result={
            kr.id: _kr(kr, kr_p[kr.id]) for obj in shown for kr in obj.key_results if kr.id in kr_p
        },
    )
