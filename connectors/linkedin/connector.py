"""LinkedIn Community Management API: an organization page's followers and share statistics.

Three endpoints under ``https://api.linkedin.com/rest`` (``config.base_url`` replaces that root),
every call carrying ``LinkedIn-Version: YYYYMM`` and ``X-Restli-Protocol-Version: 2.0.0``:

- ``GET /organizationalEntityFollowerStatistics?q=organizationalEntity&organizationalEntity=<URN>
  &timeIntervals=(timeRange:(start:<ms>,end:<ms>),timeGranularityType:DAY)`` gives one element a
  day with ``followerGains{organicFollowerGain, paidFollowerGain}`` (data from 12 months back to
  about two days ago; a gain can be negative when more members unfollow than follow);
- ``GET /organizationalEntityShareStatistics`` with the same parameters gives one element a day
  with ``totalShareStatistics{impressionCount, clickCount, likeCount, commentCount, shareCount,
  engagement}`` (a rolling 12 months; ``engagement`` is a rate, so it is not summed);
- ``GET /networkSizes/<URN>?edgeType=COMPANY_FOLLOWED_BY_MEMBER`` gives ``firstDegreeSize``, the
  follower count now (a snapshot: LinkedIn keeps no history of it).

Rest.li 2.0 wants the parentheses, colons and commas of ``timeIntervals`` as they are and the URN
percent-encoded, which a generic query encoder gets wrong (a 400), so the query string is built
here. Time ranges are epoch milliseconds; days are UTC days.

Access tokens live 60 days. With a refresh token (approved Marketing partners only) the engine
refreshes through ``https://www.linkedin.com/oauth/v2/accessToken`` and stores the new token;
without one, the source shows a "re-authorize" notice a week before ``expires_at``, and a 401
afterwards says to re-authorize.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from pydantic import Field

from connectors.base import (
    BaseUrl,
    CheckResult,
    Connector,
    ConnectorAuthError,
    FetchResult,
    HttpOptions,
    MetricQuery,
    OAuthSpec,
    RetriableError,
    Window,
)
from connectors.errors import Classifier, Refusal
from connectors.models import (
    Epoch,
    OAuthCredentials,
    Strict,
    catalogue,
    matching,
    numeric_id,
    root_field,
)
from connectors.series import daily, epoch_ms, midnight, rows_of, snapshot

API_ROOT = "https://api.linkedin.com/rest"
TOKEN_ENDPOINT = "https://www.linkedin.com/oauth/v2/accessToken"
#: A version LinkedIn serves for about a year after its release; bump it in the source's config.
DEFAULT_VERSION = "202606"
_VERSION = re.compile(r"20\d{2}(0[1-9]|1[0-2])")
#: How long before a token's expiry the source starts asking for a re-authorization.
REAUTHORIZE_WITHIN = timedelta(days=7)
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


class LinkedInConfig(Strict):
    organization_id: Annotated[str, numeric_id("urn:li:organization:", example="2414183")] = Field(
        description="The organization's numeric id (the digits of `urn:li:organization:<id>`)."
    )
    api_version: Annotated[
        str,
        matching(
            _VERSION, f"`api_version` is a LinkedIn-Version month as YYYYMM, e.g. {DEFAULT_VERSION}"
        ),
    ] = Field(
        DEFAULT_VERSION,
        description="The `LinkedIn-Version` header (YYYYMM); a version is sunset after a year.",
    )
    base_url: BaseUrl = root_field(API_ROOT)


class LinkedInCredentials(OAuthCredentials):
    """A member's access token; with a refresh token, the app's client id and secret too."""

    access_token: str = Field(min_length=1, description="The member's OAuth access token.")
    refresh_token_expires_at: Epoch | None = Field(
        None, description="When the refresh token expires (kept after each refresh)."
    )


def _words(response: httpx.Response, body: Any) -> tuple[tuple[str, ...], str]:
    """LinkedIn's ``{"message", "code"}``; its reason phrase when the body says nothing."""
    body = body if isinstance(body, dict) else {}
    said = str(body.get("message") or "") or response.reason_phrase
    code = str(body.get("code") or "")
    return (), said + (f" ({code})" if code and said else code)


def _until_reset(response: httpx.Response) -> float:
    header = response.headers.get("Retry-After", "").strip()
    if header.isdigit():
        return float(header)
    # LinkedIn's limits are daily and send no Retry-After: they reset at midnight UTC.
    now = datetime.now(UTC)
    return max(1.0, (midnight(now.date() + timedelta(days=1)) - now).total_seconds())


_ERRORS = Classifier(
    "LinkedIn",
    {
        403: "LinkedIn denied access to organization {org}: the token needs the "
        "`rw_organization_admin` permission, granted by a member with the ADMINISTRATOR role "
        "on organization {org}; LinkedIn said: {said}",
        404: "LinkedIn knows no organization {org} here: check `organization_id`: {said}",
        426: "LinkedIn no longer serves version {config.api_version}: set `api_version` to a "
        "recent YYYYMM: {said}",
        429: "LinkedIn's daily request limit for this app or member is reached; it resets at "
        "midnight UTC: {said}",
    },
    read=_words,
    wait=_until_reset,
)


class LinkedInConnector(Connector[LinkedInConfig, LinkedInCredentials]):
    """Daily follower gains and share statistics, and the follower count now, of one page."""

    key = "linkedin"
    name = "LinkedIn"
    category = "social"
    # Follower data stops about two days before today: the next runs fill those days in.
    recommended_lookback_days = 3
    #: The ``LinkedIn-Version`` a source sends unless its config names another.
    api_version = DEFAULT_VERSION
    settle_days = 2
    metrics = catalogue(
        {
            "followers.organic_gain": (
                "Organic followers gained a day (net; may be negative)",
                "count",
            ),
            "followers.paid_gain": ("Followers gained a day from sponsored content", "count"),
            "followers.total": (
                "Followers of the page now (LinkedIn keeps no history of it)",
                "count",
                {"history": "snapshot", "additive": False},
            ),
            "shares.impressions": ("Impressions of the page's posts a day (organic only)", "count"),
            "shares.clicks": ("Clicks on the page's posts a day", "count"),
            "shares.likes": ("Reactions to the page's posts a day", "count"),
            "shares.comments": ("Comments on the page's posts a day", "count"),
            "shares.shares": ("Reshares of the page's posts a day", "count"),
            "shares.engagement": (
                "Engagement rate of the page's posts a day: (clicks + likes + comments + "
                "shares) / impressions",
                "ratio",
                {"additive": False},
            ),
        }
    )

    @classmethod
    def sunset_of(cls, version: str) -> date | None:
        """The earliest day LinkedIn may retire ``version``: a year after its month begins.

        LinkedIn supports each monthly version "for a minimum of one year before sunset"
        (https://learn.microsoft.com/en-us/linkedin/marketing/versioning) and names the exact
        day, mid-month, on its migrations page; counting from the month's first day errs early,
        never late.
        """
        if not _VERSION.fullmatch(version):
            return None
        return date(int(version[:4]) + 1, int(version[4:]), 1)

    @classmethod
    def http_options(cls, config: LinkedInConfig, credentials: LinkedInCredentials) -> HttpOptions:
        headers = {"LinkedIn-Version": config.api_version, "X-Restli-Protocol-Version": "2.0.0"}
        oauth = None
        if credentials.refresh_token:
            oauth = OAuthSpec.of(credentials, TOKEN_ENDPOINT)
        else:
            headers["Authorization"] = f"Bearer {credentials.access_token}"
        return HttpOptions(
            base_url=config.base_url.rstrip("/"), headers=headers, max_concurrency=2, oauth=oauth
        )

    @classmethod
    def merge_token(cls, credentials: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
        """Keep when the refresh token dies: LinkedIn's never outlives its first 365 days."""
        merged = super().merge_token(credentials, token)
        lifetime = token.get("refresh_token_expires_in")
        if isinstance(lifetime, int | float) and lifetime > 0:
            merged["refresh_token_expires_at"] = datetime.now(UTC).timestamp() + float(lifetime)
        return merged

    async def check(self) -> CheckResult:
        # Follower statistics need the admin permission the syncs need; data lags two days.
        day = self.today - timedelta(days=3)
        body = await self._get(self._stats_path("organizationalEntityFollowerStatistics", day, day))
        days = len(body.get("elements") or []) if isinstance(body, dict) else 0
        org = self.config.organization_id
        return CheckResult(
            f"Connected to LinkedIn organization {org}: its follower statistics are readable",
            timezone="UTC",
            details={"organization_id": org, "api_version": self.config.api_version, "days": days},
            notices=self._notices(),
        )

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult(
            notices=self._notices(), details={"api_version": self.config.api_version}
        )
        wanted = {q.metric for q in queries}
        stats = wanted & (set(FOLLOWER_FIELDS) | set(SHARE_FIELDS))
        span = self._available(window, result.warnings) if stats else None
        for endpoint, fields, read in (
            ("organizationalEntityFollowerStatistics", FOLLOWER_FIELDS, "followerGains"),
            ("organizationalEntityShareStatistics", SHARE_FIELDS, "totalShareStatistics"),
        ):
            if span is None or not wanted & set(fields):
                continue
            body = await self._get(self._stats_path(endpoint, span.start, span.end))
            series = _daily(body, read, fields, result.warnings)
            for q in queries:
                result.values += daily(q.id, series.get(q.metric, {}), span)
        if "followers.total" in wanted:
            size = await self._get(
                f"/networkSizes/{self._urn()}", params={"edgeType": "COMPANY_FOLLOWED_BY_MEMBER"}
            )
            count = size.get("firstDegreeSize") if isinstance(size, dict) else None
            if not isinstance(count, int | float) or isinstance(count, bool):
                raise RetriableError("LinkedIn's networkSizes answered without `firstDegreeSize`")
            total = [q for q in queries if q.metric == "followers.total"]
            result.values += snapshot(total, float(count), window)
        return result

    def _urn(self) -> str:
        return quote(f"urn:li:organization:{self.config.organization_id}", safe="")

    def _stats_path(self, endpoint: str, start: date, end: date) -> str:
        # The range end is exclusive: midnight UTC after the window's last day.
        start_ms, end_ms = (epoch_ms(d) for d in (start, end + timedelta(days=1)))
        return (
            f"/{endpoint}?q=organizationalEntity&organizationalEntity={self._urn()}"
            f"&timeIntervals=(timeRange:(start:{start_ms},end:{end_ms}),timeGranularityType:DAY)"
        )

    def _available(self, window: Window, warnings: list[str]) -> Window | None:
        """The part of the window LinkedIn still has: statistics go back 12 months only."""
        earliest = self.today - timedelta(days=364)
        kept = "LinkedIn keeps statistics for 12 months"
        if window.end < earliest:
            warnings.append(f"{kept}: {window.start}..{window.end} is older, nothing was asked")
            return None
        if window.start < earliest:
            warnings.append(f"{kept}: days before {earliest} can't be read")
            return Window(earliest, window.end)
        return window

    async def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        def expired(refusal: Refusal) -> Exception:
            expiry = self.credentials.expires_at
            when = (
                f" (it expired on {datetime.fromtimestamp(expiry, UTC):%Y-%m-%d})"
                if expiry is not None and expiry <= datetime.now(UTC).timestamp()
                else ""
            )
            return ConnectorAuthError(
                f"LinkedIn refused the access token{when}: {self._reauthorize()} and store the "
                f"new `access_token`; LinkedIn said: {refusal.said}"
            )

        org, config = self.config.organization_id, self.config
        return await _ERRORS.get(
            self.http, path, params, hints={401: expired}, org=org, config=config
        )

    def _reauthorize(self) -> str:
        return (
            "re-authorize krsync (a member with the ADMINISTRATOR role on organization "
            f"{self.config.organization_id} signs in again)"
        )

    def _notices(self) -> list[str]:
        """Ask for a re-authorization before a token LinkedIn can't renew runs out."""
        creds = self.credentials
        what, expiry = (
            ("refresh token", creds.refresh_token_expires_at)
            if creds.refresh_token
            else ("access token", creds.expires_at)
        )
        if expiry is None:
            return []
        now, when = datetime.now(UTC), datetime.fromtimestamp(expiry, UTC)
        action = f"{self._reauthorize()} and store the new credentials"
        if when <= now:
            return [f"The LinkedIn {what} expired on {when:%Y-%m-%d}: {action}"]
        if when - now <= REAUTHORIZE_WITHIN:
            return [f"The LinkedIn {what} expires on {when:%Y-%m-%d}: {action} before then"]
        return []


def _daily(
    body: Any, read: str, fields: dict[str, str], warnings: list[str]
) -> dict[str, dict[date, float]]:
    """Each metric's figure a day, from the elements' ``read`` statistics."""
    series: dict[str, dict[date, float]] = {}
    for element in rows_of(body, "elements", "LinkedIn"):
        element = element if isinstance(element, dict) else {}
        start, stats = (element.get("timeRange") or {}).get("start"), element.get(read)
        if not isinstance(start, int) or not isinstance(stats, dict):
            warnings.append(f"LinkedIn sent an element without `timeRange.start` or `{read}`")
            continue
        day = datetime.fromtimestamp(start / 1000, UTC).date()
        for metric, field in fields.items():
            raw = stats.get(field)
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                series.setdefault(metric, {})[day] = float(raw)
    return series
