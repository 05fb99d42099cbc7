"""The pacing gate: a platform's usage headers hold every request of the source (SPEC section 4).

Each connector declares a reader of its platform's headers (``HttpOptions.pace``); the engine's
client applies it to every answer and holds the source's requests, those already queued for a
slot included, until the hold ends. These tests send a burst of concurrent requests through a
client built as the engine builds it, against a respx route whose first answer says nothing is
left, with each platform's own reader. The gate's clock is :class:`InstantClock` (a hold is
noted and skipped) except in the one test that proves a real wait.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import httpx
import pytest
import respx

from app.core.http import KrsyncClient, PacingClock, build_client
from connectors.base import Pacer, RateLimited
from connectors.hubspot.connector import _pace as hubspot_pace
from connectors.meta.graph import _pace as meta_pace
from connectors.pipedrive.connector import _LIMITS as PIPEDRIVE_LIMITS
from connectors.x import _LIMITS as X_LIMITS
from tests.connectors.engine_client import InstantClock

pipedrive_pace: Pacer = PIPEDRIVE_LIMITS.pace
x_pace: Pacer = X_LIMITS.pace

pytestmark = pytest.mark.anyio

API = "https://api.vendor.test"
BURST = 6

HUBSPOT_USAGE = "https://developers.hubspot.com/docs/api/usage-details"
PIPEDRIVE_LIMITS = "https://pipedrive.readme.io/docs/core-api-concepts-rate-limiting"
X_LIMITS = "https://docs.x.com/fundamentals/rate-limits"
META_LIMITS = "https://developers.facebook.com/docs/graph-api/overview/rate-limiting/"


def client(pace: Pacer | None, clock: PacingClock, *, max_hold: float = 60.0) -> KrsyncClient:
    """One slot, so the burst queues behind the first request while it is in flight."""
    return build_client(
        source_name="burst",
        base_url=API,
        allow_private=True,  # no DNS for *.test
        max_concurrency=1,
        pace=pace,
        max_hold=max_hold,
        pacing_clock=clock,
    )


class Route:
    """Answers ``/items``: the first answer with ``spent`` headers, the others with ``fresh``;
    notes the gate's clock at each arrival. An answer takes a few turns of the event loop, so
    the rest of the burst is queued in the client while the first is in flight."""

    def __init__(
        self, clock: Callable[[], float], spent: dict[str, str], fresh: dict[str, str]
    ) -> None:
        self.clock = clock
        self.spent = spent
        self.fresh = fresh
        self.sent_at: list[float] = []
        self.answered_at: list[float] = []

    async def answer(self, request: httpx.Request) -> httpx.Response:
        self.sent_at.append(self.clock())
        first = len(self.sent_at) == 1
        for _ in range(20):
            await asyncio.sleep(0)
        self.answered_at.append(self.clock())
        return httpx.Response(200, headers=self.spent if first else self.fresh, json={})


async def burst(
    pace: Pacer, spent: dict[str, str], fresh: dict[str, str], clock: PacingClock
) -> tuple[Route, list[httpx.Response], KrsyncClient]:
    route = Route(clock.monotonic, spent, fresh)
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{API}/items").mock(side_effect=route.answer)
        async with client(pace, clock) as http:
            answers = await asyncio.gather(*(http.get("/items") for _ in range(BURST)))
    return route, answers, http


def assert_all_waited(route: Route, hold: float) -> None:
    queued = route.sent_at[1:]
    assert len(queued) == BURST - 1
    assert all(sent >= route.answered_at[0] + hold for sent in queued), (route.sent_at, hold)


async def test_hubspot_remaining_zero_holds_the_queued_burst_for_the_interval() -> None:
    """``X-HubSpot-RateLimit-Remaining: 0`` with ``X-HubSpot-RateLimit-Interval-Milliseconds:
    2000``: nothing is left in the rolling window for its interval, so every request queued
    meanwhile waits two seconds, then all go.

    https://developers.hubspot.com/docs/api/usage-details (HUBSPOT_USAGE: the
    ``X-HubSpot-RateLimit-*`` headers; ``-Daily``/``-Daily-Remaining`` are not sent to OAuth
    apps: https://developers.hubspot.com/changelog/rate-limit-headers-will-now-appear-for-oauth-authenticated-calls)
    """
    clock = InstantClock()
    spent = {
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": "0",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "2000",
        "X-HubSpot-RateLimit-Daily": "500000",
        "X-HubSpot-RateLimit-Daily-Remaining": "499120",
    }
    fresh = spent | {"X-HubSpot-RateLimit-Remaining": "99"}

    route, answers, http = await burst(hubspot_pace, spent, fresh, clock)

    assert [a.status_code for a in answers] == [200] * BURST
    assert_all_waited(route, 2.0)
    assert clock.sleeps == [2.0]  # one hold, waited once: the others found it over
    assert http.stats.requests == BURST


async def test_hubspot_daily_remaining_alone_holds_nothing() -> None:
    """``X-HubSpot-RateLimit-Daily-Remaining`` is the day's quota (HUBSPOT_USAGE): the
    connector keeps it on the run; a spent day is its 429 ``DAILY``'s to report, not a hold."""
    clock = InstantClock()
    spent = {"X-HubSpot-RateLimit-Daily": "500000", "X-HubSpot-RateLimit-Daily-Remaining": "0"}

    route, _, _ = await burst(hubspot_pace, spent, spent, clock)

    assert clock.sleeps == []
    assert len(route.sent_at) == BURST


async def test_pipedrive_spent_burst_window_holds_the_queued_burst_until_the_reset() -> None:
    """``x-ratelimit-remaining: 0`` and ``x-ratelimit-reset: 2`` (seconds until the 2-second
    burst window resets): every request already queued waits for the reset, then all go.

    https://pipedrive.readme.io/docs/core-api-concepts-rate-limiting (PIPEDRIVE_LIMITS)
    """
    clock = InstantClock()
    spent = {"x-ratelimit-limit": "20", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "2"}
    fresh = spent | {"x-ratelimit-remaining": "19"}

    route, answers, _ = await burst(pipedrive_pace, spent, fresh, clock)

    assert [a.status_code for a in answers] == [200] * BURST
    assert_all_waited(route, 2.0)
    assert clock.sleeps == [2.0]


async def test_x_remaining_zero_holds_the_queued_burst_until_the_reset_epoch() -> None:
    """``x-rate-limit-remaining: 0`` with ``x-rate-limit-reset`` a Unix timestamp 30 s ahead:
    the window's calls are spent, so the queued requests wait until that instant, then go.

    https://docs.x.com/fundamentals/rate-limits (X_LIMITS: ``x-rate-limit-reset`` is the Unix
    timestamp the window resets at)
    """
    clock = InstantClock()
    reset = int(time.time()) + 30
    spent = {
        "x-rate-limit-limit": "300",
        "x-rate-limit-remaining": "0",
        "x-rate-limit-reset": str(reset),
    }
    fresh = spent | {"x-rate-limit-remaining": "299", "x-rate-limit-reset": str(reset + 900)}

    route, answers, _ = await burst(x_pace, spent, fresh, clock)

    assert [a.status_code for a in answers] == [200] * BURST
    [hold] = clock.sleeps
    assert 28 < hold <= 30
    assert_all_waited(route, hold)


async def test_meta_high_usage_refuses_the_queued_burst_unsent() -> None:
    """``X-App-Usage`` at 95 % of ``call_count``: Meta throttles at 100, so the queued requests
    are refused as ``RateLimited`` (Meta's connector waits no hold in the client: the engine
    waits it out) and none is sent; once the hold is over, requests go again.

    https://developers.facebook.com/docs/graph-api/overview/rate-limiting/ (META_LIMITS: the
    header's ``call_count``, ``total_cputime``, ``total_time`` are percentages)
    """
    clock = InstantClock()
    spent = {"X-App-Usage": json.dumps({"call_count": 95, "total_cputime": 10, "total_time": 8})}
    fresh = {"X-App-Usage": json.dumps({"call_count": 40, "total_cputime": 9, "total_time": 8})}
    route = Route(clock.monotonic, spent, fresh)

    with respx.mock(assert_all_called=False) as router:
        router.get(f"{API}/items").mock(side_effect=route.answer)
        async with client(meta_pace, clock, max_hold=0.0) as http:
            answers = await asyncio.gather(
                *(http.get("/items") for _ in range(BURST)), return_exceptions=True
            )
            [first, *queued] = answers
            assert isinstance(first, httpx.Response)
            assert all(isinstance(a, RateLimited) for a in queued), answers
            assert len(route.sent_at) == 1
            assert http.stats.requests == 1  # refused after taking a slot: still not sent
            refused = queued[0]
            assert isinstance(refused, RateLimited)
            assert refused.retry_after == 60.0
            assert "95 %" in refused.message

            clock.advance(refused.retry_after)
            assert (await http.get("/items")).status_code == 200
    assert len(route.sent_at) == 2


async def test_a_hold_longer_than_the_client_waits_is_refused_before_a_slot() -> None:
    """X's 15-minute window (X_LIMITS) spent: a new request is refused at once with what is
    left of the hold, without taking a slot or counting as sent."""
    clock = InstantClock()
    spent = {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(time.time()) + 900)}
    route = Route(clock.monotonic, spent, spent)

    with respx.mock(assert_all_called=False) as router:
        router.get(f"{API}/items").mock(side_effect=route.answer)
        async with client(x_pace, clock) as http:
            await http.get("/items")
            with pytest.raises(RateLimited) as refused:
                await http.get("/items")
            assert http.stats.requests == 1

    assert refused.value.retry_after is not None
    assert 890 < refused.value.retry_after <= 900
    assert "x-rate-limit-remaining: 0" in refused.value.message


async def test_the_queued_burst_really_waits_on_the_real_clock() -> None:
    """The same hold on the clock every client runs on: Pipedrive's one-second reset
    (PIPEDRIVE_LIMITS) keeps the queued requests for a second of wall time."""
    clock = PacingClock()
    spent = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1"}
    fresh = {"x-ratelimit-remaining": "19", "x-ratelimit-reset": "2"}

    route, answers, _ = await burst(pipedrive_pace, spent, fresh, clock)

    assert [a.status_code for a in answers] == [200] * BURST
    assert_all_waited(route, 1.0)


async def test_without_a_hold_the_gate_reads_no_clock() -> None:
    """The fast path: answers that ask nothing cost the gate one attribute test a request, not
    a clock read, a lock or a sleep."""

    class CountingClock(PacingClock):
        reads = 0

        def monotonic(self) -> float:
            self.reads += 1
            return super().monotonic()

    clock = CountingClock()
    fresh = {"x-ratelimit-remaining": "19", "x-ratelimit-reset": "2"}

    route, _, _ = await burst(pipedrive_pace, fresh, fresh, clock)

    assert len(route.sent_at) == BURST
    assert clock.reads == 2 * BURST  # the route's own notes (sent, answered), none of the gate's


async def test_a_source_without_a_reader_has_no_gate() -> None:
    """Connectors that declare no ``pace`` get the stack as it was: nothing added."""
    async with client(None, InstantClock()) as http:
        stack: list[str] = []
        transport: object = http._transport
        while transport is not None:
            stack.append(type(transport).__name__)
            transport = getattr(transport, "_inner", None)
    assert "PacingTransport" not in stack
