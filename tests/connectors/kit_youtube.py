"""The contract kit of ``youtube`` (connectors/youtube.py), and the fake Google endpoints it uses.

:class:`FakeYouTube` plays the YouTube Analytics API v2 at ``https://youtubeanalytics.test`` and
Google's OAuth2 token endpoint at ``https://oauth2.krsync.test/token`` (``*.test`` resolves to
a public address in the tests), from the documented shapes:

- ``GET /v2/reports?ids=channel==MINE&startDate&endDate&metrics=a,b&dimensions=day&sort=day
  [&filters=video==ID;country==US]`` -> ``{"kind": "youtubeAnalytics#resultTable",
  "columnHeaders": [{"name", "columnType": "DIMENSION"|"METRIC", "dataType"}], "rows": [[day,
  a, b], ...]}`` (https://developers.google.com/youtube/analytics/reference/reports/query);
  days without data are left out, an empty report has no ``rows``;
- errors in Google's envelope ``{"error": {"code", "message", "errors": [{"message", "domain",
  "reason"}], "status"}}`` (https://developers.google.com/youtube/analytics/reference/reports/query,
  "Errors");
- the token endpoint: ``POST`` form ``grant_type=refresh_token&refresh_token&client_id
  &client_secret`` -> ``{"access_token", "expires_in", "scope", "token_type": "Bearer"}``, or 400
  ``{"error": "invalid_grant", "error_description": "Token has been expired or revoked."}``
  (https://developers.google.com/identity/protocols/oauth2/web-server#offline).

A day's figure is its day of the month times the metric's position in :data:`FACTORS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import respx

from connectors.base import Window
from connectors.testing import Expected, Kit, Mocked, Query, Scenario
from connectors.youtube import YouTubeConnector

HOST = "youtubeanalytics.test"
BASE_URL = f"https://{HOST}"
TOKEN_HOST = "oauth2.krsync.test"
TOKEN_URI = f"https://{TOKEN_HOST}/token"
CLIENT_ID = "1234567890-kit.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-kit-client-secret"
REFRESH_TOKEN = "1//kit-refresh-token"
SCOPE = "https://www.googleapis.com/auth/yt-analytics.readonly"
FACTORS = {
    "views": 10,
    "estimatedMinutesWatched": 30,
    "subscribersGained": 2,
    "subscribersLost": 1,
    "likes": 3,
    "comments": 1,
    "shares": 1,
}


def figure(metric: str, day: date) -> int:
    return FACTORS[metric] * day.day


def google_error(code: int, status: str, message: str, reason: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": status,
        }
    }


@dataclass
class FakeYouTube:
    """The reports endpoint and the token endpoint; tokens it minted are the only ones it takes."""

    refresh_token: str = REFRESH_TOKEN
    access_tokens: set[str] = field(default_factory=set)
    #: Days the reports leave out (not ready yet, say).
    missing: set[date] = field(default_factory=set)
    empty: bool = False
    minted: int = 0
    failures: list[httpx.Response] = field(default_factory=list)
    reports: list[httpx.Request] = field(default_factory=list)
    tokens: list[httpx.Request] = field(default_factory=list)

    def install(self, router: respx.MockRouter) -> None:
        router.post(TOKEN_URI).mock(side_effect=self.token)
        router.route(host=HOST).mock(side_effect=self.report)

    def token(self, request: httpx.Request) -> httpx.Response:
        self.tokens.append(request)
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if (
            form.get("grant_type") != "refresh_token"
            or form.get("refresh_token") != self.refresh_token
        ):
            return httpx.Response(
                400,
                json={
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                },
            )
        self.minted += 1
        access = f"ya29.kit-access-{self.minted}"
        self.access_tokens.add(access)
        return httpx.Response(
            200,
            json={
                "access_token": access,
                "expires_in": 3599,
                "scope": SCOPE,
                "token_type": "Bearer",
            },
        )

    def report(self, request: httpx.Request) -> httpx.Response:
        self.reports.append(request)
        if self.failures:
            return self.failures.pop(0)
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer not in self.access_tokens:
            return httpx.Response(
                401,
                json=google_error(
                    401,
                    "UNAUTHENTICATED",
                    "Request had invalid authentication credentials. Expected OAuth 2 access "
                    "token, login cookie or other valid authentication credential.",
                    "authError",
                ),
            )
        params = request.url.params
        metrics = params["metrics"].split(",")
        headers = (
            [{"name": "day", "columnType": "DIMENSION", "dataType": "STRING"}]
            if params.get("dimensions") == "day"
            else []
        )
        headers += [{"name": m, "columnType": "METRIC", "dataType": "INTEGER"} for m in metrics]
        body: dict[str, Any] = {"kind": "youtubeAnalytics#resultTable", "columnHeaders": headers}
        start, end = date.fromisoformat(params["startDate"]), date.fromisoformat(params["endDate"])
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        if not headers or headers[0]["name"] != "day":
            body["rows"] = [[sum(figure(m, d) for d in days) for m in metrics]]
        elif not self.empty:
            body["rows"] = [
                [d.isoformat(), *(figure(m, d) for m in metrics)]
                for d in days
                if d not in self.missing
            ]
        return httpx.Response(200, json=body)


def _mock(router: respx.MockRouter, scenario: Scenario) -> Mocked:
    fake = FakeYouTube(
        refresh_token="another-refresh-token" if scenario == "bad_credentials" else REFRESH_TOKEN,
        empty=scenario == "empty",
    )
    if scenario == "rate_limited":
        fake.failures.append(
            httpx.Response(
                429,
                headers={"Retry-After": "1"},
                json=google_error(
                    429, "RESOURCE_EXHAUSTED", "Too many requests.", "rateLimitExceeded"
                ),
            )
        )
    fake.install(router)

    def expected(window: Window) -> Expected:
        if scenario == "empty":
            return {}
        return {(day, None): float(figure("views", day)) for day in window.days()}

    return Mocked(expected=expected, paginates=False)


CREDENTIALS = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "refresh_token": REFRESH_TOKEN,
    "token_uri": TOKEN_URI,
}
CONFIG = {"channel_id": "MINE", "base_url": BASE_URL}

KIT = Kit(
    connector=YouTubeConnector,
    config=CONFIG,
    credentials=CREDENTIALS,
    query=Query("views", filters=[{"field": "country", "op": "eq", "value": "US"}]),
    wrong_type={**CONFIG, "channel_id": ["MINE"]},
    mock=_mock,
    auth_hint="refresh_token",
)
