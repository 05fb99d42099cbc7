"""A connector on an HTTP client built the way the engine builds it, for connector tests.

``app/sync/connect.py`` (``open_connector``) builds a source's client from the connector's
``http_options()``: base URL, headers, rate limit, concurrency, OAuth2 and the platform's own
wait header, with the source's decrypted credential values as the secrets to mask. Tests that
call a connector directly go through :func:`connected` so they exercise that same client; a
test that needs something else (no throttle, a mock transport, a local server on 127.0.0.1)
says so with ``client_overrides``, which replace the matching ``build_client`` arguments.

:func:`engine_env` and :func:`mocked` are the fixtures' shared halves: the engine's settings
with stamina's waits zeroed, and a fake platform installed on a respx router.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from datetime import date
from typing import Any, Protocol, TypeVar

import pytest
import respx
import stamina
from pydantic import BaseModel

from app.core.http import KrsyncClient
from app.core.settings import get_settings
from app.sync.connect import connector_from, open_connector
from connectors.base import Connector, DailyValue, FetchResult
from tests.connectors.acme import configure_engine

TokenSaver = Callable[[dict[str, Any]], Awaitable[None]]


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


@asynccontextmanager
async def connected(
    cls: type[Connector[Any, Any]],
    config: Mapping[str, Any] | BaseModel,
    credentials: Mapping[str, Any],
    *,
    timezone: str = "UTC",
    today: date | None = None,
    on_token: TokenSaver | None = None,
    source_name: str | None = None,
    **client_overrides: Any,
) -> AsyncIterator[tuple[Connector[Any, Any], KrsyncClient]]:
    """``(connector, client)``: the connector built with ``timezone``/``today`` on its client.

    ``config`` and ``credentials`` are validated with the connector's own models; the client
    gets every ``HttpOptions`` field, OAuth2 included (``on_token`` then receives refreshed
    tokens, as the engine's token saver does), and ``secrets_in(credentials)``.
    """
    built = connector_from(
        cls, config, credentials, name=source_name or f"{cls.key}-test", timezone=timezone
    )
    async with open_connector(built, today=today, on_token=on_token, **client_overrides) as c:
        assert isinstance(c.http, KrsyncClient)
        yield c, c.http


def by_query(values: Iterable[DailyValue] | FetchResult) -> dict[str, dict[date, float]]:
    """A fetch's values (or a `FetchResult`) as {query id: {day: value}}, for assertions."""
    out: dict[str, dict[date, float]] = {}
    for v in values.values if isinstance(values, FetchResult) else values:
        out.setdefault(v.query_id, {})[v.date] = v.value
    return out
