"""An X (Twitter) account's public counts from API v2: follower, following, post and list counts.

``GET /2/users/{id}?user.fields=public_metrics`` with the app's bearer token answers the counts
as they are now and nothing of the past, so every metric is a snapshot: the engine records it on
the day of the sync, and a backfill writes nothing for the days before. One call serves every
mapping of the source.

X answers a user it can't show (unknown, suspended) with ``200`` and an ``errors`` array of
problem objects (``title``, ``detail``, ``type``) instead of ``data``; refusals come as one
problem document. Each response carries ``x-rate-limit-limit``/``-remaining``/``-reset`` (epoch
seconds); a 429 waits until that reset, since X sends no ``Retry-After``. A response saying
``remaining: 0`` holds the source's calls until the reset (the engine's client applies
:data:`_LIMITS`): a call waits when the reset is at most :data:`MAX_RESET_WAIT` away, as the HTTP
layer waits for a 429's reset, and is otherwise refused as ``RateLimited`` without being sent,
so the run's retry waits instead of spending a call X would refuse. The connector calls one
endpoint, so holding the source is holding that endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
from pydantic import Field

from connectors.base import (
    BaseUrl,
    CheckResult,
    Connector,
    ConnectorConfigError,
    DailyValue,
    FetchResult,
    HttpOptions,
    MetricQuery,
    RateLimited,
    Window,
    excerpt,
)
from connectors.errors import Classifier, Refusal
from connectors.models import Strict, catalogue, root_field
from connectors.pacing import RateHeaders

ROOT = "https://api.x.com"
METRICS = {
    "followers_count": ("Accounts following this one", "followers"),
    "following_count": ("Accounts this one follows", "accounts"),
    "tweet_count": ("Posts published, reposts included", "posts"),
    "listed_count": ("Public lists that include this account", "lists"),
}
_NOT_FOUND = "resource-not-found"
#: Seconds a call waits for its endpoint's reset; a later reset is the engine's to wait out.
#: The HTTP layer waits as long for a 429's reset before handing it over (``max_retry_after``).
MAX_RESET_WAIT = 60.0
_LIMITS = RateHeaders(
    "x-rate-limit-",
    "X's rate limit for GET /2/users/:id is used up (x-rate-limit-remaining: 0) until {until}",
    epoch=True,
)


class XConfig(Strict):
    user_id: str = Field(
        pattern=r"^\d{1,20}$",
        description="The account's numeric user id (not its @handle), e.g. 2244994945.",
    )
    base_url: BaseUrl | None = root_field(ROOT, unset=True)


class XCredentials(Strict):
    bearer_token: str = Field(
        min_length=1, description="The app's Bearer Token (developer portal > Keys and tokens)."
    )


def _problem(body: Any) -> tuple[str, str, str]:
    """(title, detail, type) of a problem document or of the first of its ``errors``."""
    if not isinstance(body, dict):
        return "", "", ""
    source = body
    errors = body.get("errors")
    if (
        not body.get("title")
        and isinstance(errors, list)
        and errors
        and isinstance(errors[0], dict)
    ):
        source = errors[0]
    title = str(source.get("title") or "").strip()
    detail = str(source.get("detail") or source.get("message") or "").strip()
    return title, detail, str(source.get("type") or "")


def _words(response: httpx.Response, body: Any) -> tuple[tuple[str, ...], str]:
    title, detail, _ = _problem(body)
    return (), ": ".join(p for p in (title, detail) if p)


def _used_up(refusal: Refusal) -> Exception:
    wait = refusal.retry_after
    when = f"; the limit resets in {wait:.0f} s" if wait is not None else ""
    return RateLimited(f"X's rate limit is used up ({refusal.said}){when}", wait)


_ERRORS = Classifier(
    "X",
    {
        401: "X refused the bearer token ({said}): check `bearer_token`, or regenerate it in the "
        "developer portal (Projects & Apps > Keys and tokens)",
        403: "X refused access ({said}): the app must belong to a Project whose access level "
        "includes users lookup (GET /2/users/:id)",
        404: "X has no user `{config.user_id}` ({said}): check `user_id`",
        429: _used_up,
    },
    read=_words,
    wait=_LIMITS.wait,
)


class XConnector(Connector[XConfig, XCredentials]):
    """Public counts of one account, as snapshots."""

    key = "x"
    name = "X (Twitter)"
    category = "social"
    #: API v2 (``/2/users/{id}``); X dates no sunset for it.
    api_version = "v2"
    metrics = catalogue(
        METRICS, describe="{}, now (recorded on the sync's day)", history="snapshot", additive=False
    )

    @classmethod
    def http_options(cls, config: XConfig, credentials: XCredentials) -> HttpOptions:
        return HttpOptions(
            base_url=(config.base_url or ROOT).rstrip("/"),
            headers={"Authorization": f"Bearer {credentials.bearer_token}"},
            # X sends no Retry-After: without this, a 429 would be retried blind, spending calls
            # from a quota that doesn't come back before the reset.
            retry_after=_LIMITS.wait,
            pace=_LIMITS.pace,
            max_hold=MAX_RESET_WAIT,
        )

    async def check(self) -> CheckResult:
        user, limits = await self._user()
        counts = user.get("public_metrics")
        followers = counts.get("followers_count") if isinstance(counts, dict) else None
        handle = f"@{user['username']}" if user.get("username") else f"user {self.config.user_id}"
        told = f": {followers:,} followers" if isinstance(followers, int) else ""
        return CheckResult(
            f"Connected to X account {handle}{told}",
            details={"user_id": self.config.user_id, "rate_limit": limits},
        )

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult()
        if not queries:
            return result
        user, limits = await self._user()
        result.details["rate_limit"] = limits
        counts = user.get("public_metrics")
        if not isinstance(counts, dict):
            result.warnings.append(
                f"X answered user {self.config.user_id} without public_metrics: nothing recorded"
            )
            return result
        for query in queries:
            raw = counts.get(query.metric)
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                result.query_errors[query.id] = f"X's public_metrics has no `{query.metric}`"
                continue
            # A snapshot is the figure now; the engine dates it on the source's today.
            result.values.append(DailyValue(query.id, window.end, float(raw)))
        return result

    async def _user(self) -> tuple[dict[str, Any], dict[str, Any]]:
        path = f"/2/users/{self.config.user_id}"
        response = await self.http.get(path, params={"user.fields": "public_metrics"})
        body = _ERRORS.json(response, self.http.redact, obj=True, config=self.config)
        user = body.get("data")
        if isinstance(user, dict):
            return user, _LIMITS.figures(response)
        title, detail, kind = _problem(body)
        mask = self.http.redact
        title, detail = excerpt(title, mask, 80), excerpt(detail, mask)
        if kind.endswith(_NOT_FOUND) or title == "Not Found Error":
            raise ConnectorConfigError(
                f"X has no account it can show with user id `{self.config.user_id}` "
                f"({detail or title}): check `user_id`, the numeric id, not the @handle"
            )
        raise ConnectorConfigError(
            f"X answered user `{self.config.user_id}` with an error ({title}: {detail}): "
            "check `user_id`"
        )
