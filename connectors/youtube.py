"""A YouTube channel's daily figures from the YouTube Analytics API v2 (targeted queries).

``GET https://youtubeanalytics.googleapis.com/v2/reports`` with ``ids=channel==MINE`` (or
``channel==<channel_id>``), ``dimensions=day``, ``sort=day``, the window as ``startDate`` and
``endDate``, and every metric of the mappings that share the same filters in one ``metrics``
list: one call per distinct filter set (``filters=country==US;video==ID``). The answer is a
result table, ``columnHeaders`` (``name``, ``columnType``, ``dataType``) and ``rows``; columns
are read by name. Days YouTube has no data for yet are left out of the rows, and stay absent.

Authorization is OAuth2 for the channel's Google account: the engine's client refreshes the
access token at ``token_uri`` from ``refresh_token`` and stores new tokens back encrypted. The
grant needs the ``yt-analytics.readonly`` scope. Errors come in Google's envelope
(``error.code``, ``error.message``, ``error.errors[].reason``, ``error.status``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from pydantic import Field

from connectors.base import (
    BaseUrl,
    CheckResult,
    Connector,
    ConnectorAuthError,
    ConnectorConfigError,
    DailyValue,
    FetchResult,
    Filter,
    FilterOp,
    HttpOptions,
    MappingError,
    MetricQuery,
    OAuthSpec,
    RateLimited,
    RetriableError,
    TokenRefreshError,
    Window,
)
from connectors.errors import Classifier, Hint
from connectors.models import OAuthCredentials, Strict, catalogue, root_field

ROOT = "https://youtubeanalytics.googleapis.com"
REPORTS = "/v2/reports"
TOKEN_URI = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/yt-analytics.readonly"
METRICS = {
    "views": ("Views of the channel's videos", "views"),
    "estimatedMinutesWatched": ("Minutes watched", "minutes"),
    "subscribersGained": ("Subscribers gained", "subscribers"),
    "subscribersLost": ("Subscribers lost", "subscribers"),
    "likes": ("Likes", "likes"),
    "comments": ("Comments", "comments"),
    "shares": ("Shares", "shares"),
}
_FILTERS: dict[str, frozenset[FilterOp]] = {
    "video": frozenset({"eq", "in"}),
    "country": frozenset({"eq"}),
}
_VALUE = {"video": re.compile(r"^[A-Za-z0-9_-]{6,64}$"), "country": re.compile(r"^[A-Za-z]{2}$")}
_EXAMPLE = {"video": "a video id such as dQw4w9WgXcQ", "country": "a two-letter country code"}
_QUOTA = ("quotaExceeded", "dailyLimitExceeded")
_SLOW_DOWN = ("rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED")
_SCOPE = ("insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT")
_DISABLED = ("accessNotConfigured", "SERVICE_DISABLED")
#: Google's reasons in the order they decide: a used-up quota before a slow-down, and so on.
_REASONS = _QUOTA + _SLOW_DOWN + _DISABLED + _SCOPE
REAUTHORIZE = (
    f"re-authorize krsync as the channel's owner or manager with the {SCOPE} "
    "(yt-analytics.readonly) scope and store the new `refresh_token`"
)


class YouTubeConfig(Strict):
    channel_id: str = Field(
        "MINE",
        pattern=r"^(MINE|UC[A-Za-z0-9_-]{22})$",
        description="MINE (the authorized account's channel) or a channel id, UC… (24 chars).",
    )
    base_url: BaseUrl | None = root_field(ROOT, unset=True)


class YouTubeCredentials(OAuthCredentials):
    """An OAuth2 client and the channel's refresh token; the access token is kept refreshed."""

    client_id: str = Field(min_length=1, description="The OAuth client's id (Google Cloud).")
    client_secret: str = Field(min_length=1, description="The OAuth client's secret.")
    refresh_token: str = Field(min_length=1, description=f"Granted with the {SCOPE} scope.")
    token_uri: str = Field(TOKEN_URI, description="Google's token endpoint.")


class _GroupRefused(Exception):
    """The platform refused one report (400): its mappings fail, the others go on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def filter_text(filters: Sequence[Filter]) -> str:
    """The ``filters`` parameter: ``dimension==value[,value…]`` joined by ``;``, fields sorted."""
    parts: dict[str, str] = {}
    for flt in filters:
        if flt.field in parts:
            raise MappingError("filters", f"`{flt.field}` is filtered twice: use one `in` filter")
        values = [str(v).upper() if flt.field == "country" else str(v) for v in flt.values]
        parts[flt.field] = f"{flt.field}=={','.join(values)}"
    return ";".join(parts[f] for f in sorted(parts))


def _google_error(response: httpx.Response, body: Any) -> tuple[list[str], str]:
    """Google's error envelope: every reason it gives, the telling ones first, and its message."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return [], response.text
    reasons: set[str] = set()
    for key in ("errors", "details"):
        items = error.get(key)
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and isinstance(item.get("reason"), str):
                reasons.add(item["reason"])
    telling = [r for r in _REASONS if r in reasons]
    message = str(error.get("message") or error.get("status") or "")
    return telling + sorted(reasons - set(telling)), message


_ERRORS = Classifier(
    "YouTube",
    {
        _QUOTA: Hint(
            "the Google Cloud project's YouTube Analytics quota is used up ({said}): it resets "
            "daily; the next run tries again",
            RetriableError,
        ),
        _SLOW_DOWN: Hint("YouTube asks to slow down: {said}", RateLimited),
        _DISABLED: Hint(
            "the YouTube Analytics API is not enabled for the OAuth client's Google Cloud "
            "project ({said}): enable it in the Cloud console (APIs & Services)",
            ConnectorAuthError,
        ),
        _SCOPE: Hint(
            f"the OAuth grant lacks the yt-analytics.readonly scope ({{said}}): {REAUTHORIZE}",
            ConnectorAuthError,
        ),
        401: f"YouTube refused the OAuth access token even after a refresh ({{said}}): "
        f"{REAUTHORIZE}",
        403: "YouTube refused access to channel `{config.channel_id}` ({said}): the authorized "
        f"account must own or manage it; {REAUTHORIZE}, or set `channel_id` to MINE",
        400: Hint("YouTube refused the report ({said})", _GroupRefused),
    },
    read=_google_error,
)


class YouTubeConnector(Connector[YouTubeConfig, YouTubeCredentials]):
    """Daily channel (or video, or country) figures; one report per distinct set of filters."""

    key = "youtube"
    name = "YouTube Analytics"
    category = "social"
    metrics = catalogue(METRICS, filters=_FILTERS)
    #: YouTube fills in and restates the last two or three days.
    recommended_lookback_days = 3
    #: YouTube Analytics API v2 (``/v2/reports``); Google dates no sunset.
    api_version = "v2"
    settle_days = 3

    @classmethod
    def http_options(cls, config: YouTubeConfig, credentials: YouTubeCredentials) -> HttpOptions:
        return HttpOptions(
            base_url=(config.base_url or ROOT).rstrip("/"),
            oauth=OAuthSpec.of(credentials, credentials.token_uri),
        )

    @classmethod
    def check_filters(cls, filters: Sequence[Filter]) -> None:
        """Beyond the catalogue: filter values YouTube would refuse are refused at mapping time."""
        for i, flt in enumerate(filters):
            for value in flt.values:
                if not _VALUE[flt.field].match(str(value)):
                    raise MappingError(
                        f"filters[{i}].value",
                        f"`{value}` is not {_EXAMPLE[flt.field]}",
                    )
        filter_text(filters)

    async def check(self) -> CheckResult:
        day = (self.today - timedelta(days=2)).isoformat()
        try:
            body = await self._report({"startDate": day, "endDate": day, "metrics": "views"})
        except _GroupRefused as exc:
            raise ConnectorConfigError(f"{exc.message}: check `channel_id`") from None
        rows = body.get("rows") or []
        views = rows[0][0] if rows and isinstance(rows[0], list) and rows[0] else 0
        return CheckResult(
            f"Connected to YouTube Analytics for channel {self.config.channel_id}: "
            f"{views} views on {day}",
            details={"channel_id": self.config.channel_id},
        )

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult()
        groups: dict[str, list[MetricQuery]] = {}
        for query in queries:
            try:
                groups.setdefault(filter_text(query.filters), []).append(query)
            except MappingError as exc:
                result.query_errors[query.id] = str(exc)
        for filters, members in groups.items():
            metrics = list(dict.fromkeys(q.metric for q in members))
            params = {
                "startDate": window.start.isoformat(),
                "endDate": window.end.isoformat(),
                "metrics": ",".join(metrics),
                "dimensions": "day",
                "sort": "day",
            }
            if filters:
                params["filters"] = filters
            try:
                body = await self._report(params)
            except _GroupRefused as exc:
                result.fail(members, exc.message)
                continue
            self._read(body, members, window, result)
        return result

    def _read(
        self, body: dict[str, Any], queries: list[MetricQuery], window: Window, result: FetchResult
    ) -> None:
        headers = body.get("columnHeaders")
        names = [h.get("name") if isinstance(h, dict) else None for h in headers or []]
        column = {name: i for i, name in enumerate(names) if isinstance(name, str)}
        if "day" not in column:
            raise RetriableError("YouTube answered a report without its `day` column")
        rows = body.get("rows") or []
        bad = 0
        for query in queries:
            at = column.get(query.metric)
            if at is None:
                result.query_errors[query.id] = f"YouTube's report has no `{query.metric}` column"
                continue
            for row in rows:
                try:
                    day = datetime.strptime(str(row[column["day"]]), "%Y-%m-%d").date()  # noqa: DTZ007 - a day
                    raw = row[at]
                except (IndexError, KeyError, TypeError, ValueError):
                    bad += 1
                    continue
                if day not in window or raw is None or isinstance(raw, bool):
                    continue
                try:
                    result.values.append(DailyValue(query.id, day, float(raw)))
                except (TypeError, ValueError):
                    bad += 1
        if bad:
            result.warnings.append(f"{bad} cell(s) of YouTube's report could not be read")

    async def _report(self, params: dict[str, str]) -> dict[str, Any]:
        full = {"ids": f"channel=={self.config.channel_id}", **params}
        try:
            response = await self.http.get(REPORTS, params=full)
        except TokenRefreshError as exc:
            if exc.transient:
                raise
            raise ConnectorAuthError(
                f"Google refused to refresh the access token ({getattr(exc, 'message', exc)}): "
                f"the refresh token is revoked, expired or for another client_id; {REAUTHORIZE}"
            ) from None
        return _ERRORS.json(  # type: ignore[no-any-return]
            response, self.http.redact, obj=True, config=self.config
        )
