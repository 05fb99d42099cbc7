"""Request and response shapes of connectors, data sources, mappings and sync runs."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from app.core import clock
from app.core.cron import cron_trigger
from app.core.schemas import MAX_ID, IsoDate, Name, Number, Short, StrictModel
from app.sync.source_health import Health, health_of, reason_of

Role = Literal["value", "numerator", "denominator"]
RunStatus = Literal["running", "succeeded", "partial", "failed"]
Day = Annotated[IsoDate, Field(ge=date(1900, 1, 1), le=date(2999, 12, 31))]
RefId = Annotated[int, Field(ge=1, le=MAX_ID)]
MAX_PREVIEW_DAYS = 366
MAX_SYNC_DAYS = 1096
MAX_FILTERS = 50
_MAX_JSON_DEPTH = 20


def _clean_json(value: Any, depth: int = 0) -> None:
    # PostgreSQL's JSONB refuses NUL in strings and NaN/Infinity (which Python's JSON parser lets
    # through); refusing them here keeps both databases alike and bad input away from a 500.
    if depth > _MAX_JSON_DEPTH:
        raise ValueError(f"nests deeper than {_MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("numbers must be finite (no NaN or Infinity)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _clean_json(key, depth + 1)
            _clean_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _clean_json(item, depth + 1)


def _plain_object(value: dict[str, Any]) -> dict[str, Any]:
    _clean_json(value)
    return value


def _plain_list(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    _clean_json(value)
    return value


def _plain_str(value: str) -> str:
    _clean_json(value)
    return value


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones() - {"localtime"})


def _timezone(value: str) -> str:
    if value not in _zones():
        raise ValueError("not an IANA timezone name; use one such as `Europe/Berlin` or `UTC`")
    return value


def _cron(value: str) -> str:
    try:
        trigger = cron_trigger(value, "UTC")
    except ValueError as exc:
        raise ValueError(
            f"not a 5-field cron expression (minute hour day month weekday): {exc}"
        ) from exc
    if trigger.get_next_fire_time(None, clock.utcnow()) is None:
        raise ValueError("this cron expression never fires (no such day)")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_plain_object)]
ConnectorKey = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_plain_str),
]
Timezone = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=64), AfterValidator(_timezone)
]
Schedule = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_cron),
]
LookbackDays = Annotated[int, Field(ge=0, le=90)]
Metric = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_plain_str),
]
Filters = Annotated[
    list[dict[str, Any]],
    Field(
        max_length=MAX_FILTERS,
        description="Conditions combined with AND: `{field, op, value}`, op one of eq, neq, "
        "in, not_in, contains, gt, gte, lt, lte (`in`/`not_in` take a list); the connector's "
        "catalogue says which fields and ops each metric accepts",
    ),
    AfterValidator(_plain_list),
]


def _nonzero(value: float) -> float:
    if value == 0:
        raise ValueError("must not be 0 (it would erase every value)")
    return value


#: Bounded like every figure, so a bounded value times its scale still adds up without overflow.
Scale = Annotated[Number, AfterValidator(_nonzero)]
CREDENTIALS_DESCRIPTION = (
    "Write-only: stored encrypted with KRSYNC_SECRET_KEY and never returned "
    "(reads say `credentials_set`)"
)


# --- connectors -------------------------------------------------------------------------------


class MetricRead(BaseModel):
    name: str
    description: str
    unit: str
    params: dict[str, Any] = Field(description="JSON Schema of the metric's params")
    filters: dict[str, list[str]] = Field(
        description="Filterable field -> its operators; `*` stands for any field"
    )
    aggregations: list[str]
    history: Literal["daily", "snapshot"]
    additive: bool
    lower_is_better: bool = Field(
        False,
        description="The figure improves as it falls (an average position, a bounce rate): "
        "a key result on it reads `decrease` or `at_most`",
    )
    settle_days: int = Field(
        0,
        description="How many recent days the platform may still restate: every sync re-reads "
        "them, and series and progress reads mark their values provisional",
    )


class ConnectorRead(BaseModel):
    key: str
    name: str
    category: str
    config: dict[str, Any] = Field(description="JSON Schema of the source's config")
    credentials: dict[str, Any] = Field(description="JSON Schema of the source's credentials")
    metrics: list[MetricRead]
    recommended_lookback_days: int | None = None
    api_version: str | None = Field(
        None,
        description="The platform API version a source speaks unless its config picks another "
        "(`api_version`); null for sources that call no versioned API",
    )
    api_version_sunset: date | None = Field(
        None,
        description="The day the vendor retires that version, where it publishes one",
    )
    filter_meanings: dict[str, str] = Field(
        default_factory=dict,
        description="What each filter operator the catalogue offers matches on this platform "
        "(HubSpot's `contains`, for one, matches whole words)",
    )


# --- data sources -----------------------------------------------------------------------------


class DataSourceCreate(StrictModel):
    name: Name
    connector: ConnectorKey
    config: JsonObject = Field(default_factory=dict)
    credentials: JsonObject | None = Field(None, description=CREDENTIALS_DESCRIPTION)
    timezone: Timezone = "UTC"
    schedule: Schedule = "0 3 * * *"
    lookback_days: LookbackDays = 3
    enabled: bool = True


class DataSourceUpdate(StrictModel):
    name: Name | None = None
    connector: ConnectorKey | None = Field(
        None, description="Can't change: a source of another platform is a new source"
    )
    config: JsonObject | None = Field(None, description="Replaces the config whole")
    credentials: JsonObject | None = Field(
        None, description=CREDENTIALS_DESCRIPTION + "; replaced whole, `null` clears them"
    )
    timezone: Timezone | None = None
    schedule: Schedule | None = None
    lookback_days: LookbackDays | None = None
    enabled: bool | None = None


class DataSourceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    connector: str
    config: dict[str, Any]
    credentials_set: bool
    timezone: str
    schedule: str
    lookback_days: int
    enabled: bool
    last_synced_day: date | None = Field(
        description="The last day the incremental window has fetched; a failed run never moves it"
    )
    last_success_at: datetime | None = Field(
        description="When a run last succeeded (or was partial); a failed run never moves it"
    )
    health: Health = Field(
        "healthy",
        description="`paused` (failed runs in a row reached KRSYNC_PAUSE_AFTER_FAILURES; "
        "scheduled syncs skip it until resumed), `needs_reauth` (the platform refused the "
        "credentials, or they run out within 7 days), `failing` (the last run failed), "
        "`degraded` (the last run was partial or warned), else `healthy`",
    )
    health_reason: str | None = Field(
        None, description="Why the source is not `healthy`, in words an admin acts on"
    )
    consecutive_failures: int = Field(0, description="Failed runs in a row")
    last_attempt_at: datetime | None = Field(
        None, description="When the last run finished, whatever its outcome"
    )
    paused_at: datetime | None = Field(None, description="When the scheduler paused it")
    api_version: str | None = Field(
        None,
        description="The platform API version this source's calls use (its config's "
        "`api_version`, else the connector's); null for sources that call no versioned API",
    )
    api_version_sunset: date | None = Field(
        None,
        description="The day the vendor retires `api_version`, where it publishes one; move "
        "to a newer version before it by changing the config",
    )
    notices: list[str] = Field(
        default_factory=list,
        description="What an admin must do for this source: what its connector said at the "
        "last check or sync (e.g. re-authorize before a date), and a `lookback_days` shorter "
        "than the connector's `recommended_lookback_days`",
    )
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, data: Any) -> Any:
        # The encrypted token stays on the row: only whether there is one goes out.
        if hasattr(data, "credentials_encrypted"):
            fields = set(cls.model_fields) - {
                "credentials_set",
                "notices",
                "api_version",
                "api_version_sunset",
                "health",
                "health_reason",
            }
            now = clock.utcnow()
            return {
                **{name: getattr(data, name) for name in fields},
                "credentials_set": data.credentials_encrypted is not None,
                "notices": list((data.state or {}).get("notices", [])),
                # Computed from the row's facts at read time: credentials near their end
                # turn a source `needs_reauth` with no run in between.
                "health": health_of(data, now),
                "health_reason": reason_of(data, now),
            }
        return data


class DataSourceCreated(DataSourceRead):
    push_secret: str | None = Field(
        None, description="A `push` source's generated signing secret, shown this once"
    )


class CheckRead(BaseModel):
    ok: bool
    message: str
    notices: list[str] = Field(
        default_factory=list,
        description="What an admin must do soon, e.g. re-authorize (as the source's `notices`)",
    )


class SyncRequest(StrictModel):
    from_: Day | None = Field(None, alias="from", description="First day (inclusive)")
    to: Day | None = Field(None, description="Last day (inclusive)")

    @model_validator(mode="after")
    def _window(self) -> SyncRequest:
        if (self.from_ is None) != (self.to is None):
            raise ValueError("give both `from` and `to`, or neither for the usual window")
        if self.from_ is not None and self.to is not None:
            if self.to < self.from_:
                raise ValueError("`to` must be on or after `from`")
            if (self.to - self.from_).days + 1 > MAX_SYNC_DAYS:
                raise ValueError(f"sync at most {MAX_SYNC_DAYS} days at a time")
        return self

    @property
    def window(self) -> tuple[date, date] | None:
        if self.from_ is None or self.to is None:
            return None
        return self.from_, self.to


# --- mappings ---------------------------------------------------------------------------------


class MappingCreate(StrictModel):
    key_result_id: RefId
    data_source_id: RefId
    metric: Metric = Field(description="A metric of the source's connector catalogue")
    params: JsonObject = Field(default_factory=dict, description="The metric's options")
    filters: Filters = Field(default_factory=list)
    role: Role = "value"
    group: Short = ""
    scale: Scale = 1.0


class MappingUpdate(StrictModel):
    key_result_id: RefId | None = Field(
        None, description="Can't change: map the other key result with a new mapping"
    )
    data_source_id: RefId | None = None
    metric: Metric | None = None
    params: JsonObject | None = Field(None, description="Replaces the params whole")
    filters: Filters | None = Field(None, description="Replaces the filters whole")
    role: Role | None = None
    group: Short | None = None
    scale: Scale | None = None


class MappingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    key_result_id: int
    data_source_id: int
    metric: str
    params: dict[str, Any]
    filters: list[dict[str, Any]]
    role: str
    group: str
    scale: float
    backfill_pending: bool
    created_at: datetime
    updated_at: datetime


class PreviewRequest(StrictModel):
    from_: Day = Field(alias="from", description="First day (inclusive)")
    to: Day = Field(description="Last day (inclusive)")

    @model_validator(mode="after")
    def _window(self) -> PreviewRequest:
        if self.to < self.from_:
            raise ValueError("`to` must be on or after `from`")
        if self.to - self.from_ >= timedelta(days=MAX_PREVIEW_DAYS):
            raise ValueError(f"preview at most {MAX_PREVIEW_DAYS} days at a time")
        return self


class PreviewValue(BaseModel):
    date: date
    group: str
    role: str
    value: float


class PreviewRead(BaseModel):
    mapping_id: int
    from_: date = Field(serialization_alias="from")
    to: date
    values: list[PreviewValue]


# --- sync runs --------------------------------------------------------------------------------


class SyncRunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    data_source_id: int
    trigger: str
    status: str
    window_from: date | None
    window_to: date | None
    started_at: datetime
    finished_at: datetime | None
    api_calls: int
    observations_written: int
    warnings: list[Any]
    details: dict[str, Any]
    error: str | None
