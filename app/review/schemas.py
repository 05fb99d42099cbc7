"""Request and response shapes of the retrospective, the review, the findings and carry-over."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.schemas import MAX_ID, StrictModel
from app.okr.schemas import CycleRead

RetroFormat = Literal["start_stop_continue", "4l"]
RetroCategory = Literal["start", "stop", "continue", "liked", "learned", "lacked", "longed_for"]
#: Which categories each format has, in the order a board shows them.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "start_stop_continue": ("start", "stop", "continue"),
    "4l": ("liked", "learned", "lacked", "longed_for"),
}
CATEGORY_LABELS = {
    "start": "Start",
    "stop": "Stop",
    "continue": "Continue",
    "liked": "Liked",
    "learned": "Learned",
    "lacked": "Lacked",
    "longed_for": "Longed for",
}
FORMAT_LABELS = {"start_stop_continue": "Start / Stop / Continue", "4l": "4L"}
EntryText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)
]
RefId = Annotated[int, Field(ge=1, le=MAX_ID)]
Severity = Literal["error", "warning"]
Rule = Literal[
    "too_many_key_results",
    "no_key_results",
    "not_measurable",
    "task_not_outcome",
    "no_owner",
    "not_aligned",
    "unmeasured",
    "stale_source",
]
ReviewFormat = Literal["json", "csv", "xlsx", "md"]


# --- retrospective ----------------------------------------------------------------------------


class RetrospectiveCreate(StrictModel):
    format: RetroFormat
    category: RetroCategory
    text: EntryText
    objective_id: RefId | None = None


class RetrospectiveUpdate(StrictModel):
    """`objective_id: null` makes an entry about the whole cycle again."""

    format: RetroFormat | None = None
    category: RetroCategory | None = None
    text: EntryText | None = None
    objective_id: RefId | None = None


class RetrospectiveRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    cycle_id: int
    objective_id: int | None
    format: str
    category: str
    text: str
    author: str
    created_at: datetime
    updated_at: datetime


# --- quality findings -------------------------------------------------------------------------


class FindingRead(BaseModel):
    rule: Rule
    severity: Severity
    objective_id: int
    key_result_id: int | None
    message: str


class ObjectiveReviewRead(BaseModel):
    objective_id: int
    as_of: date
    findings: list[FindingRead]


# --- the cycle review -------------------------------------------------------------------------


MeasuredBy = Literal["data", "check_ins", "rollup", "nothing"]


class ReviewKeyResult(BaseModel):
    id: int
    title: str
    owner: str
    team: str
    unit: str
    kind: str
    direction: str
    weight: float
    current_value: float | None
    start_value: float | None
    target_value: float | None
    progress: float | None
    score: float | None
    status: str
    stale: bool
    last_observation_date: date | None
    measured_by: MeasuredBy = Field(
        description="`data`: a mapping feeds it; `check_ins`: figures typed by hand; "
        "`rollup`: the objectives aligned to it; `nothing`: neither yet"
    )
    #: True when the figures are those stored when the cycle was closed.
    frozen: bool = False
    carried_from_id: int | None
    carried_to_ids: list[int]
    #: An editor's grade of a closed key result; shown only once key results have one
    #: (`app.review.figures.FINAL_SCORES`).
    final_score: float | None = None
    final_score_note: str | None = None


class ReviewObjective(BaseModel):
    id: int
    title: str
    description: str
    level: str
    team: str
    owner: str
    parent_key_result_id: int | None
    progress: float | None
    score: float | None
    status: str
    frozen: bool = False
    carried_from_id: int | None
    carried_to_ids: list[int]
    key_results: list[ReviewKeyResult]


class ScoreBand(BaseModel):
    band: str
    low: float | None
    high: float | None
    key_results: int


class TeamStatistics(BaseModel):
    team: str
    objectives: int
    key_results: int
    average_score: float | None
    average_progress: float | None


class ConfidenceWeek(BaseModel):
    week_start: date
    check_ins: int
    average_confidence: float


class ReviewStatistics(BaseModel):
    objectives: int
    key_results: int
    average_score: float | None
    score_bands: list[ScoreBand]
    by_status: dict[str, int]
    by_team: list[TeamStatistics]
    fed_by_data: int
    checked_in_by_hand: int
    rollups: int
    not_measured: int
    share_fed_by_data: float | None = Field(
        description="Key results a mapping feeds, over those that are not roll-ups"
    )
    confidence_by_week: list[ConfidenceWeek]
    average_confidence: float | None


class CycleReviewRead(BaseModel):
    cycle: CycleRead
    as_of: date
    expected_progress: float
    objectives: list[ReviewObjective]
    retrospective: list[RetrospectiveRead]
    findings: list[FindingRead]
    statistics: ReviewStatistics


# --- carry-over -------------------------------------------------------------------------------


class CarryOverRequest(StrictModel):
    to_cycle_id: RefId
    key_result_ids: Annotated[list[RefId], Field(min_length=1, max_length=2000)] | None = None


class CarriedItem(BaseModel):
    carried_from_id: int
    id: int
    #: False when an earlier carry-over had already made this copy: it is reused, not doubled.
    created: bool


class CarryOverRead(BaseModel):
    from_cycle_id: int
    to_cycle_id: int
    objectives: list[CarriedItem]
    key_results: list[CarriedItem]
    mappings: list[CarriedItem]
