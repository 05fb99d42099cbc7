"""What a LinkedIn source is configured with and signs in with, the API's fixed names, and which
field of each statistics endpoint's answer every metric reads."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.base import BaseUrl, MetricSpec

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


class LinkedInConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organization_id: str = Field(
        description="The organization's numeric id (the digits of `urn:li:organization:<id>`)."
    )
    api_version: str = Field(
        DEFAULT_VERSION,
        description="The `LinkedIn-Version` header (YYYYMM); a version is sunset after a year.",
    )
    base_url: BaseUrl = Field(API_ROOT, description="The API root; a proxy or a local test server.")

    @field_validator("api_version")
    @classmethod
    def _month(cls, value: str) -> str:
        value = value.strip()
        if not _VERSION.fullmatch(value):
            raise ValueError(
                f"`api_version` is a LinkedIn-Version month as YYYYMM, e.g. {DEFAULT_VERSION}"
            )
        return value

    @field_validator("organization_id", mode="before")
    @classmethod
    def _digits(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            value = value.strip().removeprefix("urn:li:organization:")
            if not value.isdigit():
                raise ValueError("`organization_id` is the organization's numeric id, e.g. 2414183")
        return value


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


class LinkedInCredentials(BaseModel):
    """A member's access token; with a refresh token, the app's client id and secret too."""

    model_config = ConfigDict(extra="forbid")

    access_token: str = Field(min_length=1)
    refresh_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    expires_at: float | None = Field(
        None, description="When the access token expires: Unix seconds or an ISO date."
    )
    refresh_token_expires_at: float | None = Field(
        None, description="When the refresh token expires (kept after each refresh)."
    )

    @field_validator("expires_at", "refresh_token_expires_at", mode="before")
    @classmethod
    def _epoch(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return float(value)
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("give Unix seconds or an ISO date such as 2026-12-31") from None
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()

    @model_validator(mode="after")
    def _refresh_needs_client(self) -> LinkedInCredentials:
        if self.refresh_token and not (self.client_id and self.client_secret):
            raise ValueError("a `refresh_token` needs the app's `client_id` and `client_secret`")
        return self


def _spec(name: str, description: str, *, additive: bool = True, **kw: Any) -> MetricSpec:
    unit = kw.pop("unit", "count" if additive else "ratio")
    return MetricSpec(name=name, description=description, unit=unit, additive=additive, **kw)
