"""Registrants and attendees a day from a webinar platform's REST API.

The API (``config.base_url``, default ``https://api.webinars.example``), with
``Authorization: Bearer <api key>`` on every call::

    GET /v1/account        -> {"id": "acc_1", "name": "...", "timezone": "Europe/Berlin"}
    GET /v1/reports/daily?metric=registrants|attendees&from=YYYY-MM-DD&to=YYYY-MM-DD
                          [&webinar_id=w1,w2][&limit=N][&cursor=...]
                           -> {"days": [{"date": "YYYY-MM-DD", "count": 12}],
                               "next_cursor": null | "..."}

A refused key answers 401, a key without the reports scope 403, a busy API 429 with
``Retry-After`` (krsync's HTTP client waits it out before this code sees an answer).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import (
    BaseUrl,
    CheckResult,
    Connector,
    DailyValue,
    FetchResult,
    HttpOptions,
    MetricQuery,
    MetricSpec,
    Window,
    json_body,
)
from connectors.errors import Classifier
from connectors.paginate import CursorPaginator, Request, pages

#: What to do about a refused call; a status without a hint gets the toolkit's own message
#: (a 429 a wait, a 5xx a retry, the platform's words quoted and masked).
ERRORS = Classifier(
    "the webinar platform",
    {
        401: "the API key was refused: create a new key in Settings",
        403: "the API key lacks the `reports:read` scope: create a new key",
    },
)


class WebinarConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: BaseUrl = Field("https://api.webinars.example", description="The API root")
    page_size: int = Field(100, ge=1, le=500, description="Days per page the API should send")


class WebinarCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: str = Field(description="Settings → API keys, with the `reports:read` scope")


def _metric(name: str, description: str) -> MetricSpec:
    return MetricSpec(
        name=name,
        description=description,
        unit="people",
        filters={"webinar_id": frozenset({"eq", "in"})},
    )


class WebinarConnector(Connector[WebinarConfig, WebinarCredentials]):
    """One paginated report call per query; the platform counts, we never list people."""

    key = "webinars"
    name = "Webinar platform"
    category = "generic"
    settle_days = 1  # late joiners of a webinar that ran past midnight
    metrics = (
        _metric("registrants", "People who registered, by registration day"),
        _metric("attendees", "People who joined a webinar, by webinar day"),
    )

    @classmethod
    def http_options(cls, config: WebinarConfig, credentials: WebinarCredentials) -> HttpOptions:
        headers = {"Authorization": f"Bearer {credentials.api_key}"}
        return HttpOptions(base_url=config.base_url, headers=headers, rate_per_second=5)

    async def check(self) -> CheckResult:
        account = await self._get("/v1/account", {})
        return CheckResult(f"Connected to {account['name']}", timezone=account.get("timezone"))

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult()
        for query in queries:
            params = {
                "metric": query.metric,
                "from": window.start.isoformat(),
                "to": window.end.isoformat(),
                "limit": str(self.config.page_size),
            }
            for flt in query.filters:
                params[flt.field] = ",".join(str(v) for v in flt.values)
            paginator = CursorPaginator(cursor="next_cursor", param="cursor")
            first = Request("GET", "/v1/reports/daily", params)
            async for body in pages(paginator, first, self._send, warnings=result.warnings):
                for row in body["days"]:
                    day = date.fromisoformat(row["date"])
                    if day in window:  # a padded answer must not write outside the window
                        result.values.append(DailyValue(query.id, day, float(row["count"])))
        return result

    async def _get(self, path: str, params: dict[str, str]) -> Any:
        return await self._send(Request("GET", path, params))

    async def _send(self, request: Request) -> Any:
        response = await self.http.get(request.url, params=request.params)
        if response.is_success:
            return json_body(response, self.name)
        raise ERRORS(response, self.http.redact)
