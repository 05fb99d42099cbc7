"""The contract kit of ``x`` (connectors/x.py), and the fake X API v2 it uses.

:class:`FakeX` plays ``https://api.x.test`` (``*.test`` resolves to a public address in the
tests) from the documented shapes:

- users lookup, ``GET /2/users/:id?user.fields=public_metrics`` ->
  ``{"data": {"id", "name", "username", "public_metrics": {"followers_count", "following_count",
  "tweet_count", "listed_count"}}}`` (https://docs.x.com/x-api/users/lookup/quickstart/user-lookup);
  an unknown user answers ``200`` with ``errors[{value, detail, title: "Not Found Error",
  resource_type, parameter, resource_id, type: ".../problems/resource-not-found"}]``;
- rate limits: ``x-rate-limit-limit``/``-remaining``/``-reset`` (Unix seconds) on every
  response, ``429 Too Many Requests`` once used up (https://docs.x.com/fundamentals/rate-limits);
- a refused bearer token: ``401`` ``{"title": "Unauthorized", "type": "about:blank",
  "status": 401, "detail": "Unauthorized"}``
  (https://developer.x.com/en/support/x-api/error-troubleshooting).

Only the figure now exists: a fetch of any window gives one value per metric, on its last day
(the engine re-dates it to the sync's day).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import respx

from connectors.base import Window
from connectors.testing import Expected, Kit, Mocked, Query, Scenario
from connectors.x import XConnector

HOST = "api.x.test"
BASE_URL = f"https://{HOST}"
USER_ID = "2244994945"
BEARER = "AAAAAAAAAAAAAAAAAAAAAKrsyncKitBearerToken0123456789"
PROBLEMS = "https://api.twitter.com/2/problems"
UNAUTHORIZED = {
    "title": "Unauthorized",
    "type": "about:blank",
    "status": 401,
    "detail": "Unauthorized",
}


def public_metrics(followers: int = 583_423) -> dict[str, int]:
    return {
        "followers_count": followers,
        "following_count": 2048,
        "tweet_count": 14_052,
        "listed_count": 1672,
    }


@dataclass
class FakeX:
    """X API v2 users lookup for one app; ``requests`` keeps what it was asked."""

    bearer: str = BEARER
    users: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            USER_ID: {
                "id": USER_ID,
                "name": "X Developers",
                "username": "XDevelopers",
                "public_metrics": public_metrics(),
            }
        }
    )
    limit: int = 300
    remaining: int = 299
    #: Seconds from each answer to its window's ``x-rate-limit-reset``.
    reset_in: int = 900
    #: Responses to give before the normal answers.
    failures: list[httpx.Response] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    #: When each request arrived (epoch seconds, as ``x-rate-limit-reset`` counts).
    sent_at: list[float] = field(default_factory=list)

    def install(self, router: respx.MockRouter) -> None:
        router.route(host=HOST).mock(side_effect=self.answer)

    def headers(self, remaining: int | None = None, reset_in: int | None = None) -> dict[str, str]:
        reset = int(time.time()) + (self.reset_in if reset_in is None else reset_in)
        return {
            "x-rate-limit-limit": str(self.limit),
            "x-rate-limit-remaining": str(self.remaining if remaining is None else remaining),
            "x-rate-limit-reset": str(reset),
        }

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.sent_at.append(time.time())
        if self.failures:
            return self.failures.pop(0)
        if request.headers.get("Authorization") != f"Bearer {self.bearer}":
            return httpx.Response(401, json=UNAUTHORIZED)
        user_id = request.url.path.removeprefix("/2/users/")
        user = self.users.get(user_id)
        if user is None:
            return httpx.Response(200, headers=self.headers(), json=not_found(user_id))
        fields = request.url.params.get("user.fields", "").split(",")
        shown = {
            k: v for k, v in user.items() if k != "public_metrics" or "public_metrics" in fields
        }
        return httpx.Response(200, headers=self.headers(), json={"data": shown})


def not_found(user_id: str) -> dict[str, Any]:
    return {
        "errors": [
            {
                "value": user_id,
                "detail": f"Could not find user with id: [{user_id}].",
                "title": "Not Found Error",
                "resource_type": "user",
                "parameter": "id",
                "resource_id": user_id,
                "type": f"{PROBLEMS}/resource-not-found",
            }
        ]
    }


def too_many(fake: FakeX, reset_in: int) -> httpx.Response:
    body = {
        "title": "Too Many Requests",
        "detail": "Too Many Requests",
        "type": "about:blank",
        "status": 429,
    }
    return httpx.Response(429, headers=fake.headers(remaining=0, reset_in=reset_in), json=body)


def _mock(router: respx.MockRouter, scenario: Scenario) -> Mocked:
    fake = FakeX(bearer="someone-elses-bearer" if scenario == "bad_credentials" else BEARER)
    if scenario == "empty":
        # A user answered without the asked-for public_metrics: X gives no figure at all.
        del fake.users[USER_ID]["public_metrics"]
    if scenario == "rate_limited":
        # X sends no Retry-After: the wait is until x-rate-limit-reset, a second away.
        fake.failures.append(too_many(fake, reset_in=1))
    fake.install(router)

    def expected(window: Window) -> Expected:
        if scenario == "empty":
            return {}
        return {(window.end, None): float(public_metrics()["followers_count"])}

    return Mocked(expected=expected, paginates=False)


CONFIG = {"user_id": USER_ID, "base_url": BASE_URL}

KIT = Kit(
    connector=XConnector,
    config=CONFIG,
    credentials={"bearer_token": BEARER},
    query=Query("followers_count", aggregation="last"),
    wrong_type={**CONFIG, "user_id": 2244994945},
    mock=_mock,
    auth_hint="bearer_token",
)
