"""Meta's conventions and what a Meta source is told: limits, metric names, Pacific days.

The config and credentials models, the catalogue's spec builder, and the small readers of Meta's
values (a day from ``end_time``, a number) that the Graph calls and the insights parsing share.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from connectors.base import BaseUrl, MetricSpec
from connectors.models import Strict, matching, numeric_id, root_field

GRAPH_ROOT = "https://graph.facebook.com"
DEFAULT_VERSION = "v25.0"
#: The day Meta stops serving each Graph API version ("Available until"), as its versions page
#: lists them (https://developers.facebook.com/docs/graph-api/changelog/versions/). Meta names a
#: day once the next version ships; a version it has not dated yet is missing here (no sunset).
GRAPH_SUNSETS: dict[str, date] = {
    "v8.0": date(2022, 11, 1),
    "v9.0": date(2023, 2, 23),
    "v10.0": date(2023, 6, 8),
    "v11.0": date(2023, 9, 14),
    "v12.0": date(2024, 2, 8),
    "v13.0": date(2024, 5, 28),
    "v14.0": date(2024, 9, 17),
    "v15.0": date(2024, 11, 20),
    "v16.0": date(2025, 5, 14),
    "v17.0": date(2025, 9, 12),
    "v18.0": date(2026, 1, 26),
    "v19.0": date(2026, 5, 21),
    "v20.0": date(2026, 9, 24),
    "v21.0": date(2027, 1, 21),
    "v22.0": date(2027, 5, 20),
    "v23.0": date(2027, 10, 8),
    "v24.0": date(2028, 2, 18),
    "v25.0": date(2028, 7, 29),
}
_VERSION = re.compile(r"v[1-9]\d*\.\d{1,2}")
#: Meta closes its insight days at midnight Pacific time.
PACIFIC = "America/Los_Angeles"
PAGE_WINDOW_DAYS = 90
INSTAGRAM_WINDOW_DAYS = 30
#: Above this share of a usage quota (percent), the next call waits instead of being sent.
USAGE_SLOWDOWN = 90.0
#: How long to hold off when Meta reports high usage but no time to regain access.
USAGE_PAUSE_SECONDS = 60.0
MAX_PAGES = 50
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613})
INVALID_METRIC = 100
NO_SUCH_OBJECT_SUBCODE = 33

Surface = Literal["page", "instagram"]
#: Whose permissions an error names: one object's, or both (``check()`` asks for both at once).
Scope = Literal["page", "instagram", "both"]
_NAME = re.compile(r"^(page|instagram)\.([a-z][a-z0-9_]*)$")
#: Levels (a total on each day) and distinct counts: summing them over days is wrong.
_LEVELS: dict[Surface, frozenset[str]] = {
    "page": frozenset(
        {
            "page_follows",
            "page_fans",
            "page_fans_online",
            "page_fans_online_per_day",
            "page_fans_country",
            "page_fans_city",
            "page_fans_locale",
            "page_fans_gender_age",
        }
    ),
    "instagram": frozenset(
        {
            "reach",
            "accounts_engaged",
            "online_followers",
            "audience_city",
            "audience_country",
            "audience_gender_age",
            "audience_locale",
            "follower_demographics",
            "engaged_audience_demographics",
            "reached_audience_demographics",
        }
    ),
}
PERMISSIONS: dict[Scope, str] = {
    "page": "`pages_read_engagement` and `read_insights` (from a person who can perform the "
    "ANALYZE task on the Page)",
    "instagram": "`instagram_basic`, `instagram_manage_insights` and `pages_read_engagement`",
    "both": "`pages_read_engagement`, `read_insights`, `instagram_basic` and "
    "`instagram_manage_insights` (from a person who can perform the ANALYZE task on the Page)",
}


_GraphVersion = Annotated[
    str, matching(_VERSION, f"`api_version` is a Graph API version such as {DEFAULT_VERSION}")
]
_Id = Annotated[str, Field(pattern=r"^\d+$"), numeric_id(example="104170188340582")]


class MetaConfig(Strict):
    page_id: _Id = Field(description="The Facebook Page's numeric id.")
    instagram_user_id: _Id | None = Field(
        None,
        description="The Instagram professional account's id (the Page's "
        "`instagram_business_account`), for `instagram.*` metrics.",
    )
    api_version: _GraphVersion = Field(
        DEFAULT_VERSION,
        description="The Graph API version in the path, e.g. v25.0 (each lives about two years).",
    )
    base_url: BaseUrl = root_field(GRAPH_ROOT)


class MetaCredentials(Strict):
    access_token: str = Field(
        min_length=1,
        description="A Page access token (or a system user token) with read_insights, "
        "pages_read_engagement and, for Instagram, instagram_manage_insights.",
    )


def _surface_spec(surface: Surface, insight: str, description: str | None = None) -> MetricSpec:
    additive = insight not in _LEVELS[surface] and not insight.endswith("_unique")
    where = "Facebook Page" if surface == "page" else "Instagram account"
    return MetricSpec(
        name=f"{surface}.{insight}",
        description=description or f"The {where} insight `{insight}`, by day",
        unit="count",
        additive=additive,
        history="daily",
    )


def _day_of(end_time: Any) -> date | None:
    """The day a value covers: the Pacific day of the instant just before ``end_time``."""
    try:
        moment = datetime.strptime(str(end_time), "%Y-%m-%dT%H:%M:%S%z")
    except (TypeError, ValueError):
        return None
    return (moment.astimezone(ZoneInfo(PACIFIC)) - timedelta(seconds=1)).date()


def _midnight(day: date) -> int:
    return int(datetime.combine(day, time(), ZoneInfo(PACIFIC)).timestamp())


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


Series = dict[str, dict[date, float]]
