"""The contract kit of ``meta`` (connectors/meta/), and a fake Graph API insights endpoint.

Shapes from Meta's documentation:

- https://developers.facebook.com/docs/graph-api/reference/page/insights/ : ``GET
  /{page-id}/insights?metric=a,b&period=day&since&until`` answers ``data[{name, period, values[{
  value, end_time}], title, description, id}]`` and ``paging{previous, next}``; at most 90 days a
  call; "the since date data will be included in the first value returned";
- https://developers.facebook.com/docs/platforminsights/page : the first ``end_time`` is the
  ``since`` day plus one, at 08:00 GMT (midnight Pacific time): ``end_time`` closes the day;
- https://developers.facebook.com/docs/instagram-platform/api-reference/instagram-user/insights :
  the same envelope for ``/{ig-user-id}/insights``; ``follower_count`` gives at most 30 days;
- https://developers.facebook.com/docs/graph-api/guides/error-handling : errors are
  ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``; an unknown or
  retired insight is code 100 "(#100) The value must be a valid insights metric".

The fake hands out at most ``page_days`` days a page and a ``paging.next`` that moves ``since``
on, as Meta's links do (with the token in its query string, which the connector drops). The
``*.test`` host resolves to a public address in the contract suite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
import respx

from connectors.base import Window
from connectors.meta.connector import MetaConnector
from connectors.testing import Expected, Kit, Mocked, Query, Scenario

HOST = "graph.krsync.test"
BASE = f"https://{HOST}"
VERSION = "v25.0"
PAGE = "104857600123"
INSTAGRAM = "17841400008460056"
TOKEN = "kit-meta-page-access-token"
PACIFIC = ZoneInfo("America/Los_Angeles")
INVALID_METRIC = "(#100) The value must be a valid insights metric"

#: (object id, insight name, day) -> value, or None when the platform has nothing that day.
Figures = Callable[[str, str, date], Any]


def day_of_month(_object: str, _name: str, day: date) -> float:
    return float(day.day)


def end_time(day: date) -> str:
    """Meta's ``end_time`` of a day's value: midnight Pacific after it, written in UTC."""
    closing = datetime.combine(day + timedelta(days=1), time(), PACIFIC).astimezone(UTC)
    return closing.strftime("%Y-%m-%dT%H:%M:%S+0000")


def pacific_day(unix: int) -> date:
    return datetime.fromtimestamp(unix, PACIFIC).date()


def pacific_midnight(day: date) -> int:
    return int(datetime.combine(day, time(), PACIFIC).timestamp())


def graph_error(
    code: int,
    message: str,
    *,
    status: int = 400,
    subcode: int | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbCdEfGh123",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return httpx.Response(status, json={"error": error}, headers=headers)


EXPIRED = graph_error(
    190,
    "Error validating access token: Session has expired on Monday, 23-Nov-26 09:00:00 PST.",
    subcode=463,
)


@dataclass
class FakeGraph:
    """Insights of a Page and an Instagram account; retired metrics fail the whole call."""

    figures: Figures = day_of_month
    page_days: int = 4
    #: The Graph API version the fake serves; any other in a path is unknown to it.
    version: str = VERSION
    tokens: set[str] = field(default_factory=lambda: {TOKEN})
    retired: set[str] = field(default_factory=lambda: {"page_impressions", "page_fans"})
    queued: list[httpx.Response] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def install(self, router: respx.MockRouter) -> None:
        router.route(host=HOST).mock(side_effect=self.answer)

    def insight_calls(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path.endswith("/insights")]

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.queued:
            return self.queued.pop(0)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            return EXPIRED
        parts = request.url.path.strip("/").split("/")
        if parts[0] != self.version:
            return graph_error(2635, f"Unknown API version {parts[0]}")
        if len(parts) == 1:
            return self._ids(request)
        if len(parts) == 3 and parts[2] == "insights" and parts[1] in (PAGE, INSTAGRAM):
            return self._insights(request, parts[1])
        return graph_error(
            100,
            f"Unsupported get request. Object with ID '{parts[1]}' does not exist",
            subcode=33,
        )

    def _ids(self, request: httpx.Request) -> httpx.Response:
        ids = request.url.params.get("ids", "").split(",")
        if any(i not in (PAGE, INSTAGRAM) for i in ids):
            return graph_error(100, "(#100) Some of the aliases you requested do not exist")
        names = {PAGE: "Krsync Kit Page", INSTAGRAM: "krsync.kit"}
        body = {i: {"id": i, "name": names[i]} for i in ids}
        return httpx.Response(200, json=body, headers=self.headers)

    def _insights(self, request: httpx.Request, object_id: str) -> httpx.Response:
        params = request.url.params
        if params.get("period") != "day":
            return graph_error(100, "(#100) period must be one of: day, week, days_28")
        names = params.get("metric", "").split(",")
        if any(name in self.retired or not name for name in names):
            return graph_error(100, INVALID_METRIC)
        since, until = int(params["since"]), int(params["until"])
        first, stop = pacific_day(since), pacific_day(until)
        last = min(stop, first + timedelta(days=self.page_days))
        data = []
        for name in names:
            values = []
            day = first
            while day < last:
                value = self.figures(object_id, name, day)
                if value is not None:
                    values.append({"value": value, "end_time": end_time(day)})
                day += timedelta(days=1)
            data.append(
                {
                    "name": name,
                    "period": "day",
                    "values": values,
                    "title": name,
                    "description": f"Daily: {name}",
                    "id": f"{object_id}/insights/{name}/day",
                }
            )

        def link(start: int, end: int) -> str:
            query = {"access_token": TOKEN, "metric": ",".join(names), "period": "day"}
            query |= {"since": str(start), "until": str(end)}
            return f"https://{HOST}/{self.version}/{object_id}/insights?{urlencode(query)}"

        # As on Meta: "next" always points at the following range, past the one asked too.
        after = pacific_midnight(last)
        paging = {
            "previous": link(since - (until - since), since),
            "next": link(after, until if after < until else after + (until - since)),
        }
        return httpx.Response(200, json={"data": data, "paging": paging}, headers=self.headers)


def _mock(router: respx.MockRouter, scenario: Scenario) -> Mocked:
    fake = FakeGraph()
    if scenario == "empty":
        fake.figures = lambda _o, _n, _d: None
    if scenario == "bad_credentials":
        fake.tokens = set()
    if scenario == "rate_limited":
        fake.queued.append(httpx.Response(429, headers={"Retry-After": "1"}))
    fake.install(router)

    def expected(window: Window) -> Expected:
        if scenario == "empty":
            return {}
        return {(day, None): float(day.day) for day in window.days()}

    return Mocked(expected=expected, paginates=True)


CONFIG: dict[str, Any] = {"page_id": PAGE, "base_url": BASE}

KIT = Kit(
    connector=MetaConnector,
    config=CONFIG,
    credentials={"access_token": TOKEN},
    query=Query("page.page_post_engagements"),
    wrong_type={**CONFIG, "instagram_user_id": ["17841400008460056"]},
    mock=_mock,
    auth_hint="access token",
)
