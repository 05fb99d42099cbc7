"""One kit per registered connector: what the contract suite needs to run it without a platform.

A kit gives a valid config and credentials, one valid metric query, a config with a wrongly
typed field, and (for HTTP connectors) ``mock``: a function that installs respx routes playing
the platform in one of four scenarios:

- ``data``: figures for any window asked, spread over 2+ pages for the contract's 10-day window
  where the platform pages (``Mocked.paginates``);
- ``bad_credentials``: the platform refuses the credentials (401 or its own equivalent);
- ``rate_limited``: the first data call answers 429 with ``Retry-After: 1``, then as ``data``;
- ``empty``: the platform answers, with no figures for any day.

``mock`` returns a :class:`Mocked` saying which values a fetch of a window must give. Build the
routes from the vendor's documented request and response shapes, and cite the page.

A new connector needs a kit here, or the contract suite fails for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import httpx
import respx

from connectors.base import Window
from tests.connectors.acme import ACME_URL
from tests.connectors.acme_fake import API_KEY, FakeAcme, day_of_month

Scenario = Literal["data", "bad_credentials", "rate_limited", "empty"]
#: Values a fetch must return, by (date, group label or None).
Expected = dict[tuple[date, str | None], float]


@dataclass(frozen=True)
class Query:
    metric: str
    params: dict[str, Any] = field(default_factory=dict)
    filters: list[dict[str, Any]] = field(default_factory=list)
    aggregation: str = "sum"


@dataclass(frozen=True)
class Mocked:
    expected: Callable[[Window], Expected]
    #: Whether the platform answers the contract's 10-day window in two pages or more.
    paginates: bool


@dataclass(frozen=True)
class Kit:
    config: dict[str, Any]
    credentials: dict[str, Any]
    query: Query
    #: ``config`` with one field of the wrong type.
    wrong_type: dict[str, Any]
    http: bool = True
    mock: Callable[[respx.MockRouter, Scenario], Mocked] | None = None
    #: Words the message of a bad-credentials error must contain: what to fix.
    auth_hint: str = ""
    #: Connectors without HTTP have no empty platform to mock: a query that has no figures.
    empty_query: Query | None = None
    #: False for connectors whose figures arrive by push: their fetch has nothing to return.
    fetches: bool = True
    #: Settings the connector reads from the environment (e.g. ``KRSYNC_FILES_DIR``).
    env: dict[str, str] = field(default_factory=dict)


# --- acme: tests/connectors/acme.py (the test platform, documented there) ----------------------


def _mock_acme(router: respx.MockRouter, scenario: Scenario) -> Mocked:
    fake = FakeAcme(
        ACME_URL,
        page_size=3,
        default=day_of_month if scenario in ("data", "rate_limited") else None,
        api_keys=() if scenario == "bad_credentials" else (API_KEY,),
    )
    if scenario == "rate_limited":
        fake.fail("metrics", httpx.Response(429, headers={"Retry-After": "1"}))
    fake.install(router)

    def expected(window: Window) -> Expected:
        if scenario == "empty":
            return {}
        return {(day, None): float(day.day) for day in window.days()}

    return Mocked(expected=expected, paginates=True)


ACME = Kit(
    config={"base_url": ACME_URL},
    credentials={"api_key": API_KEY},
    query=Query("signups", filters=[{"field": "channel", "op": "eq", "value": "Email"}]),
    wrong_type={"base_url": ACME_URL, "page_size": "a hundred"},
    mock=_mock_acme,
    auth_hint="create a new key",
)


# --- demo: deterministic synthetic figures, no HTTP ----------------------------------------------

DEMO = Kit(
    config={"seed": 7},
    credentials={},
    query=Query("sessions", filters=[{"field": "channel", "op": "eq", "value": "Email"}]),
    wrong_type={"seed": "seven"},
    http=False,
    # A rate over no segment at all has no figure on any day.
    empty_query=Query(
        "bounce_rate",
        filters=[
            {"field": "channel", "op": "eq", "value": "Email"},
            {"field": "channel", "op": "neq", "value": "Email"},
        ],
        aggregation="avg",
    ),
)


class _Kits(dict[str, Kit]):
    """Every kit, found on first lookup rather than at import.

    Each `kit_<key>.py` imports this module; discovering at import time would import the kit
    modules while one of them is half-imported (a test that imports its kit first) and find it
    without its `KIT`.
    """

    _found = False

    def _discover(self) -> None:
        """Each connector's kit may live in its own `kit_<key>.py` beside this file (a `KIT`)."""
        if self._found:
            return
        import importlib
        from pathlib import Path

        self._found = True
        for path in sorted(Path(__file__).parent.glob("kit_*.py")):
            module = importlib.import_module(f"tests.connectors.{path.stem}")
            self[path.stem.removeprefix("kit_")] = module.KIT

    def __getitem__(self, key: str) -> Kit:
        self._discover()
        return super().__getitem__(key)

    def get(self, key: str, default: Kit | None = None) -> Kit | None:  # type: ignore[override]
        self._discover()
        return super().get(key, default)


KITS = _Kits(acme=ACME, demo=DEMO)
