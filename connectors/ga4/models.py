"""What a GA4 source is configured with and which metrics it knows: the config and params
models, and the catalogue (any metric API name is accepted; the catalogue lists the usual ones
with their units and whether their days add up)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.base import BaseUrl, FilterOp, MetricSpec

GA4_ROOT = "https://analyticsdata.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/analytics.readonly"
GA4_OPS: frozenset[FilterOp] = frozenset({"eq", "neq", "in", "not_in", "contains"})
#: API names: `sessions`, `keyEvents:purchase`, `customEvent:plan`, `customUser:tier`.
API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(?::[A-Za-z0-9_]+)?$")


class GA4Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    property_id: str = Field(
        description="The GA4 property's numeric ID (Admin > Property details), e.g. 123456789.",
        pattern=r"^(properties/)?\d+$",
    )
    base_url: BaseUrl | None = Field(
        None, description=f"Replaces {GA4_ROOT} (a proxy, a regional endpoint, a test server)."
    )

    @field_validator("property_id")
    @classmethod
    def _bare_id(cls, value: str) -> str:
        return value.removeprefix("properties/")


class GA4Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    split_by: str | None = Field(
        None,
        description="A dimension API name (e.g. `sessionDefaultChannelGroup`): one group per "
        "value instead of one figure a day.",
        pattern=API_NAME.pattern,
    )

    @field_validator("split_by")
    @classmethod
    def _not_date(cls, value: str | None) -> str | None:
        if value == "date":
            raise ValueError("every figure is already split by `date`")
        return value


_DISTINCT_USERS = re.compile(r"(Users|Purchasers)$")
#: Rates, averages and per-X ratios: `bounceRate`, `sessionKeyEventRate:purchase`,
#: `averageSessionDuration`, `sessionsPerUser`, `dauPerMau`, `returnOnAdSpend`, ...
_LEVEL = re.compile(r"(Rate(:|$)|^average|Average|Per[A-Z]|^returnOnAdSpend|Position$)")
#: Counted once per user ever, so daily values do add up.
_FIRST_TIME = frozenset({"newUsers", "firstTimePurchasers"})


def is_additive(metric: str) -> bool:
    """Distinct user counts and rates can't be summed over days; counts and amounts can."""
    base = metric.split(":", 1)[0]
    return base in _FIRST_TIME or not (_DISTINCT_USERS.search(base) or _LEVEL.search(base))


def _unit(metric: str) -> str:
    base = metric.split(":", 1)[0]
    if _LEVEL.search(base) and "Rate" in base:
        return "ratio"
    if "Duration" in base:
        return "seconds"
    if re.search(r"Revenue|Cost|AdSpend|Value$", base):
        return "currency"
    return "count"


def _spec(name: str, description: str = "", *, lower_is_better: bool = False) -> MetricSpec:
    """Its aggregations follow from ``additive`` (MetricSpec's default)."""
    return MetricSpec(
        name=name,
        description=description or f"GA4 metric `{name}`, per day",
        unit=_unit(name),
        params_model=GA4Params,
        filters={"*": GA4_OPS},
        additive=is_additive(name),
        lower_is_better=lower_is_better,
    )


CATALOGUE: tuple[MetricSpec, ...] = (
    _spec("sessions", "Sessions that began on the day"),
    _spec("engagedSessions", "Sessions that lasted over 10 s, had a key event or 2+ page views"),
    _spec("newUsers", "Users who visited for the first time"),
    _spec("keyEvents", "Key events (formerly conversions); `keyEvents:<event>` for one event"),
    _spec("totalRevenue", "Purchase, subscription and ad revenue, in the property's currency"),
    _spec("purchaseRevenue", "Revenue from purchases, in the property's currency"),
    _spec("transactions", "Purchase-like events"),
    _spec("screenPageViews", "App screens and web pages viewed"),
    _spec("eventCount", "Events triggered"),
    _spec("activeUsers", "Distinct users engaged on the day (not additive: don't sum days)"),
    _spec("totalUsers", "Distinct users on the day (not additive: don't sum days)"),
    _spec("bounceRate", "Share of sessions that were not engaged (0-1)", lower_is_better=True),
    _spec("engagementRate", "Share of sessions that were engaged (0-1)"),
)
