"""The contract kit of ``mailchimp`` (connectors/mailchimp/), and the fake Marketing API it uses.

:class:`FakeMailchimp` plays ``https://us21.api.mailchimp.test/3.0`` (the ``*.test`` name resolves
to a public address in the tests, so the private-network guard stays in the path), built from
the documented shapes:

- ``GET /`` (API root): ``account_name``, ``account_timezone``
  (https://mailchimp.com/developer/marketing/api/root/);
- ``GET /lists/{list_id}``: ``id``, ``name``, ``date_created`` (ISO 8601), ``stats.member_count``
  (https://mailchimp.com/developer/marketing/api/lists/);
- ``GET /lists/{list_id}/activity``: ``activity[{day, emails_sent, unique_opens,
  recipient_clicks, hard_bounce, soft_bounce, subs, unsubs, other_adds, other_removes}]``,
  ``total_items``; newest day first; ``count`` (default 10, at most 1000) and ``offset``
  (https://mailchimp.com/developer/marketing/api/list-activity/);
- ``GET /reports``: ``reports[{id, campaign_title, type, list_id, emails_sent, send_time,
  opens{unique_opens}, clicks{unique_clicks, unique_subscriber_clicks}}]`` (unique clicks per
  link summed, and the people who clicked), ``total_items``; ``count``/``offset``,
  ``since_send_time``/``before_send_time`` (https://mailchimp.com/developer/marketing/api/reports/);
- errors as problem documents ``{type, title, status, detail, instance}``
  (https://mailchimp.com/developer/marketing/docs/errors/).

The account holds 180 days of activity ending on :data:`LAST_DAY` (the contract's today); a day's
figures derive from its day of the month, so expectations are easy to state.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import respx

from connectors.base import Window
from connectors.mailchimp.connector import MailchimpConnector
from connectors.testing import Expected, Kit, Mocked, Query, Scenario

HOST = "us21.api.mailchimp.test"
BASE_URL = f"https://{HOST}/3.0"
API_KEY = "0123456789abcdef0123456789abcdef-us21"
LIST_ID = "57afe96172"
LAST_DAY = date(2026, 7, 11)
ERRORS_DOC = "https://mailchimp.com/developer/marketing/docs/errors/"

API_KEY_INVALID = {
    "type": ERRORS_DOC,
    "title": "API Key Invalid",
    "status": 401,
    "detail": "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
    "instance": "4f0c9a2e-5b7a-4b6e-9a55-2a1f0f9f6c11",
}
TOO_MANY = {
    "type": ERRORS_DOC,
    "title": "Too Many Requests",
    "status": 429,
    "detail": "You have exceeded the limit of 10 simultaneous connections.",
    "instance": "9d2b1c55-0a77-4c1d-8f3a-1b2c3d4e5f60",
}


def activity_day(day: date) -> dict[str, Any]:
    """One documented list-activity record; every figure derives from the day of the month."""
    return {
        "day": day.isoformat(),
        "emails_sent": day.day * 100,
        "unique_opens": day.day * 10,
        "recipient_clicks": day.day * 2,
        "hard_bounce": 0,
        "soft_bounce": 1,
        "subs": day.day,
        "unsubs": day.day % 3,
        "other_adds": 0,
        "other_removes": 0,
    }


@dataclass
class FakeMailchimp:
    """Mailchimp's Marketing API for one account; ``calls`` records each request by endpoint."""

    activity_days: list[date] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    member_count: int = 1234
    #: The audience's ``date_created``: years before the activity Mailchimp still keeps.
    date_created: str = "2019-03-14T09:30:00+00:00"
    api_key: str = API_KEY
    #: Responses to give before the normal answers, by endpoint (``activity``, ``reports``...).
    failures: dict[str, list[httpx.Response]] = field(default_factory=dict)
    calls: dict[str, list[httpx.Request]] = field(default_factory=dict)

    def install(self, router: respx.MockRouter) -> None:
        router.route(host=HOST).mock(side_effect=self.answer)

    def answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/3.0").rstrip("/")
        endpoint = self._endpoint(path)
        self.calls.setdefault(endpoint, []).append(request)
        pending = self.failures.get(endpoint)
        if pending:
            return pending.pop(0)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Basic ") or not _basic_password(auth) == self.api_key:
            return httpx.Response(401, json=API_KEY_INVALID)
        if endpoint == "root":
            return httpx.Response(
                200,
                json={
                    "account_id": "8d3a3db4d97663a9074efcc16",
                    "account_name": "Krsync Test Co",
                    "account_timezone": "Europe/Berlin",
                },
            )
        if endpoint in ("list", "activity") and not path.startswith(f"/lists/{LIST_ID}"):
            return httpx.Response(
                404,
                json={
                    "type": ERRORS_DOC,
                    "title": "Resource Not Found",
                    "status": 404,
                    "detail": "The requested resource could not be found.",
                    "instance": "1e8a7c55-3f4d-4d8e-a1a2-0d0a6f3b2c44",
                },
            )
        if endpoint == "list":
            return httpx.Response(
                200,
                json={
                    "id": LIST_ID,
                    "name": "Newsletter",
                    "date_created": self.date_created,
                    "stats": {"member_count": self.member_count, "unsubscribe_count": 31},
                },
            )
        if endpoint == "activity":
            records = [activity_day(d) for d in sorted(self.activity_days, reverse=True)]
            return self._page(request, "activity", records)
        if endpoint == "reports":
            return self._page(request, "reports", self._reports_between(request))
        return httpx.Response(404, json={"title": "Resource Not Found", "status": 404})

    @staticmethod
    def _endpoint(path: str) -> str:
        if path == "":
            return "root"
        if path.endswith("/activity"):
            return "activity"
        if path.startswith("/lists/"):
            return "list"
        if path == "/reports":
            return "reports"
        return path

    def _reports_between(self, request: httpx.Request) -> list[dict[str, Any]]:
        since = request.url.params.get("since_send_time")
        before = request.url.params.get("before_send_time")
        chosen = []
        for report in self.reports:
            sent = datetime.fromisoformat(report["send_time"])
            if since is not None and sent < datetime.fromisoformat(since):
                continue
            if before is not None and sent >= datetime.fromisoformat(before):
                continue
            chosen.append(report)
        return chosen

    @staticmethod
    def _page(request: httpx.Request, key: str, records: list[dict[str, Any]]) -> httpx.Response:
        count = min(int(request.url.params.get("count", "10")), 1000)
        offset = int(request.url.params.get("offset", "0"))
        body = {key: records[offset : offset + count], "total_items": len(records)}
        return httpx.Response(200, json=body)


def _basic_password(header: str) -> str:
    decoded = base64.b64decode(header.removeprefix("Basic ")).decode()
    return decoded.partition(":")[2]


def days_until(last: date, count: int) -> list[date]:
    return [last - timedelta(days=i) for i in range(count)]


def _mock(router: respx.MockRouter, scenario: Scenario) -> Mocked:
    fake = FakeMailchimp(
        activity_days=[] if scenario == "empty" else days_until(LAST_DAY, 180),
        api_key="not-the-kit-key-us21" if scenario == "bad_credentials" else API_KEY,
    )
    if scenario == "rate_limited":
        fake.failures["activity"] = [
            httpx.Response(429, headers={"Retry-After": "1"}, json=TOO_MANY)
        ]
    fake.install(router)

    def expected(window: Window) -> Expected:
        if scenario == "empty":
            return {}
        return {(day, None): float(day.day) for day in window.days()}

    return Mocked(expected=expected, paginates=True)


CONFIG = {"list_id": LIST_ID, "base_url": BASE_URL, "page_size": 3}

KIT = Kit(
    connector=MailchimpConnector,
    config=CONFIG,
    credentials={"api_key": API_KEY},
    query=Query("audience.subscribed"),
    wrong_type={**CONFIG, "page_size": "three"},
    mock=_mock,
    auth_hint="api_key",
)
