"""A connector on an HTTP client built the way the engine builds it, for connector tests.

``app/sync/connect.py`` (``open_connector``) builds a source's client from the connector's
``http_options()``: base URL, headers, rate limit, concurrency, OAuth2 and the platform's own
wait header, with the source's decrypted credential values as the secrets to mask. Tests that
call a connector directly go through :func:`connected` (``connectors.testing.connect``, which
plugins' tests use too) so they exercise that same client; a test that needs something else
(no throttle, a mock transport, a local server on 127.0.0.1) says so with
``client_overrides``, which replace the matching ``build_client`` arguments.

:func:`engine_env` and :func:`mocked` are the fixtures' shared halves: the engine's settings
with stamina's waits zeroed, and a fake platform installed on a respx router.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any, Protocol, TypeVar

import httpx
import pytest
import respx
import stamina

from app.core import http as http_module
from app.core.http import PacingClock
from app.core.settings import get_settings
from connectors.base import DailyValue, FetchResult
from connectors.testing import connect
from tests.connectors.acme import configure_engine

TokenSaver = Callable[[dict[str, Any]], Awaitable[None]]


class BareClient(httpx.AsyncClient):
    """A bare httpx client typed as the engine's (:class:`connectors.base.HttpClient`), for
    tests that need no retries, pacing or OAuth: it holds no secret, so it masks nothing."""

    def redact(self, text: str) -> str:
        return text


class Installable(Protocol):
    def install(self, router: respx.MockRouter) -> object: ...


FakeT = TypeVar("FakeT", bound=Installable)


@contextmanager
def engine_env(
    monkeypatch: pytest.MonkeyPatch, *, attempts: int, cap: bool = False
) -> Iterator[None]:
    """:func:`configure_engine` (``*.test`` resolves to a public address) with stamina in
    testing mode (``attempts``, ``cap``); the settings cache is cleared afterwards."""
    configure_engine(monkeypatch)
    with stamina.set_testing(True, attempts=attempts, cap=cap):
        yield
    get_settings.cache_clear()


@contextmanager
def mocked(fake: FakeT) -> Iterator[FakeT]:
    """``fake`` answering on a respx router for as long as the block lasts."""
    with respx.mock(assert_all_called=False) as router:
        fake.install(router)
        yield fake


#: The connector on the client the engine would build; shipped for plugins' tests too.
connected = connect


class InstantClock(PacingClock):
    """The pacing gate's clock in a test: a sleep is noted, moves the clock on and returns at
    once, so a test asserts the holds a platform's headers asked for without waiting them."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # a sleep still lets the other tasks run

    def advance(self, seconds: float) -> None:
        """Time passing outside the client (the engine waiting out a ``RateLimited``)."""
        self.now += seconds


@contextmanager
def instant_pacing(monkeypatch: pytest.MonkeyPatch) -> Iterator[InstantClock]:
    """Every client built in the block paces on one :class:`InstantClock`."""
    clock = InstantClock()
    monkeypatch.setattr(http_module, "PACING_CLOCK", clock)
    yield clock


def by_query(values: Iterable[DailyValue] | FetchResult) -> dict[str, dict[date, float]]:
    """A fetch's values (or a `FetchResult`) as {query id: {day: value}}, for assertions."""
    out: dict[str, dict[date, float]] = {}
    for v in values.values if isinstance(values, FetchResult) else values:
        out.setdefault(v.query_id, {})[v.date] = v.value
    return out
