"""Deterministic synthetic marketing figures, so ``krsync demo`` runs the product with no account.

A figure depends only on (seed, metric, the segments the filters select, day), never on the
window asked for: re-syncing or backfilling any span gives the same numbers, which is what an
idempotent sync must be able to rely on. Each figure is a base level, a gentle trend in days
since ``EPOCH``, a weekly season and noise from a PRNG seeded by a stable hash (``hashlib``, as
``hash()`` is salted per process).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import (
    ADDITIVE_AGGREGATIONS,
    LEVEL_AGGREGATIONS,
    SET_OPS,
    CheckResult,
    Connector,
    DailyValue,
    FetchResult,
    Filter,
    History,
    MappingError,
    MetricQuery,
    MetricSpec,
    Window,
)

EPOCH = date(2024, 1, 1)

#: Each dimension's segments with their fixed share of the total (each table sums to 1).
SEGMENTS: dict[str, dict[str, float]] = {
    "channel": {
        "Organic Search": 0.38, "Paid Search": 0.16, "Email": 0.09, "Organic Social": 0.10,
        "Paid Social": 0.07, "Direct": 0.14, "Referral": 0.06,
    },
    "platform": {"linkedin": 0.34, "instagram": 0.26, "youtube": 0.14, "x": 0.12, "facebook": 0.14},
    "country": {
        "US": 0.34, "GB": 0.12, "DE": 0.11, "FR": 0.08, "NL": 0.05, "ES": 0.05, "IT": 0.04,
        "CA": 0.06, "AU": 0.04, "IN": 0.06, "BR": 0.05,
    },
}  # fmt: skip

#: Monday-first weekly profiles; normalised to a mean of 1 so they don't bend the trend.
_RAW_SEASONS: dict[str, tuple[float, ...]] = {
    "b2b": (1.15, 1.2, 1.2, 1.15, 1.05, 0.45, 0.4),  # buyers work weekdays
    "web": (1.08, 1.1, 1.1, 1.06, 1.0, 0.8, 0.86),
    "social": (0.94, 0.97, 0.98, 0.98, 1.0, 1.08, 1.05),  # scrolling peaks at weekends
    "email": (0.3, 2.3, 0.4, 2.1, 0.6, 0.15, 0.15),  # newsletters go out Tuesday and Thursday
    "bounce": (0.98, 0.97, 0.97, 0.98, 1.0, 1.05, 1.05),  # weekend visitors browse less
    "flat": (1.0,) * 7,
}
SEASONS = {k: tuple(v * 7 / sum(p) for v in p) for k, p in _RAW_SEASONS.items()}

Kind = Literal["count", "rate", "cumulative"]
WEB = ("channel", "country")
SOCIAL = ("platform", "country")
GEO = ("country",)


class DemoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = Field(42, description="Another seed gives another, equally plausible company.")


class DemoCredentials(BaseModel):
    """Demo data needs no secret; an empty model still refuses stray fields."""

    model_config = ConfigDict(extra="forbid")


class WebParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    split_by: Literal["channel", "country"] | None = Field(None, description="One group each.")


class SocialParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    split_by: Literal["platform", "country"] | None = Field(None, description="One group each.")


class GeoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    split_by: Literal["country"] | None = Field(None, description="One group per country.")


_PARAMS: dict[tuple[str, ...], type[BaseModel]] = {
    WEB: WebParams,
    SOCIAL: SocialParams,
    GEO: GeoParams,
}


@dataclass(frozen=True)
class Shape:
    """How a metric's synthetic series is drawn."""

    kind: Kind
    base: float  # count: per day at EPOCH; rate: level; cumulative: daily gain
    growth: float  # count, cumulative: relative per day; rate: points per day
    season: str
    dims: tuple[str, ...]
    noise: float = 0.08  # count: relative; rate: points; cumulative: days of gain
    start: float = 0.0  # cumulative: level at EPOCH
    spread: float = 0.0  # rate: how far a segment's level strays from the total's
    low: float = 0.0
    high: float = math.inf


@dataclass(frozen=True)
class _Entry:
    name: str
    description: str
    unit: str
    shape: Shape
    history: History = "daily"


def _c(base: float, growth: float, season: str, dims: tuple[str, ...]) -> Shape:
    return Shape("count", base, growth, season, dims)


_ENTRIES = (
    _Entry("sessions", "Website sessions", "sessions", _c(4200, 6e-4, "web", WEB)),
    _Entry("engaged_sessions", "Sessions with engagement", "sessions", _c(2750, 7e-4, "web", WEB)),
    _Entry("signups", "Product sign-ups", "signups", _c(38, 8e-4, "b2b", WEB)),
    _Entry("newsletter_subscribers", "New newsletter subscribers per day", "subscribers",
           _c(22, 7e-4, "web", WEB)),
    _Entry("leads", "New CRM leads", "leads", _c(55, 7e-4, "b2b", WEB)),
    _Entry("deals_created", "Deals created, by original source", "deals", _c(9, 6e-4, "b2b", WEB)),
    _Entry("deals_won", "Deals closed won, by original source", "deals", _c(3.2, 6e-4, "b2b", WEB)),
    _Entry("pipeline_value", "Value of deals created", "USD", _c(42000, 6e-4, "b2b", WEB)),
    _Entry("new_followers", "Followers gained a day", "followers", _c(42, 9e-4, "social", SOCIAL)),
    _Entry("followers", "Follower count at the end of each day", "followers",
           Shape("cumulative", 42, 9e-4, "flat", SOCIAL, noise=0.5, start=12000)),
    _Entry("impressions", "Impressions of posts", "impressions", _c(18000, 8e-4, "social", SOCIAL)),
    _Entry("clicks", "Clicks on posts", "clicks", _c(260, 8e-4, "social", SOCIAL)),
    _Entry("engagement_rate", "Engagements per impression", "%",
           Shape("rate", 4.1, 4e-4, "social", SOCIAL, noise=0.35, spread=1.5, high=100)),
    _Entry("bounce_rate", "Share of single-page sessions", "%",
           Shape("rate", 46, -2e-3, "bounce", WEB, noise=2.0, spread=10, high=100)),
    _Entry("search_position", "Average search result position (lower is better)", "position",
           Shape("rate", 14, -4e-3, "flat", GEO, noise=0.6, spread=5, low=1, high=100)),
    _Entry("emails_sent", "Newsletter emails delivered", "emails", _c(5200, 7e-4, "email", GEO)),
    _Entry("unique_opens", "Newsletter unique opens", "opens", _c(2100, 7e-4, "email", GEO)),
    _Entry("unique_clicks", "Newsletter unique clicks", "clicks", _c(310, 7e-4, "email", GEO)),
    _Entry("audience_size", "Newsletter audience now (a snapshot)", "subscribers",
           Shape("cumulative", 22, 7e-4, "flat", GEO, noise=0.5, start=8500), history="snapshot"),
)  # fmt: skip
SHAPES = {e.name: e.shape for e in _ENTRIES}
#: The demo's `decrease` / `at_most` key results read these.
_LOWER_IS_BETTER = frozenset({"bounce_rate", "search_position"})

Selection = dict[str, tuple[str, ...]]


def _spec(e: _Entry) -> MetricSpec:
    additive = e.shape.kind == "count"
    return MetricSpec(
        name=e.name,
        description=e.description,
        unit=e.unit,
        params_model=_PARAMS[e.shape.dims],
        filters=dict.fromkeys(e.shape.dims, SET_OPS),
        aggregations=ADDITIVE_AGGREGATIONS if additive else LEVEL_AGGREGATIONS,
        history=e.history,
        additive=additive,
        lower_is_better=e.name in _LOWER_IS_BETTER,
    )


class DemoConnector(Connector[DemoConfig, DemoCredentials]):
    """Synthetic figures for the embedded demo and for tests; it makes no HTTP call."""

    key = "demo"
    name = "Demo data"
    category = "demo"
    metrics = tuple(_spec(e) for e in _ENTRIES)
    recommended_lookback_days = 0  # synthetic figures never get revised after the fact
    #: They stand for GA4's and a CRM's, whose last days are: the demo shows them provisional.
    settle_days = 2

    async def check(self) -> CheckResult:
        return CheckResult(
            "Demo data is always reachable", timezone="UTC", details={"seed": self.config.seed}
        )

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult()
        for query in queries:
            spec, shape = self.metric_spec(query.metric), SHAPES.get(query.metric)
            if spec is None or shape is None:
                result.query_errors[query.id] = f"demo data has no metric `{query.metric}`"
                continue
            try:
                selection = select(shape.dims, query.filters)
            except ValueError as exc:
                result.query_errors[query.id] = str(exc)
                continue
            days = [window.end] if spec.history == "snapshot" else list(window.days())
            split: str | None = getattr(query.params, "split_by", None)
            groups: list[tuple[str | None, Selection]] = (
                [(s, {**selection, split: (s,)}) for s in selection[split]]
                if split
                else [(None, selection)]
            )
            for group, sel in groups:
                for day in days:
                    value = figure(self.config.seed, query.metric, shape, sel, day)
                    if value is not None:
                        result.values.append(DailyValue(query.id, day, value, group))
        return result

    async def validate_mapping_online(self, query: MetricQuery) -> None:
        """Catch a misspelt segment ("email" for "Email"), which would silently give zeros."""
        for i, flt in enumerate(query.filters):
            known = SEGMENTS.get(flt.field, {})
            unknown = [v for v in flt.values if v not in known]
            if known and unknown:
                raise MappingError(
                    f"filters[{i}].value",
                    f"{unknown[0]!r} is not a `{flt.field}`; known: {', '.join(known)}",
                )


def select(dims: tuple[str, ...], filters: Sequence[Filter]) -> Selection:
    """The segments of each dimension that every filter on it lets through."""
    for flt in filters:
        if flt.field not in dims:
            raise ValueError(f"demo data can't be filtered on `{flt.field}` for this metric")
        if flt.op not in SET_OPS:
            raise ValueError(f"demo data doesn't support `{flt.op}` filters")
    return {
        d: tuple(s for s in SEGMENTS[d] if all(_passes(f, s) for f in filters if f.field == d))
        for d in dims
    }


def _passes(flt: Filter, segment: str) -> bool:
    return (segment in flt.values) == (flt.op in ("eq", "in"))


def figure(seed: int, metric: str, shape: Shape, selection: Selection, day: date) -> float | None:
    """The value of one metric for one selection and day; None when a rate has no segment."""
    shares = {d: sum(SEGMENTS[d][s] for s in segs) for d, segs in selection.items()}
    share = math.prod(shares.values())
    if share == 0:
        return None if shape.kind == "rate" else 0.0
    # Only narrowed dimensions enter the key, so `neq X` and `in <all but X>` draw the same noise.
    narrowed = sorted((d, segs) for d, segs in selection.items() if len(segs) < len(SEGMENTS[d]))
    key = ";".join(f"{d}={','.join(sorted(segs))}" for d, segs in narrowed)
    rng = _rng(seed, metric, key, day.isoformat())
    t = (day - EPOCH).days
    season = SEASONS[shape.season][day.weekday()]
    if shape.kind == "count":
        mean = shape.base * share * max(0.05, 1 + shape.growth * t) * season
        drawn = mean * max(0.0, 1 + rng.gauss(0, shape.noise))
        # Stochastic rounding: 0.3 deals a day must average 0.3, not always round to 0.
        return float(math.floor(drawn + rng.random()))
    if shape.kind == "cumulative":
        level = shape.start + shape.base * (
            t + shape.growth * t * t / 2 + rng.gauss(0, shape.noise)
        )
        return float(max(0, round(share * level)))
    offset = sum(
        sum(SEGMENTS[d][s] * _offset(seed, metric, d, s, shape.spread) for s in segs) / shares[d]
        for d, segs in selection.items()
    )
    level = (shape.base + shape.growth * t + offset) * season + rng.gauss(0, shape.noise)
    return round(min(shape.high, max(shape.low, level)), 2)


def _offset(seed: int, metric: str, dim: str, segment: str, spread: float) -> float:
    """A segment's fixed distance from the total, so segments differ the way real ones do."""
    return (_rng(seed, metric, dim, segment).random() * 2 - 1) * spread


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))
