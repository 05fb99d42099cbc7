"""What a Search Console source is configured with and which figures it offers: the property,
the search type, the four metrics and the filters each of them takes."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from connectors.base import BaseUrl, FilterOp, MetricSpec
from connectors.models import Params, Strict, catalogue, root_field

SC_ROOT = "https://www.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/webmasters.readonly"
#: "Dates are in PT" (searchanalytics/query, startDate): the day boundaries of every figure.
PACIFIC = "America/Los_Angeles"
MAX_ROW_LIMIT = 25_000
DEVICES = frozenset({"DESKTOP", "MOBILE", "TABLET"})
SearchType = Literal["web", "image", "video", "news", "discover", "googleNews"]

_TEXT_OPS: frozenset[FilterOp] = frozenset({"eq", "neq", "contains", "in", "not_in"})
_CODE_OPS: frozenset[FilterOp] = frozenset({"eq", "neq", "in", "not_in"})
FILTERS: dict[str, frozenset[FilterOp]] = {
    "query": _TEXT_OPS,
    "page": _TEXT_OPS,
    "country": _CODE_OPS,
    "device": _CODE_OPS,
    "searchAppearance": _CODE_OPS,
}


class SearchConsoleConfig(Strict):
    site_url: str = Field(
        description="The property as Search Console names it: `https://www.example.com/` "
        "(URL prefix) or `sc-domain:example.com` (domain)."
    )
    base_url: BaseUrl | None = root_field(SC_ROOT, unset=True)

    @field_validator("site_url")
    @classmethod
    def _property(cls, value: str) -> str:
        value = value.strip()
        if re.match(r"^sc-domain:[^\s/]+$", value):
            return value
        if not re.match(r"(?i)^https?://[^/\s]+", value):
            raise ValueError(
                "`site_url` is `https://www.example.com/` (URL prefix) or "
                "`sc-domain:example.com` (domain property)"
            )
        # A URL-prefix property always ends with a slash; without it Search Console says 403.
        return value if re.match(r"(?i)^https?://[^/]+/", value) else value + "/"


class SearchConsoleParams(Params):
    search_type: SearchType = Field(
        "web", description="Which Google results: web, image, video, news, discover, googleNews."
    )


CATALOGUE: tuple[MetricSpec, ...] = catalogue(
    {
        "clicks": ("Clicks from Google Search results to the site", "clicks"),
        "impressions": ("Times a link to the site appeared in results", "impressions"),
        "ctr": ("Clicks / impressions of the day (0-1)", "ratio", {"additive": False}),
        # 1 is the top of the page: an "average position at most 8" key result is `at_most`.
        "position": (
            "Average top position of the site in results (1 is the top: lower is better)",
            "position",
            {"additive": False, "lower_is_better": True},
        ),
    },
    params_model=SearchConsoleParams,
    filters=FILTERS,
)
