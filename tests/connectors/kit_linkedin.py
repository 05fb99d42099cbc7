"""The contract kit of ``linkedin`` (connectors/linkedin/), and a fake of its three endpoints.

Shapes from the Community Management API documentation:

- https://learn.microsoft.com/en-us/linkedin/marketing/community-management/organizations/follower-statistics
  (time-bound: ``elements[{organizationalEntity, timeRange{start, end}, followerGains{
  organicFollowerGain, paidFollowerGain}}]``, one a day for ``timeGranularityType:DAY``);
- https://learn.microsoft.com/en-us/linkedin/marketing/community-management/organizations/share-statistics
  (``elements[{organizationalEntity, timeRange, totalShareStatistics{impressionCount, clickCount,
  likeCount, commentCount, shareCount, uniqueImpressionsCount, engagement}}]``);
- https://learn.microsoft.com/en-us/linkedin/marketing/community-management/organizations/organization-lookup-api
  (``GET /networkSizes/{URN}?edgeType=COMPANY_FOLLOWED_BY_MEMBER`` -> ``{"firstDegreeSize"}``);
- https://learn.microsoft.com/en-us/linkedin/shared/api-guide/concepts/error-handling (errors are
  ``{"status", "serviceErrorCode", "code", "message"}``).

The fake answers 400 unless the request is Rest.li 2.0 as LinkedIn wants it: both headers, the
URN percent-encoded and ``timeIntervals`` with its parentheses and colons left raw. Statistics
are not paged (the whole range comes in one answer). The ``*.test`` host resolves to a public
address in the contract suite, so the private-network guard stays in the path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
import respx

from connectors.base import Window
from connectors.linkedin.connector import LinkedInConnector
from connectors.testing import Expected, Kit, Mocked, Query, Scenario

HOST = "linkedin.krsync.test"
BASE = f"https://{HOST}/rest"
ORG = "2414183"
TOKEN = "kit-linkedin-access-token"
VERSION = "202606"
URN = "urn%3Ali%3Aorganization%3A2414183"
FOLLOWERS = 219145
_INTERVALS = re.compile(
    r"timeIntervals=\(timeRange:\(start:(\d+),end:(\d+)\),timeGranularityType:DAY\)"
)

Figures = Callable[[date], dict[str, float]]


def follower_gains(day: date) -> dict[str, float]:
    return {"organicFollowerGain": day.day, "paidFollowerGain": day.day % 3}


def share_stats(day: date) -> dict[str, float]:
    return {
        "impressionCount": 100 * day.day,
        "uniqueImpressionsCount": 80 * day.day,
        "clickCount": 2 * day.day,
        "likeCount": day.day,
        "commentCount": 1,
        "shareCount": 0,
        "engagement": 0.05,
    }


def error(status: int, code: str, message: str, service_code: int = 0) -> httpx.Response:
    body = {"status": status, "serviceErrorCode": service_code, "code": code, "message": message}
    return httpx.Response(status, json=body)


EXPIRED = error(401, "EXPIRED_ACCESS_TOKEN", "The token used in the request has expired", 65602)


@dataclass
class FakeLinkedIn:
    """The three endpoints; ``tokens`` accepted, ``fail`` queues answers before the real ones."""

    followers: Figures = follower_gains
    shares: Figures = share_stats
    tokens: set[str] = field(default_factory=lambda: {TOKEN})
    queued: list[httpx.Response] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def install(self, router: respx.MockRouter) -> None:
        router.route(host=HOST).mock(side_effect=self.answer)

    def calls(self, endpoint: str) -> list[httpx.Request]:
        return [r for r in self.requests if endpoint in r.url.path]

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.queued:
            return self.queued.pop(0)
        auth = request.headers.get("Authorization", "")
        if auth.removeprefix("Bearer ") not in self.tokens:
            return EXPIRED
        if request.headers.get("X-Restli-Protocol-Version") != "2.0.0" or not re.fullmatch(
            r"20\d{4}", request.headers.get("LinkedIn-Version", "")
        ):
            return error(400, "VERSION_MISSING", "A version must be present")
        path = request.url.path
        raw = request.url.query.decode()
        if path == f"/rest/networkSizes/urn:li:organization:{ORG}":
            if URN not in request.url.raw_path.decode():
                return error(400, "ILLEGAL_ARGUMENT", "the URN must be percent-encoded")
            if request.url.params.get("edgeType") != "COMPANY_FOLLOWED_BY_MEMBER":
                return error(400, "ILLEGAL_ARGUMENT", "unknown edgeType")
            return httpx.Response(200, json={"firstDegreeSize": FOLLOWERS})
        figures, key = {
            "/rest/organizationalEntityFollowerStatistics": (self.followers, "followerGains"),
            "/rest/organizationalEntityShareStatistics": (self.shares, "totalShareStatistics"),
        }.get(path, (None, ""))
        if figures is None:
            return error(404, "NOT_FOUND", f"no resource at {path}")
        found = _INTERVALS.search(raw)
        if f"organizationalEntity={URN}" not in raw or "q=organizationalEntity" not in raw:
            return error(400, "ILLEGAL_ARGUMENT", "organizationalEntity must be an encoded URN")
        if found is None:
            return error(400, "ILLEGAL_ARGUMENT", "timeIntervals is not Rest.li 2.0")
        start, end = (int(g) for g in found.groups())
        elements = []
        moment = start
        while moment < end:
            day = datetime.fromtimestamp(moment / 1000, UTC).date()
            stats = figures(day)
            if stats:
                elements.append(
                    {
                        "organizationalEntity": f"urn:li:organization:{ORG}",
                        "timeRange": {"start": moment, "end": moment + 86_400_000},
                        key: stats,
                    }
                )
            moment += 86_400_000
        return httpx.Response(200, json={"paging": {"count": 10, "start": 0}, "elements": elements})


def _mock(router: respx.MockRouter, scenario: Scenario) -> Mocked:
    fake = FakeLinkedIn()
    if scenario == "empty":
        fake.followers = fake.shares = lambda _day: {}
    if scenario == "bad_credentials":
        fake.tokens = set()
    if scenario == "rate_limited":
        fake.queued.append(httpx.Response(429, headers={"Retry-After": "1"}))
    fake.install(router)

    def expected(window: Window) -> Expected:
        if scenario == "empty":
            return {}
        return {(day, None): float(day.day) for day in window.days()}

    return Mocked(expected=expected, paginates=False)


CONFIG: dict[str, Any] = {"organization_id": ORG, "api_version": VERSION, "base_url": BASE}

KIT = Kit(
    connector=LinkedInConnector,
    config=CONFIG,
    credentials={"access_token": TOKEN},
    query=Query("followers.organic_gain"),
    wrong_type={**CONFIG, "api_version": 202606},
    mock=_mock,
    auth_hint="re-authorize",
)
