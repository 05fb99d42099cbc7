"""Request and response shapes of cycles, objectives, key results, check-ins and series."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from app.core.schemas import IsoDate, LongText, Name, Number, Short, StrictModel, Title, Unit

Level = Literal["company", "team", "individual"]
Kind = Literal["metric", "milestone", "rollup"]
Direction = Literal["increase", "decrease", "at_least", "at_most"]
Aggregation = Literal["sum", "last", "avg", "min", "max", "ratio"]
GroupRule = Literal["combine", "each"]
Status = Literal["no_data", "no_baseline", "done", "on_track", "at_risk", "off_track"]
Weight = Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)]
Pct = Annotated[float, Field(ge=-100, le=1e6, allow_inf_nan=False)]
Confidence = Annotated[int, Field(ge=0, le=10)]
Day = Annotated[IsoDate, Field(ge=date(1900, 1, 1), le=date(2999, 12, 31))]
FinalScore = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
FROZEN = (
    "True when the cycle is closed: the figures frozen at the close (SPEC section 8), "
    "whatever later syncs, backfills or check-ins bring"
)


# --- cycles -----------------------------------------------------------------------------------


class CycleCreate(StrictModel):
    name: Name
    start_date: Day
    end_date: Day

    @model_validator(mode="after")
    def _ordered(self) -> CycleCreate:
        if self.end_date < self.start_date:
            raise ValueError("end_date must be on or after start_date")
        return self


class CycleUpdate(StrictModel):
    name: Name | None = None
    start_date: Day | None = None
    end_date: Day | None = None


class CycleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    start_date: date
    end_date: date
    status: Literal["open", "closed"] = Field(
        "open", description="`closed` once closed: its reads answer the frozen figures"
    )
    closed_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


# --- progress ---------------------------------------------------------------------------------


class GroupProgressRead(BaseModel):
    group: str
    current_value: float | None
    progress: float | None


class ProgressRead(BaseModel):
    as_of: date
    current_value: float | None
    start_value: float | None
    target_value: float | None
    progress: float | None
    attainment: float | None
    expected_progress: float
    score: float | None
    status: Status
    forecast_value: float | None
    forecast_progress: float | None
    last_observation_date: date | None
    stale: bool
    provisional_from: date | None = Field(
        None,
        description="The earliest day in the window whose figure the platform may still "
        "restate (inside its metric's `settle_days`); null when every figure is final",
    )
    groups: list[GroupProgressRead]
    frozen: bool = Field(False, description=FROZEN)
    sync_run_ids: list[int] | None = Field(
        None, description="When frozen: the sync runs that wrote the points behind the figures"
    )


class ObjectiveProgressRead(BaseModel):
    as_of: date
    progress: float | None
    expected_progress: float
    score: float | None
    status: Status
    last_observation_date: date | None
    stale: bool
    provisional_from: date | None = Field(
        None, description="The earliest provisional day among its key results, or null"
    )
    frozen: bool = Field(False, description=FROZEN)


# --- objectives and key results ---------------------------------------------------------------


class ObjectiveCreate(StrictModel):
    title: Title
    description: LongText = ""
    cycle_id: Annotated[int, Field(ge=1, le=2_147_483_647)]
    owner: Short = ""
    level: Level = "team"
    team: Short = ""
    parent_key_result_id: Annotated[int, Field(ge=1, le=2_147_483_647)] | None = None


class ObjectiveUpdate(StrictModel):
    title: Title | None = None
    description: LongText | None = None
    cycle_id: Annotated[int, Field(ge=1, le=2_147_483_647)] | None = None
    owner: Short | None = None
    level: Level | None = None
    team: Short | None = None
    parent_key_result_id: Annotated[int, Field(ge=1, le=2_147_483_647)] | None = None


class KeyResultFields(StrictModel):
    title: Title
    owner: Short = ""
    unit: Unit = ""
    kind: Kind = "metric"
    direction: Direction = "increase"
    start_value: Number | None = None
    target_value: Number | None = None
    target_change_pct: Pct | None = None
    aggregation: Aggregation = "sum"
    group_rule: GroupRule = "combine"
    weight: Weight = 1.0


class KeyResultCreate(KeyResultFields):
    objective_id: Annotated[int, Field(ge=1, le=2_147_483_647)]


class KeyResultUpdate(StrictModel):
    objective_id: Annotated[int, Field(ge=1, le=2_147_483_647)] | None = None
    title: Title | None = None
    owner: Short | None = None
    unit: Unit | None = None
    kind: Kind | None = None
    direction: Direction | None = None
    start_value: Number | None = None
    target_value: Number | None = None
    target_change_pct: Pct | None = None
    aggregation: Aggregation | None = None
    group_rule: GroupRule | None = None
    weight: Weight | None = None
    final_score: FinalScore | None = Field(
        None, description="The editor's grade, 0.0-1.0, once the cycle is closed"
    )
    final_score_note: LongText | None = None


class KeyResultRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    objective_id: int
    title: str
    owner: str
    unit: str
    kind: str
    direction: str
    start_value: float | None
    target_value: float | None
    target_change_pct: float | None
    aggregation: str
    group_rule: str
    weight: float
    final_score: float | None = Field(
        None, description="The editor's grade of a closed key result, beside the computed score"
    )
    final_score_note: str = ""
    carried_from_id: int | None = Field(
        None, description="The key result of an earlier cycle this one was carried over from"
    )
    carried_to_ids: list[int] = Field(
        default_factory=list, description="The key results it was carried over to"
    )
    created_at: datetime
    updated_at: datetime
    progress: ProgressRead | None = None


class ObjectiveRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    description: str
    cycle_id: int
    owner: str
    level: str
    team: str
    parent_key_result_id: int | None
    carried_from_id: int | None = Field(
        None, description="The objective of an earlier cycle this one was carried over from"
    )
    carried_to_ids: list[int] = Field(
        default_factory=list, description="The objectives it was carried over to"
    )
    created_at: datetime
    updated_at: datetime
    progress: ObjectiveProgressRead | None = None
    key_results: list[KeyResultRead] = []


# --- check-ins and series ---------------------------------------------------------------------


class CheckInCreate(StrictModel):
    date: Day
    #: Left out on a key result fed by mappings: its figures are the source's.
    value: Number | None = None
    note: LongText = ""
    confidence: Confidence | None = None
    author: Short | None = None

    @model_validator(mode="after")
    def _says_something(self) -> CheckInCreate:
        if self.value is None and not self.note.strip() and self.confidence is None:
            # A custom error keeps pydantic's "Value error, " prefix out of the 422's message.
            raise PydanticCustomError(
                "check_in_empty", "a check-in carries a value, a note or a confidence"
            )
        return self


class CheckInUpdate(StrictModel):
    """`value: null` takes the figure out of a check-in and keeps its note and confidence."""

    date: Day | None = None
    value: Number | None = None
    note: LongText | None = None
    confidence: Confidence | None = None


class CheckInRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    key_result_id: int
    date: date
    value: float | None
    note: str
    confidence: int | None
    author: str
    created_at: datetime
    updated_at: datetime


class SeriesPoint(BaseModel):
    date: date
    group: str
    role: str
    value: float
    mapping_id: int | None
    sync_run_id: int | None
    provisional: bool = Field(
        description="The day is inside its metric's `settle_days`: the platform may still "
        "restate it (a check-in never is)"
    )
    frozen: bool = Field(
        False,
        description="The cycle is closed and the point was there at the close: one of those "
        "behind the frozen figures (false for what arrived or changed since)",
    )


class SeriesRead(BaseModel):
    key_result_id: int
    from_: date = Field(serialization_alias="from")
    to: date
    frozen: bool = Field(False, description=FROZEN)
    points: list[SeriesPoint]


class DashboardRead(BaseModel):
    as_of: date
    cycle: CycleRead
    expected_progress: float
    frozen: bool = Field(False, description=FROZEN)
    objectives: list[ObjectiveRead]
