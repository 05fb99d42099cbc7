"""The connector of bench/sync.py, for the fake platform of bench/fakeapi.py.

That platform can't batch metrics and pages by week, so the fewest calls a fetch can make is
(queries x ceil(days / 7)); what a connector can still do is not wait: every page of every
query is known up front, so all of them are fired at once and the engine's client (its
per-source semaphore of ``max_concurrency``) decides how many are in flight. A page that says
there is more than predicted (the platform changed its page size) is followed one by one.

It is not installed as an entry point: bench/sync.py registers it in-process with ``register``.
"""

from __future__ import annotations

import asyncio
import functools
import math
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field

import connectors.registry as registry
from app.core.http import HttpStatusError, KrsyncClient
from connectors.base import (
    Category,
    CheckResult,
    Connector,
    ConnectorAuthError,
    ConnectorConfigError,
    DailyValue,
    FetchResult,
    HttpOptions,
    MetricQuery,
    MetricSpec,
    RateLimited,
    RetriableError,
    Window,
)

PAGE_DAYS = 7
MAX_CONCURRENCY = 10
_METRIC_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,200}")


class BenchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(min_length=1, description="The fake platform's root URL.")


class BenchCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, description="Bearer token; the platform counts per token.")


class _QueryFailed(Exception):
    """One query's own failure (unknown metric, bad answer): the others go on."""


@functools.lru_cache(maxsize=4096)
def _spec(name: str) -> MetricSpec:
    return MetricSpec(
        name=name,
        description=f"`{name}` as the bench platform counts it per day",
        unit="count",
        history="daily",
        additive=True,
    )


class BenchConnector(Connector[BenchConfig, BenchCredentials]):
    key: ClassVar[str] = "bench"
    name: ClassVar[str] = "Bench platform"
    category: ClassVar[Category] = "generic"
    recommended_lookback_days: ClassVar[int | None] = 3
    #: Requests built ahead of the engine's free slots; 0 builds every one of them at once.
    send_ahead: ClassVar[int] = 2 * MAX_CONCURRENCY

    @classmethod
    def metric_spec(cls, name: str) -> MetricSpec | None:
        """Open-ended: any metric name the platform might know, additive and daily."""
        return _spec(name) if _METRIC_NAME.fullmatch(name) else None

    @classmethod
    def http_options(cls, config: BenchConfig, credentials: BenchCredentials) -> HttpOptions:
        return HttpOptions(
            base_url=config.base_url,
            max_concurrency=MAX_CONCURRENCY,
            headers={"Authorization": f"Bearer {credentials.token}"},
        )

    async def check(self) -> CheckResult:
        yesterday = datetime.now(UTC).date() - timedelta(days=1)  # the platform's days are UTC
        await self._page("check", Window(yesterday, yesterday), 1)
        return CheckResult("the bench platform answers and accepts the token", timezone="UTC")

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        pages = math.ceil(window.num_days / PAGE_DAYS)
        jobs = [(q, page) for q in queries for page in range(1, pages + 1)]
        gate = asyncio.Semaphore(self.send_ahead) if self.send_ahead > 0 else None

        async def one(metric: str, page: int) -> tuple[list[tuple[date, float]], int | None]:
            if gate is None:
                return await self._page(metric, window, page)
            async with gate:
                return await self._page(metric, window, page)

        outcomes = await asyncio.gather(
            *(one(q.metric, page) for q, page in jobs), return_exceptions=True
        )
        result = FetchResult()
        # A failure of the whole fetch (credentials, rate limit, platform down) wins.
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, _QueryFailed):
                raise outcome
        follow: dict[str, tuple[MetricQuery, int]] = {}
        for (query, page), outcome in zip(jobs, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                result.query_errors[query.id] = str(outcome)
                continue
            days, next_page = outcome
            result.values += [DailyValue(query.id, d, v) for d, v in days if d in window]
            if page == pages and next_page is not None:
                follow[query.id] = (query, next_page)
        for query, page in follow.values():
            # More pages than predicted: the platform's page size shrank; follow the links.
            more: int | None = page
            while more is not None:
                try:
                    days, more = await self._page(query.metric, window, more)
                except _QueryFailed as exc:
                    result.query_errors[query.id] = str(exc)
                    break
                result.values += [DailyValue(query.id, d, v) for d, v in days if d in window]
        if result.query_errors:
            failed = set(result.query_errors)
            result.values = [v for v in result.values if v.query_id not in failed]
        return result

    # --- one request ------------------------------------------------------------------------------

    async def _page(
        self, metric: str, window: Window, page: int
    ) -> tuple[list[tuple[date, float]], int | None]:
        """One page of one metric: its (day, value) pairs and the next page's number, if any."""
        response = await self.http.get(
            f"/v1/metrics/{quote(metric, safe='')}/daily",
            params={"from": window.start.isoformat(), "to": window.end.isoformat(), "page": page},
        )
        if response.is_error:
            raise _mapped(self._status_error(response))
        where = f"`{metric}` page {page}"
        try:
            body = response.json()
            data, next_page = body["data"], body["next_page"]
            days = [(date.fromisoformat(item["date"]), float(item["value"])) for item in data]
        except (ValueError, KeyError, TypeError) as exc:
            raise _QueryFailed(f"{where}: unreadable answer ({exc})") from None
        if not (next_page is None or isinstance(next_page, int)):
            raise _QueryFailed(f"{where}: next_page is {next_page!r}, not a number or null")
        return days, next_page

    def _status_error(self, response: httpx.Response) -> HttpStatusError:
        """The engine's redacted error for an error status (its client builds the message)."""
        if isinstance(self.http, KrsyncClient):
            try:
                self.http.raise_for_status(response)
            except HttpStatusError as exc:
                return exc
        return HttpStatusError(
            f"GET {response.request.url.path} answered {response.status_code}",
            status_code=response.status_code,
        )


def _mapped(exc: HttpStatusError) -> Exception:
    """The connector error an HTTP status stands for, for the engine to classify."""
    status = exc.status_code or 0
    if status in (401, 403):
        return ConnectorAuthError(exc.message)
    if status == 429:
        return RateLimited(exc.message, retry_after=exc.retry_after)
    if status >= 500:
        return RetriableError(exc.message)
    if status == 404:
        return _QueryFailed(exc.message)
    return ConnectorConfigError(exc.message)


def register() -> None:
    """Add ``bench`` to the registry, in this process only, as a lookup by key would find it:
    the nightly sync imports the connectors its sources use, not the whole catalogue."""
    registry._by_key[BenchConnector.key] = BenchConnector
