"""The connector contract (STYLE.md "Connectors"), run against every registered connector.

Parametrized over ``load_connectors()`` plus the Acme test connector, so each connector added to
the registry must pass it, driven by its kit in ``kits.py``: config validated, catalogue
described as JSON Schema, bad credentials classified with a message saying what to fix, a 429
with ``Retry-After`` waited out, pagination that ends, floats dated inside the window, an empty
window that fetches nothing and breaks nothing, and two syncs in a row through the real engine
that agree. A connector without a kit fails here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any, get_args
from zoneinfo import ZoneInfo

import anyio
import httpx
import jsonschema_rs  # schemathesis's validator, in the dev extra
import pytest
import respx
from pydantic import ValidationError
from sync_factories import freeze_today, make_kr, make_mapping, make_source, observations, runs

from app.core.db import session_scope
from app.core.http import KrsyncClient
from app.core.redact import secrets_in
from app.core.vault import encrypt_credentials
from app.models import DataSource
from app.sync.engine import sync_now
from connectors.base import (
    Category,
    CheckResult,
    Connector,
    ConnectorAuthError,
    Filter,
    MetricQuery,
    Window,
)
from connectors.registry import get_connector, load_connectors
from tests.connectors import engine_client
from tests.connectors.acme import AcmeConnector
from tests.connectors.kits import KITS, Kit, Mocked, Query, Scenario

WINDOW = Window(date(2026, 7, 1), date(2026, 7, 10))
TODAY = date(2026, 7, 11)
CONNECTOR_KEYS = sorted({*load_connectors(), AcmeConnector.key})


@pytest.fixture(autouse=True)
def engine_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with engine_client.engine_env(monkeypatch, attempts=100, cap=True):
        yield


@pytest.fixture(params=CONNECTOR_KEYS)
def key(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def kit(key: str, monkeypatch: pytest.MonkeyPatch) -> Kit:
    found = KITS.get(key)
    if found is None:
        pytest.fail(f"add a kit for connector {key} in tests/connectors/kits.py")
    for name, value in found.env.items():
        monkeypatch.setenv(name, value)
    return found


def http_only(kit: Kit) -> None:
    if not kit.http:
        pytest.skip("the connector makes no HTTP call")


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"this connector declared no HTTP, yet called {request.url}")


def mock(router: respx.MockRouter, kit: Kit, scenario: Scenario) -> Mocked | None:
    return kit.mock(router, scenario) if kit.mock is not None else None


def query_of(key: str, q: Query, query_id: str = "1") -> MetricQuery:
    cls = get_connector(key)
    filters = [Filter.model_validate(f) for f in q.filters]
    params = cls.validate_query(q.metric, q.params, filters, q.aggregation)  # type: ignore[arg-type]
    return MetricQuery(query_id, q.metric, params, tuple(filters))


@asynccontextmanager
async def connected(key: str, kit: Kit) -> AsyncIterator[tuple[Connector[Any, Any], KrsyncClient]]:
    """The connector on a client built the way the engine builds it."""
    async with engine_client.connected(
        get_connector(key),
        kit.config,
        kit.credentials,
        source_name=f"contract-{key}",
        transport=None if kit.http else httpx.MockTransport(no_network),
    ) as pair:
        yield pair


# --- declarations --------------------------------------------------------------------------------


def test_the_connector_has_a_complete_kit(key: str, kit: Kit) -> None:
    assert (kit.mock is not None) == kit.http, "an HTTP connector's kit mocks its platform"
    assert kit.http or kit.empty_query is not None, "a kit without HTTP names an empty query"


def test_config_rejects_an_unknown_key_and_a_wrong_type(key: str, kit: Kit) -> None:
    cls = get_connector(key)
    cls.config_model.model_validate(kit.config)
    cls.credentials_model.model_validate(kit.credentials)

    with pytest.raises(ValidationError) as unknown:
        cls.config_model.model_validate({**kit.config, "no_such_option": 1})
    assert [e["loc"] for e in unknown.value.errors()] == [("no_such_option",)]

    with pytest.raises(ValidationError) as wrong:
        cls.config_model.model_validate(kit.wrong_type)
    assert {e["loc"][0] for e in wrong.value.errors()} <= set(kit.wrong_type)


def test_describe_is_json_and_its_schemas_are_json_schema(key: str, kit: Kit) -> None:
    cls = get_connector(key)
    described = cls.describe()

    assert json.loads(json.dumps(described)) == described
    assert described["key"] == key
    assert described["category"] in get_args(Category)
    names = [m["name"] for m in described["metrics"]]
    assert names, "a connector offers at least one metric"
    assert len(names) == len(set(names))
    schemas = [described["config"], described["credentials"]] + [
        m["params"] for m in described["metrics"]
    ]
    for schema in schemas:
        jsonschema_rs.meta.validate(schema)
        assert schema.get("type") == "object"
    assert jsonschema_rs.validator_for(described["config"]).is_valid(kit.config)
    assert jsonschema_rs.validator_for(described["credentials"]).is_valid(kit.credentials)
    assert not jsonschema_rs.validator_for(described["config"]).is_valid(kit.wrong_type)
    query_of(key, kit.query)  # the kit's query is one the catalogue accepts


# --- one connector, one client -----------------------------------------------------------------


@pytest.mark.anyio
async def test_check_succeeds_with_good_credentials(key: str, kit: Kit) -> None:
    with respx.mock(assert_all_called=False) as router:
        mock(router, kit, "data")
        async with connected(key, kit) as (connector, _):
            result = await connector.check()

    assert isinstance(result, CheckResult)
    assert result.message
    if result.timezone is not None:
        ZoneInfo(result.timezone)


@pytest.mark.anyio
async def test_bad_credentials_are_an_auth_error_that_says_what_to_fix(key: str, kit: Kit) -> None:
    http_only(kit)
    with respx.mock(assert_all_called=False) as router:
        mock(router, kit, "bad_credentials")
        async with connected(key, kit) as (connector, _):
            with pytest.raises(ConnectorAuthError) as checked:
                await connector.check()
            with pytest.raises(ConnectorAuthError) as fetched:
                await connector.fetch([query_of(key, kit.query)], WINDOW)

    for error in (checked.value, fetched.value):
        assert kit.auth_hint.lower() in error.message.lower()
        for secret in secrets_in(kit.credentials):
            assert secret not in error.message


@pytest.mark.anyio
async def test_a_429_with_retry_after_is_waited_out(key: str, kit: Kit) -> None:
    http_only(kit)
    with respx.mock(assert_all_called=False) as router:
        mocked = mock(router, kit, "rate_limited")
        async with connected(key, kit) as (connector, http):
            result = await connector.fetch([query_of(key, kit.query)], WINDOW)

    assert mocked is not None
    assert {(v.date, v.group): v.value for v in result.values} == mocked.expected(WINDOW)
    assert http.stats.rate_limited >= 1
    assert http.stats.retries >= 1


@pytest.mark.anyio
async def test_pagination_ends_with_every_page_fetched(key: str, kit: Kit) -> None:
    http_only(kit)
    with respx.mock(assert_all_called=False) as router:
        mocked = mock(router, kit, "data")
        async with connected(key, kit) as (connector, http):
            with anyio.fail_after(10):
                result = await connector.fetch([query_of(key, kit.query)], WINDOW)

    assert mocked is not None
    assert {(v.date, v.group): v.value for v in result.values} == mocked.expected(WINDOW)
    assert http.stats.requests <= 50, "a 10-day window should not take 50 calls"
    if mocked.paginates:
        assert http.stats.requests >= 2, "the kit pages this window: more than one call"


@pytest.mark.anyio
async def test_fetch_gives_floats_dated_inside_the_window(key: str, kit: Kit) -> None:
    if not kit.fetches:
        pytest.skip("figures arrive by push: fetch has nothing to return")
    with respx.mock(assert_all_called=False) as router:
        mock(router, kit, "data")
        async with connected(key, kit) as (connector, _):
            result = await connector.fetch([query_of(key, kit.query, "q7")], WINDOW)

    assert result.values
    assert not result.query_errors
    for value in result.values:
        assert value.query_id == "q7"
        assert type(value.value) is float
        assert type(value.date) is date
        assert value.date in WINDOW


@pytest.mark.anyio
async def test_an_empty_window_fetches_nothing(key: str, kit: Kit) -> None:
    query = kit.query if kit.http else kit.empty_query
    assert query is not None
    with respx.mock(assert_all_called=False) as router:
        mock(router, kit, "empty")
        async with connected(key, kit) as (connector, _):
            result = await connector.fetch([query_of(key, query)], WINDOW)

    assert result.values == []
    assert not result.query_errors


# --- through the engine ------------------------------------------------------------------------


def _source(key: str, kit: Kit) -> int:
    return make_source(
        name=f"contract {key}",
        connector=key,
        config=kit.config,
        credentials_encrypted=encrypt_credentials(kit.credentials),
    )


def _mapped_kr(key: str, kit: Kit, src: int, query: Query) -> int:
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


def test_two_syncs_in_a_row_are_idempotent(
    key: str, kit: Kit, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not kit.fetches:
        pytest.skip("figures arrive by push: tests/push/test_push.py proves pushes idempotent")
    freeze_today(monkeypatch, TODAY)
    src = _source(key, kit)
    kr = _mapped_kr(key, kit, src, kit.query)

    with respx.mock(assert_all_called=False) as router:
        mock(router, kit, "data")
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
    for secret in secrets_in(kit.credentials):
        assert secret not in kept


def test_an_empty_window_breaks_nothing_through_the_engine(
    key: str, kit: Kit, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_today(monkeypatch, TODAY)
    src = _source(key, kit)
    if not kit.http:
        assert kit.empty_query is not None
        kr = _mapped_kr(key, kit, src, kit.empty_query)
        _sync(src)
        [run] = runs(src)
        assert run.status == "succeeded", run.error
        assert run.observations_written == 0
        assert observations(kr) == []
        return

    kr = _mapped_kr(key, kit, src, kit.query)
    with respx.mock(assert_all_called=False) as router:
        mock(router, kit, "data")
        _sync(src)
    seeded = observations(kr)
    with respx.mock(assert_all_called=False) as router:
        mock(router, kit, "empty")
        _sync(src)

    run = runs(src)[-1]
    assert run.status == "succeeded", run.error
    assert run.observations_written == 0
    assert observations(kr) == seeded


def test_a_base_url_must_be_an_http_root(key: str, kit: Kit) -> None:
    """SPEC section 4: every HTTP connector takes an optional `base_url` replacing the root."""
    cls = get_connector(key)
    if "base_url" not in cls.config_model.model_fields:
        pytest.skip("the connector has no base_url")
    with pytest.raises(ValidationError, match="base_url"):
        cls.config_model.model_validate({**kit.config, "base_url": "ftp://files.example"})
    root = cls.config_model.model_validate({**kit.config, "base_url": "https://proxy.example/"})
    assert root.base_url == "https://proxy.example"  # type: ignore[attr-defined]
