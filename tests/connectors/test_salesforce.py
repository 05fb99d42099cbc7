"""The ``salesforce`` connector against a faked org (tests/connectors/kit_salesforce.py).

Every request and answer is built from Salesforce's documented shapes; each test names the page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import httpx
import pytest
import sync_factories
from fastapi.testclient import TestClient
from sync_factories import freeze_today, make_kr, make_mapping, make_source, observations, runs

from app.core.db import session_scope
from app.core.http import KrsyncClient
from app.core.redact import secrets_in
from app.core.vault import decrypt_credentials, encrypt_credentials
from app.models import DataSource
from connectors.base import (
    ConnectorAuthError,
    ConnectorConfigError,
    Filter,
    MappingError,
    MetricQuery,
    RateLimited,
    RetriableError,
    Window,
)
from connectors.salesforce.connector import SalesforceConnector, soql_condition
from connectors.salesforce.models import SalesforceCountParams, SalesforceSumParams
from factories import cycle, data_source, key_result, objective
from tests.connectors import (
    engine_client,
    kits,  # first: it loads every kit, this one included
)
from tests.connectors.kit_salesforce import (
    AGGREGATE_QUERY_MORE,
    CLIENT_ID,
    CLIENT_SECRET,
    DATA,
    INSTANCE,
    REFRESH_TOKEN,
    FakeSalesforce,
    sf_error,
)

MOVED = "https://krsync-eu.my.salesforce.test"

WINDOW = Window(date(2026, 7, 1), date(2026, 7, 10))
CREDENTIALS = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "refresh_token": REFRESH_TOKEN,
}
CONFIG = kits.KITS["salesforce"].config

QUERY_DOC = "https://developer.salesforce.com/docs/platform/api-rest/guide/resources-query.md"


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with engine_client.engine_env(monkeypatch, attempts=100, cap=True):
        yield


@pytest.fixture
def fake() -> Iterator[FakeSalesforce]:
    with engine_client.mocked(FakeSalesforce()) as org:
        yield org


@asynccontextmanager
async def connected(
    credentials: dict[str, Any] | None = None, **config: Any
) -> AsyncIterator[tuple[SalesforceConnector, KrsyncClient]]:
    """The connector on a client built as the engine builds it (Authlib OAuth included)."""
    async with engine_client.connected(
        SalesforceConnector, CONFIG | config, credentials or CREDENTIALS
    ) as (connector, http):
        assert isinstance(connector, SalesforceConnector)
        yield connector, http


def query(
    metric: str, qid: str = "1", filters: list[dict[str, Any]] | None = None, **params: Any
) -> MetricQuery:
    parsed = [Filter.model_validate(f) for f in filters or []]
    validated = SalesforceConnector.validate_query(metric, params, parsed, "sum")
    return MetricQuery(qid, metric, validated, tuple(parsed))


# --- batching, SOQL, paging ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_count_and_sums_of_one_object_share_one_statement_answered_whole(
    fake: FakeSalesforce,
) -> None:
    """Aggregate SOQL (COUNT, SUM, GROUP BY a date field), answered in one piece: a GROUP BY
    query "can't use the query locator to get more results".

    https://developer.salesforce.com/docs/platform/salesforce-soql-sosl/guide/sforce-api-calls-soql-select-functions.html
    https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_group_by_considerations.htm
    """
    queries = [
        query("Opportunity.count", "won", date_field="CloseDate", date_type="date"),
        query(
            "Opportunity.sum", "amount", date_field="CloseDate", date_type="date", field="Amount"
        ),
        query(
            "Opportunity.sum",
            "expected",
            date_field="CloseDate",
            date_type="date",
            field="ExpectedRevenue",
        ),
    ]
    async with connected() as (connector, _):
        result = await connector.fetch(queries, WINDOW)

    assert fake.soql() == [
        "SELECT CloseDate d, COUNT(Id) n, SUM(Amount) s0, SUM(ExpectedRevenue) s1 "
        "FROM Opportunity WHERE CloseDate >= 2026-07-01 AND CloseDate <= 2026-07-10 "
        "GROUP BY CloseDate"
    ]
    # ten rows, one a day, in the one answer
    [call] = fake.calls("query")
    assert call.url.path == f"{DATA}/query"
    assert not result.query_errors
    days = list(WINDOW.days())
    assert engine_client.by_query(result.values) == {
        "won": {d: float(d.day) for d in days},
        "amount": {d: d.day * 100.0 for d in days},
        "expected": {d: d.day * 100.0 + 1 for d in days},
    }
    assert all(type(v.value) is float for v in result.values)


@pytest.mark.anyio
async def test_datetime_fields_count_the_users_days_and_padding_days_are_dropped(
    fake: FakeSalesforce,
) -> None:
    """DAY_ONLY(convertTimezone(datetime)) groups by the user's day; bounds are UTC datetimes.

    https://developer.salesforce.com/docs/platform/salesforce-soql-sosl/guide/sforce-api-calls-soql-select-convert-time-zone.md
    https://developer.salesforce.com/docs/platform/salesforce-soql-sosl/guide/sforce-api-calls-soql-select-date-functions.html
    """
    async with connected() as (connector, _):
        result = await connector.fetch([query("Lead.count")], WINDOW)

    [soql] = fake.soql()
    assert soql == (
        "SELECT DAY_ONLY(convertTimezone(CreatedDate)) d, COUNT(Id) n FROM Lead "
        "WHERE CreatedDate >= 2026-06-30T00:00:00Z AND CreatedDate < 2026-07-12T00:00:00Z "
        "GROUP BY DAY_ONLY(convertTimezone(CreatedDate))"
    )
    # the fake answers for 2026-06-30 and 2026-07-11 too (a far time zone's days): not kept
    assert {v.date for v in result.values} == set(WINDOW.days())
    assert not fake.calls("describe"), "CreatedDate is an audit datetime on every object"


@pytest.mark.anyio
async def test_a_custom_date_field_is_typed_from_one_describe_per_object(
    fake: FakeSalesforce,
) -> None:
    """GET /sobjects/{SObject}/describe gives each field's `type` (date or datetime).

    https://developer.salesforce.com/docs/platform/object-reference/guide/access-for-fields.html
    """
    fake.describe_object("Deal__c", {"Id": "id", "Won_At__c": "datetime", "Value__c": "currency"})
    queries = [
        query("Deal__c.count", "n", date_field="Won_At__c"),
        query("Deal__c.sum", "v", date_field="Won_At__c", field="Value__c"),
    ]
    async with connected() as (connector, _):
        result = await connector.fetch(queries, WINDOW)

    assert len(fake.calls("describe")) == 1
    [soql] = fake.soql()
    assert soql.startswith(
        "SELECT DAY_ONLY(convertTimezone(Won_At__c)) d, COUNT(Id) n, SUM(Value__c) s0 FROM Deal__c"
    )
    assert set(engine_client.by_query(result.values)) == {"n", "v"}


@pytest.mark.anyio
async def test_a_describe_of_an_object_the_user_cant_see_names_the_object(
    fake: FakeSalesforce,
) -> None:
    """GET /sobjects/{SObject}/describe answers 404 NOT_FOUND for an object the user can't see:
    the object, not the address, is what to check.

    https://developer.salesforce.com/docs/platform/api-rest/guide/errorcodes.md
    """
    fake.describe_object("Deal__c", {"Id": "id", "Won_At__c": "datetime"})
    fake.hidden.add("Deal__c")
    async with connected() as (connector, _):
        result = await connector.fetch(
            [query("Deal__c.count", "n", date_field="Won_At__c")], WINDOW
        )
    message = result.query_errors["n"]
    assert "has no object `Deal__c` this user can see" in message
    assert "Read access" in message


@pytest.mark.anyio
async def test_queries_with_different_filters_are_different_statements(
    fake: FakeSalesforce,
) -> None:
    """One statement per object, date field and filters (a WHERE clause each).

    https://developer.salesforce.com/docs/platform/salesforce-soql-sosl/guide/sforce-api-calls-soql-select-conditionexpression.html
    """
    web = [{"field": "LeadSource", "op": "eq", "value": "Web"}]
    events = [{"field": "LeadSource", "op": "in", "value": ["Event", "Trade Show"]}]
    async with connected() as (connector, _):
        result = await connector.fetch(
            [
                query("Lead.count", "a", web),
                query("Lead.count", "b", events),
                query("Lead.count", "c", web),
            ],
            WINDOW,
        )

    assert len(fake.soql()) == 2
    assert "AND (LeadSource IN ('Event', 'Trade Show')) GROUP BY" in fake.soql()[1]
    assert engine_client.by_query(result.values)["a"] == engine_client.by_query(result.values)["c"]


# --- no SOQL injection ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_filter_value_cannot_inject_soql(fake: FakeSalesforce) -> None:
    """Quotes and backslashes in a value are escaped, so it stays one string literal.

    https://developer.salesforce.com/docs/platform/salesforce-soql-sosl/guide/sforce-api-calls-soql-select-quotedstringescapes.html
    """
    attack = "Web') OR (Name != 'x\\"
    async with connected() as (connector, _):
        await connector.fetch(
            [query("Lead.count", filters=[{"field": "LeadSource", "op": "eq", "value": attack}])],
            WINDOW,
        )

    [soql] = fake.soql()
    assert soql.endswith(
        "AND (LeadSource = 'Web\\') OR (Name != \\'x\\\\') "
        "GROUP BY DAY_ONLY(convertTimezone(CreatedDate))"
    )
    # Read back as SOQL reads it: the literal ends exactly where the value does.
    literal = soql.split("LeadSource = ", 1)[1]
    assert literal[0] == "'"
    i, chars = 1, []
    while literal[i] != "'":
        if literal[i] == "\\":
            i += 1
        chars.append(literal[i])
        i += 1
    assert "".join(chars) == attack
    assert literal[i + 1 :] == ") GROUP BY DAY_ONLY(convertTimezone(CreatedDate))"


def test_values_are_rendered_by_type_and_like_wildcards_escaped() -> None:
    """Literals by type: strings quoted, numbers, booleans and dates bare; LIKE's \\% and \\_.

    https://developer.salesforce.com/docs/platform/salesforce-soql-sosl/guide/sforce-api-calls-soql-select-quotedstringescapes.html
    https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_dateformats.htm
    """

    def cond(field: str, op: str, value: Any) -> str:
        return soql_condition(Filter(field=field, op=op, value=value))  # type: ignore[arg-type]

    assert cond("Amount", "gte", 1500.5) == "Amount >= 1500.5"
    assert cond("Amount", "lt", 1e21) == "Amount < 1000000000000000000000"
    assert cond("NumberOfEmployees", "gt", 50) == "NumberOfEmployees > 50"
    assert cond("IsWon", "eq", True) == "IsWon = TRUE"
    assert cond("CloseDate", "lte", "2026-07-01") == "CloseDate <= 2026-07-01"
    assert cond("LastModifiedDate", "gt", "2026-07-01T00:00:00Z") == (
        "LastModifiedDate > 2026-07-01T00:00:00Z"
    )
    # a date-looking value with anything after it is a quoted string, not bare SOQL
    assert cond("Name", "eq", "2026-07-01 OR Id != null") == "Name = '2026-07-01 OR Id != null'"
    assert cond("Name", "contains", "50%_off") == "Name LIKE '%50\\%\\_off%'"
    assert cond("Name", "neq", "a\nb\x00") == "Name != 'a\\nb\\u0000'"
    assert cond("Account.Industry", "not_in", ["Retail", 3]) == (
        "Account.Industry NOT IN ('Retail', 3)"
    )


@pytest.mark.parametrize(
    ("metric", "params", "filters", "part"),
    [
        ("Lead WHERE Id != null.count", {}, [], "metric"),
        ("Lead.avg", {}, [], "metric"),
        ("Lead.count", {"date_field": "CreatedDate) FROM User --"}, [], "params.date_field"),
        ("Opportunity.sum", {"field": "Amount), SUM(Secret__c"}, [], "params.field"),
        ("Opportunity.sum", {}, [], "params.field"),
        (
            "Lead.count",
            {},
            [{"field": "Name = 'x' OR Id", "op": "eq", "value": "y"}],
            "filters[0].field",
        ),
        ("Lead.count", {"date_type": "timestamp"}, [], "params.date_type"),
    ],
)
def test_names_that_are_not_api_names_are_refused(
    metric: str, params: dict[str, Any], filters: list[dict[str, Any]], part: str
) -> None:
    """Object and field API names are identifiers; nothing else reaches FROM, SELECT or WHERE.

    https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_concepts.htm
    """
    with pytest.raises(MappingError) as refused:
        SalesforceConnector.validate_query(metric, params, filters, "sum")
    assert refused.value.part == part


def test_any_object_is_a_metric_and_its_params_validate() -> None:
    """`<SObject>.count` / `<SObject>.sum` for standard and custom objects (API names, custom
    ones ending in `__c`, namespaced ones prefixed `ns__`).

    https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_concepts.htm
    https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/api/appexchange_api_prefix.htm
    """
    count = SalesforceConnector.validate_query("Campaign__c.count", {}, [], "sum")
    assert isinstance(count, SalesforceCountParams)
    assert count.date_field == "CreatedDate"
    summed = SalesforceConnector.validate_query(
        "Opportunity.sum", {"field": "Amount", "date_field": "CloseDate"}, [], "sum"
    )
    assert isinstance(summed, SalesforceSumParams)
    spec = SalesforceConnector.metric_spec("ns__Booking__c.sum")
    assert spec is not None
    assert spec.additive
    assert spec.allowed_ops("Any_Field__c") is not None


# --- tokens --------------------------------------------------------------------------------------


def test_an_expired_session_is_refreshed_once_and_the_rotated_token_stored_encrypted(
    fake: FakeSalesforce, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """401 INVALID_SESSION_ID -> one refresh-token grant -> the call repeated; tokens stored.

    https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_understanding_refresh_token_oauth.htm
    https://developer.salesforce.com/docs/platform/api-rest/guide/errorcodes.md
    https://help.salesforce.com/s/articleView?id=remoteaccess_oauth_refresh_token_flow.htm
    """
    freeze_today(monkeypatch, date(2026, 7, 11))
    fake.rotate = True
    src = make_source(
        name="salesforce",
        connector="salesforce",
        config=CONFIG,
        credentials_encrypted=encrypt_credentials(
            CREDENTIALS | {"access_token": "sf-access-revoked", "instance_url": INSTANCE}
        ),
    )
    kr = make_kr()
    make_mapping(kr, src, "Lead.count")

    sync_factories.sync_source(src, trigger="cli")

    [run] = runs(src)
    assert run.status == "succeeded", run.error
    assert observations(kr)
    [refused, *_] = fake.calls("query")
    assert refused.headers["Authorization"] == "Bearer sf-access-revoked"
    [refresh] = fake.calls("token")
    assert b"grant_type=refresh_token" in refresh.content
    assert f"refresh_token={REFRESH_TOKEN}".encode() in refresh.content
    with session_scope() as s:
        encrypted = s.get(DataSource, src).credentials_encrypted  # type: ignore[union-attr]
    assert encrypted is not None
    assert "sf-access-1" not in encrypted
    stored = decrypt_credentials(encrypted)
    assert stored == CREDENTIALS | {
        "access_token": "sf-access-1-00D5e",
        "refresh_token": "sf-refresh-1-5Aep861",  # the rotated one replaces the old
        "instance_url": INSTANCE,
    }
    # Sforce-Limit-Info recorded on the run
    assert run.details["platform"]["api_usage"] == {"used": fake.used, "limit": 5000}


def test_merge_token_keeps_the_refresh_token_when_salesforce_does_not_rotate() -> None:
    """Without rotation the token answer has no refresh_token: the stored one stays.

    https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_understanding_refresh_token_oauth.htm
    """
    merged = SalesforceConnector.merge_token(
        dict(CREDENTIALS),
        {
            "access_token": "new",
            "instance_url": "https://eu.my.salesforce.com",
            "id": "x",
            "signature": "s",
            "issued_at": "1",
        },
    )
    assert merged == CREDENTIALS | {
        "access_token": "new",
        "instance_url": "https://eu.my.salesforce.com",
    }
    SalesforceConnector.credentials_model.model_validate(merged)


@pytest.mark.anyio
async def test_a_revoked_refresh_token_is_an_auth_error_that_says_what_to_do(
    fake: FakeSalesforce,
) -> None:
    """The token endpoint answers 400 invalid_grant for a revoked refresh token.

    https://help.salesforce.com/s/articleView?id=remoteaccess_oauth_refresh_token_flow.htm
    """
    fake.refresh_tokens.clear()
    async with connected() as (connector, _):
        with pytest.raises(ConnectorAuthError) as refused:
            await connector.fetch([query("Lead.count")], WINDOW)
    assert "reconnect" in refused.value.message
    assert "`refresh_token`" in refused.value.message
    for secret in secrets_in(CREDENTIALS):
        assert secret not in refused.value.message


@pytest.mark.anyio
async def test_a_session_refused_after_the_refresh_is_an_auth_error(fake: FakeSalesforce) -> None:
    """A second INVALID_SESSION_ID after a fresh token: the app or user lost API access.

    https://developer.salesforce.com/docs/platform/api-rest/guide/errorcodes.md
    """
    fake.fail("query", *[sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")] * 2)
    async with connected() as (connector, _):
        with pytest.raises(ConnectorAuthError, match="INVALID_SESSION_ID"):
            await connector.fetch([query("Lead.count")], WINDOW)
    # One refresh because the source had no access token (its answer says where to call), one
    # for the refused session, and the refused call repeated once: not a loop.
    assert len(fake.calls("token")) == 2
    assert len(fake.calls("query")) == 2


@pytest.mark.anyio
async def test_an_org_that_moved_is_followed_and_raises_a_notice(fake: FakeSalesforce) -> None:
    """The token answer names the org's `instance_url`, where its REST API lives: calls go
    there, ahead of the configured address, and the stale setting is worth a notice.

    https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_understanding_refresh_token_oauth.htm
    """
    fake.instance = MOVED
    async with connected() as (connector, _):
        result = await connector.fetch([query("Lead.count")], WINDOW)
    assert {r.url.host for r in fake.calls("query")} == {httpx.URL(MOVED).host}
    assert result.notices == [
        f"Salesforce serves this org at {MOVED}, where krsync sends its calls: set "
        "`instance_url` to it"
    ]


def test_a_source_without_instance_url_learns_it_from_the_token_answer_and_keeps_it(
    fake: FakeSalesforce, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source given only `login_url` and a refresh token: the refresh-token grant's answer
    has `instance_url`, the org's REST root; the run queries it, stores it (encrypted, with the
    new access token) and the next run goes straight there without refreshing.

    https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_understanding_refresh_token_oauth.htm
    https://developer.salesforce.com/docs/platform/api-rest/guide/resources-query.md
    """
    freeze_today(monkeypatch, date(2026, 7, 11))
    fake.instance = MOVED  # not the kit's default: the address can only come from the answer
    src = make_source(
        name="salesforce",
        connector="salesforce",
        config={"login_url": CONFIG["login_url"]},
        credentials_encrypted=encrypt_credentials(CREDENTIALS),
    )
    kr = make_kr()
    make_mapping(kr, src, "Lead.count")

    def sync() -> None:
        sync_factories.sync_source(src, trigger="cli")

    sync()

    [run] = runs(src)
    assert run.status == "succeeded", run.error
    assert observations(kr)
    [refresh] = fake.calls("token")
    assert fake.calls("query")[0].headers["Authorization"] == "Bearer sf-access-1-00D5e"
    assert {r.url.host for r in fake.calls("query")} == {httpx.URL(MOVED).host}
    with session_scope() as s:
        encrypted = s.get(DataSource, src).credentials_encrypted  # type: ignore[union-attr]
    assert encrypted is not None
    assert "sf-access-1" not in encrypted
    assert MOVED not in encrypted
    assert decrypt_credentials(encrypted) == CREDENTIALS | {
        "access_token": "sf-access-1-00D5e",
        "instance_url": MOVED,
    }
    with session_scope() as s:
        state = s.get(DataSource, src).state  # type: ignore[union-attr]
    assert not (state or {}).get("notices")  # no configured address to correct

    queried = len(fake.calls("query"))
    sync()

    assert [r.status for r in runs(src)] == ["succeeded", "succeeded"]
    assert fake.calls("token") == [refresh]  # the stored token and address were enough
    assert {r.url.host for r in fake.calls("query")[queried:]} == {httpx.URL(MOVED).host}


# --- limits, outages, permissions ----------------------------------------------------------------


@pytest.mark.anyio
async def test_429_and_5xx_are_ridden_out(fake: FakeSalesforce) -> None:
    """Transient 503 SERVER_UNAVAILABLE and 429 are retried by the engine's client.

    https://developer.salesforce.com/docs/platform/api-rest/guide/errorcodes.md
    """
    fake.fail(
        "query",
        sf_error(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable"),
        httpx.Response(429, headers={"Retry-After": "0"}),
    )
    async with connected() as (connector, http):
        result = await connector.fetch([query("Lead.count")], WINDOW)
    assert {v.date for v in result.values} == set(WINDOW.days())
    assert http.stats.retries == 2


@pytest.mark.anyio
async def test_the_daily_request_limit_is_a_rate_limit(fake: FakeSalesforce) -> None:
    """403 REQUEST_LIMIT_EXCEEDED: the org's rolling 24-hour request total is spent.

    https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm
    """
    fake.fail("query", sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."))
    async with connected() as (connector, _):
        with pytest.raises(RateLimited) as limited:
            await connector.fetch([query("Lead.count")], WINDOW)
    assert limited.value.retry_after == 3600.0
    assert "daily API request limit" in limited.value.message


@pytest.mark.anyio
async def test_an_invisible_object_fails_its_queries_with_an_actionable_message(
    fake: FakeSalesforce,
) -> None:
    """400 INVALID_TYPE for an object the user can't see; the other statements go on.

    https://developer.salesforce.com/docs/platform/api-rest/guide/errorcodes.md
    """
    fake.hidden.add("Secret__c")
    async with connected() as (connector, _):
        result = await connector.fetch(
            [query("Secret__c.count", "secret"), query("Lead.count", "lead")], WINDOW
        )
    message = result.query_errors["secret"]
    assert "`Secret__c`" in message
    assert "Read access" in message
    assert "permission set" in message
    assert set(engine_client.by_query(result.values)) == {"lead"}


@pytest.mark.anyio
async def test_api_disabled_for_the_user_names_the_permission(fake: FakeSalesforce) -> None:
    """403 API_DISABLED_FOR_ORG: the profile lacks `API Enabled` (check and fetch alike).

    https://developer.salesforce.com/docs/platform/api-rest/guide/errorcodes.md
    """
    disabled = sf_error(403, "API_DISABLED_FOR_ORG", "API is not enabled for this Organization")
    fake.fail("userinfo", disabled)
    fake.fail("query", disabled)
    async with connected() as (connector, _):
        with pytest.raises(ConnectorAuthError, match="API Enabled"):
            await connector.check()
        with pytest.raises(ConnectorAuthError, match="API Enabled"):
            await connector.fetch([query("Lead.count")], WINDOW)


@pytest.mark.anyio
async def test_a_locator_off_the_instance_is_not_followed(fake: FakeSalesforce) -> None:
    """A grouped query's answer can't be paged, so a `nextRecordsUrl` on one is followed
    nowhere (least of all off the instance): the fetch fails and writes nothing.

    https://developer.salesforce.com/docs/platform/api-rest/guide/resources-query-more-results.md
    https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_group_by_considerations.htm
    """
    fake.fail(
        "query",
        httpx.Response(
            200,
            json={
                "totalSize": 9,
                "done": False,
                "records": [],
                "nextRecordsUrl": "https://attacker.test/steal",
            },
        ),
    )
    async with connected() as (connector, _):
        with pytest.raises(RetriableError, match="nextRecordsUrl"):
            await connector.fetch([query("Lead.count")], WINDOW)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("date_field", "date_type"), [("CloseDate", "date"), ("CreatedDate", "datetime")]
)
async def test_a_long_window_is_split_so_no_grouped_answer_passes_2000_rows(
    fake: FakeSalesforce, date_field: str, date_type: str
) -> None:
    """A GROUP BY answer can't be paged and holds at most 2,000 rows; past them Salesforce
    refuses the query (400 EXCEEDED_ID_LIMIT "Aggregate query does not support queryMore()",
    which the fake answers too). Seven years of one row a day take two queries, each within the
    limit (a datetime field's UTC bounds add padding days), and every day arrives.

    https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_group_by_considerations.htm
    https://github.com/restforce/restforce/issues/726 (the refusal as the REST API sends it)
    """
    window = Window(date(2020, 1, 1), date(2026, 12, 31))
    params = {"date_field": date_field, "date_type": date_type}
    async with connected() as (connector, _):
        result = await connector.fetch([query("Opportunity.count", **params)], window)

    assert not result.query_errors
    assert engine_client.by_query(result.values) == {"1": {d: float(d.day) for d in window.days()}}
    assert len(fake.soql()) == 2
    assert result.complete == {"1"}


@pytest.mark.anyio
async def test_a_grouped_answer_past_the_limit_fails_its_mappings_as_a_config_error(
    fake: FakeSalesforce,
) -> None:
    """400 ``[{"message": "Aggregate query does not support queryMore(), use LIMIT to restrict
    the results to a single batch", "errorCode": "EXCEEDED_ID_LIMIT"}]`` (as Salesforce answered
    it in https://github.com/restforce/restforce/issues/726): retrying can't help, so the query's
    mappings fail at once, saying what the limit is, and nothing of them is written or cleared.

    https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_group_by_considerations.htm
    """
    fake.fail("query", sf_error(400, "EXCEEDED_ID_LIMIT", AGGREGATE_QUERY_MORE))
    async with connected() as (connector, _):
        result = await connector.fetch([query("Lead.count")], WINDOW)

    assert result.values == []
    assert result.complete == set()
    assert "at most 2,000 groups" in result.query_errors["1"]
    assert "shorter window" in result.query_errors["1"]
    assert len(fake.calls("query")) == 1  # refused, not retried


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("limit_info", "usage"),
    [
        ("per-app-api-usage=17/250(appName=krsync-app); api-usage={used}/{limit}", (19, 5000)),
        ("api-usage={used}/{limit}; per-app-api-usage=17/250(appName=krsync-app)", (19, 5000)),
        ("per-app-api-usage=17/250(appName=krsync-app)", None),
    ],
)
async def test_usage_is_the_orgs_not_a_connected_apps(
    fake: FakeSalesforce, limit_info: str, usage: tuple[int, int] | None
) -> None:
    """``Sforce-Limit-Info: api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-
    app)``: ``api-usage`` is the org's daily usage, ``per-app-api-usage`` one connected app's
    quota, which ends in the same ``api-usage=N/M`` and must not be read as the org's.

    https://developer.salesforce.com/docs/atlas.en-us.200.0.api_rest.meta/api_rest/headers_api_usage.htm
    """
    fake.limit_info = limit_info
    async with connected() as (connector, _):
        result = await connector.fetch([query("Lead.count")], WINDOW)

    expected = {} if usage is None else {"api_usage": {"used": usage[0], "limit": usage[1]}}
    assert result.details == expected


# --- values --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_empty_window_gives_nothing_and_records_usage(fake: FakeSalesforce) -> None:
    """`{"totalSize": 0, "done": true, "records": []}`; `Sforce-Limit-Info` still recorded.

    https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm
    """
    fake.row = None
    async with connected() as (connector, _):
        result = await connector.fetch([query("Lead.count")], WINDOW)
    assert result.values == []
    assert not result.query_errors
    assert not result.warnings
    assert result.details == {"api_usage": {"used": 19, "limit": 5000}}


@pytest.mark.anyio
async def test_string_numbers_and_blank_sums_leave_as_floats(fake: FakeSalesforce) -> None:
    """Aggregate cells as sent: a SUM over blank fields is null; numbers may come as strings.

    https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_agg_functions.htm
    """

    def row(aliases: list[str], day: date) -> dict[str, Any] | None:
        if day.day == 1:
            return {"n": "4", "s0": "1234.50"}
        if day.day == 2:
            return {"n": 2, "s0": None}
        return None

    fake.row = row
    async with connected() as (connector, _):
        result = await connector.fetch(
            [query("Opportunity.count", "n"), query("Opportunity.sum", "s", field="Amount")],
            WINDOW,
        )
    assert engine_client.by_query(result.values) == {
        "n": {date(2026, 7, 1): 4.0, date(2026, 7, 2): 2.0},
        "s": {date(2026, 7, 1): 1234.5, date(2026, 7, 2): 0.0},
    }


def test_a_sum_of_amount_in_a_multicurrency_org_is_stored_in_the_corporate_currency(
    fake: FakeSalesforce, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a multi-currency org, SUM() of a currency field in a GROUP BY query answers in the
    org's corporate currency, and convertCurrency() can't wrap an aggregate
    (https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_querying_currency_fields.htm;
    aggregate rows as https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_agg_functions.htm).
    So the query sends SUM(Amount) bare, groups by day alone (not by CurrencyIsoCode), and the
    figure stored is the org's: 1,000 USD + 900 EUR at 0.9 EUR a dollar is 2,000 (USD)."""
    freeze_today(monkeypatch, date(2026, 7, 11))
    usd_per = {"USD": 1.0, "EUR": 1 / 0.9, "JPY": 1 / 150}  # the org's rates; USD corporate
    deals = {
        date(2026, 7, 1): [(1000.0, "USD"), (900.0, "EUR")],
        date(2026, 7, 2): [(300_000.0, "JPY")],
    }

    def row(aliases: list[str], day: date) -> dict[str, Any] | None:
        if day not in deals:
            return None
        # What Salesforce does: each record's Amount in its own currency, summed in USD.
        total = sum(amount * usd_per[code] for amount, code in deals[day])
        return {a: round(total, 2) for a in aliases}

    fake.row = row
    src = make_source(
        name="salesforce",
        connector="salesforce",
        config=CONFIG,
        credentials_encrypted=encrypt_credentials(CREDENTIALS),
    )
    kr = make_kr()
    make_mapping(
        kr,
        src,
        "Opportunity.sum",
        params={"field": "Amount", "date_field": "CloseDate", "date_type": "date"},
    )
    sync_factories.sync_source(src, trigger="cli")

    [run] = runs(src)
    assert run.status == "succeeded", run.error
    [soql] = fake.soql()
    assert soql.startswith("SELECT CloseDate d, SUM(Amount) s0 FROM Opportunity WHERE ")
    assert soql.endswith(" GROUP BY CloseDate")
    assert "convertCurrency" not in soql
    assert "CurrencyIsoCode" not in soql
    assert [(o[0], o[3]) for o in observations(kr)] == [
        (date(2026, 7, 1), 2000.0),
        (date(2026, 7, 2), 2000.0),
    ]
    assert not run.warnings


@pytest.mark.anyio
async def test_usage_near_the_limit_is_a_warning(fake: FakeSalesforce) -> None:
    """`Sforce-Limit-Info: api-usage=used/limit`, the org's daily API usage.

    https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm
    """
    fake.used, fake.limit = 4700, 5000
    async with connected() as (connector, _):
        result = await connector.fetch([query("Lead.count")], WINDOW)
    assert result.details["api_usage"] == {"used": 4701, "limit": 5000}
    assert result.warnings == [
        "the org has used 4701 of its 5000 daily API requests: other integrations may soon be "
        "refused"
    ]


# --- check and online validation -----------------------------------------------------------------


@pytest.mark.anyio
async def test_check_names_the_user_and_adopts_their_time_zone(fake: FakeSalesforce) -> None:
    """The UserInfo endpoint's `zoneinfo` is the zone DAY_ONLY(convertTimezone()) counts in.

    https://help.salesforce.com/HTViewHelpDoc?id=remoteaccess_using_userinfo_endpoint.htm
    """
    async with connected() as (connector, _):
        result = await connector.check()
    assert result.timezone == "America/Los_Angeles"
    assert "integration@krsync.example" in result.message
    assert result.details["organization_id"] == "00D5e000000K1xEAE"
    assert [r.url.path for r in fake.calls("root")] == [f"{DATA}/"]


@pytest.mark.anyio
async def test_an_unknown_api_version_is_a_config_error(fake: FakeSalesforce) -> None:
    """A version the org doesn't serve answers 404 NOT_FOUND.

    https://developer.salesforce.com/docs/platform/api-rest/guide/errorcodes.md
    """
    fake.fail("root", sf_error(404, "NOT_FOUND", "The requested resource does not exist"))
    async with connected() as (connector, _):
        with pytest.raises(ConnectorConfigError, match="api_version") as refused:
            await connector.check()
    assert not isinstance(refused.value, ConnectorAuthError)


@pytest.mark.anyio
async def test_the_configured_api_version_is_the_one_in_every_path(fake: FakeSalesforce) -> None:
    """REST paths name the version, ``/services/data/vNN.0/...``
    (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_versions.htm):
    the source's ``api_version``. Versions 31.0-40.0 retire with Summer '28
    (https://help.salesforce.com/s/articleView?id=005321531), 21.0-30.0 went with Summer '25
    (https://help.salesforce.com/s/articleView?id=000354473); later ones have no date yet."""
    fake.version = "v62.0"
    async with connected(api_version="v62.0") as (connector, _):
        await connector.check()
        result = await connector.fetch([query("Lead.count")], WINDOW)
    assert result.values
    assert not result.query_errors
    paths = [r.url.path for e, r in fake.requests if e in ("root", "query")]
    assert paths
    assert all(p.startswith("/services/data/v62.0/") for p in paths)

    model = SalesforceConnector.config_model
    sunset = SalesforceConnector.api_version_sunset
    assert sunset(model.model_validate(CONFIG | {"api_version": "v62.0"})) is None
    assert sunset(model.model_validate(CONFIG | {"api_version": "v35.0"})) == date(2028, 5, 1)
    assert sunset(model.model_validate(CONFIG | {"api_version": "v30.0"})) == date(2025, 5, 1)
    for bad in ("60.0", "v60", "v60.1", "v06.0"):
        with pytest.raises(ValueError, match="api_version"):
            model.model_validate(CONFIG | {"api_version": bad})


@pytest.mark.anyio
async def test_mappings_are_checked_against_the_objects_describe(fake: FakeSalesforce) -> None:
    """Field names and types from `/sobjects/{SObject}/describe` (type, filterable, relationships).

    https://developer.salesforce.com/docs/platform/object-reference/guide/access-for-fields.html
    """
    fake.describe_object(
        "Opportunity",
        {
            "Id": "id",
            "CreatedDate": "datetime",
            "CloseDate": "date",
            "Amount": "currency",
            "StageName": "picklist",
            "AccountId": "reference",
            "Description": "textarea",
        },
        Description={"filterable": False},
    )
    fake.hidden.add("Secret__c")
    ok = query(
        "Opportunity.sum",
        field="Amount",
        date_field="CloseDate",
        filters=[
            {"field": "StageName", "op": "eq", "value": "Closed Won"},
            {"field": "Account.Industry", "op": "eq", "value": "Retail"},
        ],
    )
    cases = [
        (query("Opportunity.count", date_field="StageName"), "params.date_field"),
        (
            query("Opportunity.count", date_field="CloseDate", date_type="datetime"),
            "params.date_type",
        ),
        (query("Opportunity.sum", field="StageName"), "params.field"),
        (query("Opportunity.sum", field="Amount__c"), "params.field"),
        (
            query("Opportunity.count", filters=[{"field": "Stage", "op": "eq", "value": "x"}]),
            "filters[0].field",
        ),
        (
            query(
                "Opportunity.count", filters=[{"field": "Description", "op": "eq", "value": "x"}]
            ),
            "filters[0].field",
        ),
        (
            query("Opportunity.count", filters=[{"field": "Owner.Name", "op": "eq", "value": "x"}]),
            "filters[0].field",
        ),
        (query("Secret__c.count"), "metric"),
    ]
    async with connected() as (connector, _):
        await connector.validate_mapping_online(ok)
        for bad, part in cases:
            with pytest.raises(MappingError) as refused:
                await connector.validate_mapping_online(bad)
            assert refused.value.part == part, (bad, refused.value)
    assert "Read access" in str(refused.value)
    # one describe per object for the whole connector's life
    assert [r.url.path.split("/")[-2] for r in fake.calls("describe")] == [
        "Opportunity",
        "Secret__c",
    ]


def test_a_mapping_on_a_field_the_object_lacks_is_a_422_through_the_api(
    fake: FakeSalesforce, client: TestClient
) -> None:
    """POST /api/v1/mappings asks the object's describe before it accepts the mapping.

    https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm
    """
    fake.describe_object("Lead", {"Id": "id", "CreatedDate": "datetime", "LeadSource": "picklist"})
    kr = key_result(client, objective(client, cycle(client)["id"])["id"])["id"]
    src = data_source(
        client, name="salesforce", connector="salesforce", config=CONFIG, credentials=CREDENTIALS
    )["id"]
    body = {"key_result_id": kr, "data_source_id": src, "metric": "Lead.count"}

    missing = client.post("/api/v1/mappings", json=body | {"params": {"date_field": "Won_At__c"}})
    assert missing.status_code == 422, missing.text
    assert missing.json()["field"] == "params.date_field"
    assert "CreatedDate" in missing.json()["detail"]  # the date fields it does have

    ok = client.post(
        "/api/v1/mappings",
        json=body | {"filters": [{"field": "LeadSource", "op": "eq", "value": "Web"}]},
    )
    assert ok.status_code == 201, ok.text
