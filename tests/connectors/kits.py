"""The kits of the built-in connectors (and of Acme, the test connector), by connector key.

A kit (:class:`connectors.testing.Kit`, documented there) is what the shipped contract suite
needs to run a connector without its platform. Each connector's kit lives in its own
``kit_<key>.py`` beside this file (a ``KIT``); Acme's and the demo's are here.
``tests/connectors/test_contract.py`` hands them to the suite through its ``kit`` fixture, the
way a plugin hands its own; an installed connector without a kit fails there.
"""

from __future__ import annotations

import httpx
import respx

from connectors.base import Window
from connectors.demo import DemoConnector
from connectors.testing import Expected, Kit, Mocked, Query, Scenario
from tests.connectors.acme import ACME_URL, AcmeConnector
from tests.connectors.acme_fake import API_KEY, FakeAcme, day_of_month

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
    connector=AcmeConnector,
    config={"base_url": ACME_URL},
    credentials={"api_key": API_KEY},
    query=Query("signups", filters=[{"field": "channel", "op": "eq", "value": "Email"}]),
    wrong_type={"base_url": ACME_URL, "page_size": "a hundred"},
    mock=_mock_acme,
    auth_hint="create a new key",
)


# --- demo: deterministic synthetic figures, no HTTP ----------------------------------------------

DEMO = Kit(
    connector=DemoConnector,
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
