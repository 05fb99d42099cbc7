"""Fixtures shared by the connector tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.connectors.engine_client import InstantClock, instant_pacing


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def pacing_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[InstantClock]:
    """The clock of every client the test builds: holds are noted and skipped, not waited."""
    with instant_pacing(monkeypatch) as clock:
        yield clock
