"""The connector contract (STYLE.md "Connectors"), run against every registered connector.

The tests themselves ship in :mod:`connectors.testing` (a plugin author runs them on their own
connector); here :class:`TestContract` gives them a ``kit`` fixture parametrized over
``load_connectors()`` plus the Acme test connector, so each connector added to the registry must
pass them, driven by its kit in ``kits.py``. A connector without a kit fails here.

What needs krsync's database stays here: two syncs in a row through the real engine that agree
and keep no credential in their run records, and an empty window that keeps what was stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import respx
from sync_factories import freeze_today, make_kr, make_mapping, make_source, observations, runs

from app.core.db import session_scope
from app.core.vault import encrypt_credentials
from app.models import DataSource
from app.sync.engine import sync_now
from connectors.registry import load_connectors
from connectors.testing import ContractSuite, Kit, Query, secrets_of
from tests.connectors import engine_client
from tests.connectors.acme import AcmeConnector
from tests.connectors.kits import KITS

TODAY = date(2026, 7, 11)
CONNECTOR_KEYS = sorted({*load_connectors(), AcmeConnector.key})


def _source(kit: Kit) -> int:
    key = kit.connector.key
    return make_source(
        name=f"contract {key}",
        connector=key,
        config=kit.config,
        credentials_encrypted=encrypt_credentials(kit.credentials),
    )


def _mapped_kr(src: int, query: Query) -> int:
    kr = make_kr(aggregation=query.aggregation)
    make_mapping(kr, src, query.metric, params=query.params, filters=query.filters)
    return kr


def _sync(source_id: int) -> int:
    with session_scope() as s:
        src = s.get(DataSource, source_id)
        assert src is not None
        return sync_now(s, src, trigger="cli")


def _values(rows: list[tuple[date, str, str, float, int | None]]) -> list[tuple[Any, ...]]:
    return [r[:4] for r in rows]


class TestContract(ContractSuite):
    @pytest.fixture(params=CONNECTOR_KEYS)
    def kit(self, request: pytest.FixtureRequest) -> Kit:
        found = KITS.get(str(request.param))
        if found is None:
            pytest.fail(f"add a kit for connector {request.param} in tests/connectors/kits.py")
        return found

    @pytest.fixture(autouse=True)
    def engine_env(self, contract_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        """Acme registered and a secret key, for the syncs through the engine below."""
        with engine_client.engine_env(monkeypatch, attempts=100, cap=True):
            yield

    # --- through the engine: a database -------------------------------------------------------

    def test_two_syncs_in_a_row_are_idempotent(
        self, kit: Kit, db_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        if not kit.fetches:
            pytest.skip("figures arrive by push: tests/push/test_push.py proves pushes idempotent")
        freeze_today(monkeypatch, TODAY)
        src = _source(kit)
        kr = _mapped_kr(src, kit.query)

        with respx.mock(assert_all_called=False) as router:
            self.mock(router, kit, "data")
            first_id = _sync(src)
            first = observations(kr)
            second_id = _sync(src)
            second = observations(kr)

        one, two = runs(src)
        assert (one.status, two.status) == ("succeeded", "succeeded"), (one.error, two.error)
        assert one.observations_written > 0
        assert first
        assert _values(second) == _values(first)
        assert {r[4] for r in first} == {first_id}
        # the second run re-read the lookback days: same figures, now carrying its id
        assert second_id in {r[4] for r in second}
        # nothing of the credentials in what the runs keep (details hold platform facts)
        kept = json.dumps([[r.error, r.warnings, r.details] for r in (one, two)], default=str)
        for secret in secrets_of(kit):
            assert secret not in kept

    def test_an_empty_window_breaks_nothing_through_the_engine(
        self, kit: Kit, db_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        freeze_today(monkeypatch, TODAY)
        src = _source(kit)
        if not kit.http:
            assert kit.empty_query is not None
            kr = _mapped_kr(src, kit.empty_query)
            _sync(src)
            [run] = runs(src)
            assert run.status == "succeeded", run.error
            assert run.observations_written == 0
            assert observations(kr) == []
            return

        kr = _mapped_kr(src, kit.query)
        with respx.mock(assert_all_called=False) as router:
            self.mock(router, kit, "data")
            _sync(src)
        seeded = observations(kr)
        with respx.mock(assert_all_called=False) as router:
            self.mock(router, kit, "empty")
            _sync(src)

        run = runs(src)[-1]
        assert run.status == "succeeded", run.error
        assert run.observations_written == 0
        assert observations(kr) == seeded
