"""What a LinkedIn source is configured with and signs in with, the API's fixed names, and which
field of each statistics endpoint's answer every metric reads."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Any

from pydantic import Field

from connectors.base import BaseUrl, MetricSpec
from connectors.models import Epoch, OAuthCredentials, Strict, matching, numeric_id, root_field

API_ROOT = "https://api.linkedin.com/rest"
TOKEN_ENDPOINT = "https://www.linkedin.com/oauth/v2/accessToken"
#: A version LinkedIn serves for about a year after its release; bump it in the source's config.
DEFAULT_VERSION = "202606"
_VERSION = re.compile(r"20\d{2}(0[1-9]|1[0-2])")
EDGE_TYPE = "COMPANY_FOLLOWED_BY_MEMBER"
#: How long before a token's expiry the source starts asking for a re-authorization.
REAUTHORIZE_WITHIN = timedelta(days=7)
ADMIN_HINT = (
    "the token needs the `rw_organization_admin` permission, granted by a member with the "
    "ADMINISTRATOR role on organization {org}"
)

FOLLOWER_FIELDS = {
    "followers.organic_gain": "organicFollowerGain",
    "followers.paid_gain": "paidFollowerGain",
}
SHARE_FIELDS = {
    "shares.impressions": "impressionCount",
    "shares.clicks": "clickCount",
    "shares.likes": "likeCount",
    "shares.comments": "commentCount",
    "shares.shares": "shareCount",
    "shares.engagement": "engagement",
}


_Month = Annotated[
    str,
    matching(
        _VERSION, f"`api_version` is a LinkedIn-Version month as YYYYMM, e.g. {DEFAULT_VERSION}"
    ),
]


class LinkedInConfig(Strict):
    organization_id: Annotated[str, numeric_id("urn:li:organization:", example="2414183")] = Field(
        description="The organization's numeric id (the digits of `urn:li:organization:<id>`)."
    )
    api_version: _Month = Field(
        DEFAULT_VERSION,
        description="The `LinkedIn-Version` header (YYYYMM); a version is sunset after a year.",
    )
    base_url: BaseUrl = root_field(API_ROOT)


def version_sunset(version: str) -> date | None:
    """The earliest day LinkedIn may retire ``version``: a year after its month begins.

    LinkedIn supports each monthly version "for a minimum of one year before sunset"
    (https://learn.microsoft.com/en-us/linkedin/marketing/versioning) and names the exact day,
    mid-month, on its migrations page; counting from the month's first day errs early, never late.
    """
    if not _VERSION.fullmatch(version):
        return None
    year, month = int(version[:4]), int(version[4:])
    return date(year + 1, month, 1)


class LinkedInCredentials(OAuthCredentials):
    """A member's access token; with a refresh token, the app's client id and secret too."""

    access_token: str = Field(min_length=1, description="The member's OAuth access token.")
    refresh_token_expires_at: Epoch | None = Field(
        None, description="When the refresh token expires (kept after each refresh)."
    )


def _spec(name: str, description: str, *, additive: bool = True, **kw: Any) -> MetricSpec:
    unit = kw.pop("unit", "count" if additive else "ratio")
    return MetricSpec(name=name, description=description, unit=unit, additive=additive, **kw)
