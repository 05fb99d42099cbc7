"""The connector contract suite: the tests every built-in connector passes, for yours to pass too.

A connector proves itself against a :class:`Kit`, which plays its platform without a network
(respx routes built from the vendor's documented requests and answers). The tests are the
methods of :class:`ContractSuite`; a test class that inherits it and gives a ``kit`` fixture
runs all of them (the idea of Singer's ``get_tap_test_class(TapX, config)``)::

    # tests/test_contract.py of a plugin package
    import pytest
    from connectors.testing import ContractSuite, Kit

    from .kit import KIT

    class TestContract(ContractSuite):
        @pytest.fixture
        def kit(self) -> Kit:
            return KIT

That ``kit`` fixture is the one way kits are found: krsync's own
``tests/connectors/test_contract.py`` runs this very class with a ``kit`` fixture parametrized
over every installed connector. An entry-point group of kits was the alternative; it would put
test fakes in the installed package and make a kit visible only after a reinstall, where a
fixture is plain pytest and lives beside the author's other tests.

What it proves, with no database: config validated and the catalogue described as JSON Schema;
the class is the one the ``krsync.connectors`` entry point names; ``check()`` works; a refused
credential is a :class:`~connectors.base.ConnectorAuthError` that says what to fix; a 429 is
waited out, as long as its ``Retry-After`` says; pagination ends with every page read; values
are floats dated in the window; an empty window gives nothing; the same window fetched twice
gives the same values; and no credential appears in an error (wherever the error cuts a
platform's answer), in a log line, or on a request to another origin. What needs a database
(a sync run's record, idempotent upserts through the engine, an empty window that keeps stored
values) is tested in krsync's own suite, through the same kits.

**Why it imports** ``app``: a connector never builds its HTTP client, the engine hands it one
that retries 429s as ``Retry-After`` says, masks secrets and keeps credentials on their origin.
The suite runs each connector on that very client (``app.core.http``, built by the engine's
``open_connector``), because a stand-in would let pass what the real client breaks. krsync is
installed wherever a plugin is tested, so the import is lazy (importing this module needs only
``connectors``) and happens in :func:`connect` and the fixtures. Install the ``testing`` extra
(``pip install 'krsync[testing]'``) for pytest, respx and jsonschema-rs.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args
from zoneinfo import ZoneInfo

import anyio
import httpx
import jsonschema_rs
import pytest
import respx
import stamina
from pydantic import BaseModel, ValidationError

from connectors.base import (
    Category,
    CheckResult,
    Connector,
    ConnectorAuthError,
    ConnectorError,
    Filter,
    MetricQuery,
    Window,
)

if TYPE_CHECKING:
    from app.core.http import KrsyncClient

Scenario = Literal["data", "bad_credentials", "rate_limited", "empty"]
#: Values a fetch must return, by (date, group label or None).
Expected = dict[tuple[date, str | None], float]
ConnectorClass = type[Connector[Any, Any]]

#: A host name under ``.test`` (RFC 6761) resolves here in the suite, so the private-network
#: guard stays in the path of respx-mocked traffic without a DNS lookup.
PUBLIC_IP = "93.184.216.34"
#: The length of a credential piece that counts as leaked: any 8 characters of it.
PIECE = 8


@dataclass(frozen=True)
class Query:
    """One metric query as a mapping would make it: validated by the connector's catalogue."""

    metric: str
    params: dict[str, Any] = field(default_factory=dict)
    filters: list[dict[str, Any]] = field(default_factory=list)
    aggregation: str = "sum"


@dataclass(frozen=True)
class Mocked:
    """What a kit's ``mock`` installed: the values a fetch of a window must give."""

    expected: Callable[[Window], Expected]
    #: Whether the platform answers the contract's 10-day window in two pages or more.
    paginates: bool


@dataclass(frozen=True)
class Kit:
    """What the suite needs to run a connector without its platform.

    ``mock`` installs respx routes playing the platform in one of four scenarios, built from
    the vendor's documented request and response shapes (cite the page in the kit):

    - ``data``: figures for any window asked, over 2+ pages for a 10-day window where the
      platform pages (``Mocked.paginates``);
    - ``bad_credentials``: the platform refuses the credentials (401 or its own equivalent);
    - ``rate_limited``: the first data call answers 429 with ``Retry-After: 1``, then as ``data``;
    - ``empty``: the platform answers, with no figures for any day.

    Put the platform on a ``.test`` host (``https://api.example.test``): the suite's client
    refuses private addresses after DNS, as the engine's does, and ``.test`` names resolve to
    a public one in the suite.
    """

    connector: ConnectorClass
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


# --- helpers a kit's own tests may use too ------------------------------------------------------


def query_of(cls: ConnectorClass, q: Query, query_id: str = "1") -> MetricQuery:
    """``q`` validated by the connector's catalogue, as the engine validates a mapping."""
    filters = [Filter.model_validate(f) for f in q.filters]
    params = cls.validate_query(q.metric, q.params, filters, q.aggregation)  # type: ignore[arg-type]
    return MetricQuery(query_id, q.metric, params, tuple(filters))


@asynccontextmanager
async def connect(
    cls: ConnectorClass,
    config: Mapping[str, Any] | BaseModel,
    credentials: Mapping[str, Any],
    *,
    timezone: str = "UTC",
    today: date | None = None,
    on_token: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    source_name: str | None = None,
    **client_overrides: Any,
) -> AsyncIterator[tuple[Connector[Any, Any], KrsyncClient]]:
    """``(connector, client)``: the connector on the HTTP client the sync engine would build.

    ``config`` and ``credentials`` are validated with the connector's own models; the client
    gets every ``HttpOptions`` field, OAuth2 included (``on_token`` then receives refreshed
    tokens, as the engine's token saver does). ``client_overrides`` replace the matching
    ``build_client`` arguments (no throttle, a mock transport).
    """
    from app.core.http import KrsyncClient  # lazily: see the module's docstring
    from app.sync.connect import connector_from, open_connector

    built = connector_from(
        cls, config, credentials, name=source_name or f"{cls.key}-test", timezone=timezone
    )
    async with open_connector(built, today=today, on_token=on_token, **client_overrides) as c:
        assert isinstance(c.http, KrsyncClient)
        yield c, c.http


def secrets_of(kit: Kit) -> list[str]:
    """The credential values the engine would mask for this kit's source."""
    from app.core.redact import secrets_in

    return secrets_in(kit.credentials)


def leaked(text: str, *spellings: str) -> list[str]:
    """The 8-character pieces of ``spellings`` found in ``text``, in order (none: no leak).

    Masking a whole value is not enough of a test: a message that quotes all but the last few
    characters of a token leaks the token.
    """
    found: list[str] = []
    for spelling in spellings:
        for start in range(max(1, len(spelling) - PIECE + 1)):
            piece = spelling[start : start + PIECE]
            if piece in text and piece not in found:
                found.append(piece)
    return found


def split_masks(text: str) -> list[str]:
    """Runs of ``*`` that are not a whole ``***`` mask: a mask the cut went through."""
    return [run for run in re.findall(r"\*+", text) if len(run) % 3]


def echoed_secret(kit: Kit) -> str | None:
    """The credential a platform echoes in the test: the longest that reads as a token."""
    found = [s for s in secrets_of(kit) if 12 <= len(s) <= 80 and "\n" not in s]
    return max(found, key=len, default=None)


def _no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"this connector declared no HTTP, yet called {request.url}")


def _values(result: Any) -> Expected:
    return {(v.date, v.group): v.value for v in result.values}


async def _outcome(call: Awaitable[Any]) -> list[str]:
    """Every text a check or fetch hands the engine, raised or returned."""
    try:
        result = await call
    except ConnectorError as exc:
        return [exc.message, str(exc)]
    except Exception as exc:  # the engine's HTTP errors: not connector errors, still shown
        return [str(getattr(exc, "message", exc)), str(exc)]
    texts = [getattr(result, "message", "")]
    texts += list(getattr(result, "warnings", []))
    texts += list(getattr(result, "query_errors", {}).values())
    texts += list(getattr(result, "notices", []))
    return [t for t in texts if t]


def _is_token_request(request: httpx.Request) -> bool:
    return b"grant_type=" in request.content


#: Error bodies in the shapes platforms use, each echoing what it is given.
ERROR_SHAPES: dict[str, Callable[[str], httpx.Response]] = {
    "text": lambda said: httpx.Response(400, text=said),
    "message": lambda said: httpx.Response(400, json={"message": said, "category": "VALIDATION"}),
    "salesforce": lambda said: httpx.Response(
        400, json=[{"message": said, "errorCode": "MALFORMED_QUERY"}]
    ),
    "envelope": lambda said: httpx.Response(
        400, json={"error": {"code": 100, "message": said, "status": "INVALID_ARGUMENT"}}
    ),
    "problem": lambda said: httpx.Response(
        400, json={"title": "Invalid Request", "detail": said, "type": "about:blank"}
    ),
    "pipedrive": lambda said: httpx.Response(
        400, json={"success": False, "error": said, "error_info": "see the API reference"}
    ),
    "oauth": lambda said: httpx.Response(
        400, json={"error": "invalid_request", "error_description": said}
    ),
}
#: Copies of the credential in an error body: past the longest quote a connector makes (300).
COPIES = 40
ELSEWHERE = "elsewhere.krsync.test"


class _Logged(logging.Handler):
    """Every record, as krsync's redacting filter lets it out (message, exception, extras)."""

    def __init__(self) -> None:
        from app.core.redact import RedactingFilter

        super().__init__(logging.DEBUG)
        self.addFilter(RedactingFilter())
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))
        self.texts.append(json.dumps(record.__dict__, default=repr))


class ContractSuite:
    """The contract tests; inherit it in a ``Test*`` class that gives a ``kit`` fixture."""

    WINDOW: ClassVar[Window] = Window(date(2026, 7, 1), date(2026, 7, 10))

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture(autouse=True)
    def contract_env(self, kit: Kit, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        """The engine's settings from the environment, ``.test`` resolving, no backoff waits."""
        from app.core import http
        from app.core.settings import get_settings

        for name, value in kit.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("KRSYNC_ALLOW_PRIVATE_NETWORKS", "false")
        get_settings.cache_clear()
        real = http.resolve_host

        async def resolve(host: str, port: int) -> list[str]:
            return [PUBLIC_IP] if host.endswith(".test") else await real(host, port)

        monkeypatch.setattr(http, "resolve_host", resolve)
        with stamina.set_testing(True, attempts=100, cap=True):
            yield
        get_settings.cache_clear()

    # --- helpers ---------------------------------------------------------------------------

    @staticmethod
    def http_only(kit: Kit) -> None:
        if not kit.http:
            pytest.skip("the connector makes no HTTP call")

    @staticmethod
    def mock(router: respx.MockRouter, kit: Kit, scenario: Scenario) -> Mocked | None:
        return kit.mock(router, scenario) if kit.mock is not None else None

    @asynccontextmanager
    async def connected(
        self, kit: Kit, **overrides: Any
    ) -> AsyncIterator[tuple[Connector[Any, Any], KrsyncClient]]:
        """The kit's connector on a client built the way the engine builds it."""
        if not kit.http:
            overrides.setdefault("transport", httpx.MockTransport(_no_network))
        async with connect(
            kit.connector,
            kit.config,
            kit.credentials,
            source_name=f"contract-{kit.connector.key}",
            **overrides,
        ) as pair:
            yield pair

    # --- declarations ----------------------------------------------------------------------

    def test_the_kit_is_complete_and_its_connector_registered(self, kit: Kit) -> None:
        from connectors.registry import get_connector

        assert (kit.mock is not None) == kit.http, "an HTTP connector's kit mocks its platform"
        assert kit.http or kit.empty_query is not None, "a kit without HTTP names an empty query"
        assert get_connector(kit.connector.key) is kit.connector, (
            f"the `krsync.connectors` entry point `{kit.connector.key}` names another class"
        )

    def test_config_rejects_an_unknown_key_and_a_wrong_type(self, kit: Kit) -> None:
        cls = kit.connector
        cls.config_model.model_validate(kit.config)
        cls.credentials_model.model_validate(kit.credentials)

        with pytest.raises(ValidationError) as unknown:
            cls.config_model.model_validate({**kit.config, "no_such_option": 1})
        assert [e["loc"] for e in unknown.value.errors()] == [("no_such_option",)]

        with pytest.raises(ValidationError) as wrong:
            cls.config_model.model_validate(kit.wrong_type)
        assert {e["loc"][0] for e in wrong.value.errors()} <= set(kit.wrong_type)

    def test_describe_is_json_and_its_schemas_are_json_schema(self, kit: Kit) -> None:
        cls = kit.connector
        described = cls.describe()

        assert json.loads(json.dumps(described)) == described
        assert described["key"] == cls.key
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
        query_of(cls, kit.query)  # the kit's query is one the catalogue accepts

    def test_a_base_url_must_be_an_http_root(self, kit: Kit) -> None:
        """SPEC section 4: every HTTP connector takes an optional `base_url` replacing the root."""
        cls = kit.connector
        if "base_url" not in cls.config_model.model_fields:
            pytest.skip("the connector has no base_url")
        with pytest.raises(ValidationError, match="base_url"):
            cls.config_model.model_validate({**kit.config, "base_url": "ftp://files.example"})
        root = cls.config_model.model_validate({**kit.config, "base_url": "https://proxy.example/"})
        assert getattr(root, "base_url", None) == "https://proxy.example"

    # --- one connector, one client ---------------------------------------------------------

    @pytest.mark.anyio
    async def test_check_succeeds_with_good_credentials(self, kit: Kit) -> None:
        with respx.mock(assert_all_called=False) as router:
            self.mock(router, kit, "data")
            async with self.connected(kit) as (connector, _):
                result = await connector.check()

        assert isinstance(result, CheckResult)
        assert result.message
        if result.timezone is not None:
            ZoneInfo(result.timezone)

    @pytest.mark.anyio
    async def test_bad_credentials_are_an_auth_error_that_says_what_to_fix(self, kit: Kit) -> None:
        self.http_only(kit)
        with respx.mock(assert_all_called=False) as router:
            self.mock(router, kit, "bad_credentials")
            async with self.connected(kit) as (connector, _):
                with pytest.raises(ConnectorAuthError) as checked:
                    await connector.check()
                with pytest.raises(ConnectorAuthError) as fetched:
                    await connector.fetch([query_of(kit.connector, kit.query)], self.WINDOW)

        for error in (checked.value, fetched.value):
            assert kit.auth_hint.lower() in error.message.lower()
            for secret in secrets_of(kit):
                assert secret not in error.message

    @pytest.mark.anyio
    async def test_a_429_is_waited_out_as_retry_after_says(self, kit: Kit) -> None:
        from app.core.http import retry_after_seconds

        self.http_only(kit)
        read: list[tuple[httpx.Response, float | None]] = []

        def recording(response: httpx.Response) -> float | None:
            wait = (kit.connector.http_options(cfg, creds).retry_after or retry_after_seconds)(
                response
            )
            read.append((response, wait))
            return wait

        cfg = kit.connector.config_model.model_validate(kit.config)
        creds = kit.connector.credentials_model.model_validate(kit.credentials)
        with respx.mock(assert_all_called=False) as router:
            mocked = self.mock(router, kit, "rate_limited")
            async with self.connected(kit, retry_after=recording) as (connector, http):
                result = await connector.fetch([query_of(kit.connector, kit.query)], self.WINDOW)

        assert mocked is not None
        assert _values(result) == mocked.expected(self.WINDOW)
        assert http.stats.rate_limited >= 1
        assert http.stats.retries >= 1
        for response, wait in read:
            if response.status_code == 429 and "Retry-After" in response.headers:
                assert wait == float(response.headers["Retry-After"]), "Retry-After not honoured"

    @pytest.mark.anyio
    async def test_pagination_ends_with_every_page_fetched(self, kit: Kit) -> None:
        self.http_only(kit)
        with respx.mock(assert_all_called=False) as router:
            mocked = self.mock(router, kit, "data")
            async with self.connected(kit) as (connector, http):
                with anyio.fail_after(10):
                    result = await connector.fetch(
                        [query_of(kit.connector, kit.query)], self.WINDOW
                    )

        assert mocked is not None
        assert _values(result) == mocked.expected(self.WINDOW)
        assert http.stats.requests <= 50, "a 10-day window should not take 50 calls"
        if mocked.paginates:
            assert http.stats.requests >= 2, "the kit pages this window: more than one call"

    @pytest.mark.anyio
    async def test_fetch_gives_floats_dated_inside_the_window(self, kit: Kit) -> None:
        if not kit.fetches:
            pytest.skip("figures arrive by push: fetch has nothing to return")
        with respx.mock(assert_all_called=False) as router:
            self.mock(router, kit, "data")
            async with self.connected(kit) as (connector, _):
                result = await connector.fetch(
                    [query_of(kit.connector, kit.query, "q7")], self.WINDOW
                )

        assert result.values
        assert not result.query_errors
        for value in result.values:
            assert value.query_id == "q7"
            assert type(value.value) is float
            assert type(value.date) is date
            assert value.date in self.WINDOW

    @pytest.mark.anyio
    async def test_the_same_window_twice_gives_the_same_values(self, kit: Kit) -> None:
        """What makes a re-sync idempotent on the connector's side: no state between runs."""
        if not kit.fetches:
            pytest.skip("figures arrive by push: fetch has nothing to return")
        got: list[list[tuple[Any, ...]]] = []
        with respx.mock(assert_all_called=False) as router:
            self.mock(router, kit, "data")
            for _ in range(2):
                async with self.connected(kit) as (connector, _):
                    result = await connector.fetch(
                        [query_of(kit.connector, kit.query)], self.WINDOW
                    )
                got.append(
                    sorted((v.query_id, v.date, v.group or "", v.value) for v in result.values)
                )

        assert got[0]
        assert got[1] == got[0]

    @pytest.mark.anyio
    async def test_an_empty_window_fetches_nothing(self, kit: Kit) -> None:
        query = kit.query if kit.http else kit.empty_query
        assert query is not None
        with respx.mock(assert_all_called=False) as router:
            self.mock(router, kit, "empty")
            async with self.connected(kit) as (connector, _):
                result = await connector.fetch([query_of(kit.connector, query)], self.WINDOW)

        assert result.values == []
        assert not result.query_errors

    # --- credentials -----------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_no_log_line_holds_a_credential(self, kit: Kit) -> None:
        """Every scenario, logged at DEBUG through krsync's redacting filter: no credential gets
        out in any spelling (raw, percent- or JSON-escaped), whether in a message, an exception
        or the ``extra=`` fields a JSON formatter would print."""
        logged = _Logged()
        root = logging.getLogger()
        level = root.level
        root.addHandler(logged)
        root.setLevel(logging.DEBUG)
        try:
            # a 429 then the data, and a refusal: every path a request's log lines take
            scenarios: tuple[Scenario, ...] = (
                ("rate_limited", "bad_credentials") if kit.http else ("data",)
            )
            for scenario in scenarios:
                with respx.mock(assert_all_called=False) as router:
                    self.mock(router, kit, scenario)
                    async with self.connected(kit) as (connector, _):
                        await _outcome(connector.check())
                        await _outcome(
                            connector.fetch([query_of(kit.connector, kit.query)], self.WINDOW)
                        )
        finally:
            root.removeHandler(logged)
            root.setLevel(level)

        from app.core.redact import Redactor

        held = Redactor(secrets_of(kit))
        for text in logged.texts:
            assert not held.finds(text), text

    @pytest.mark.anyio
    @pytest.mark.parametrize("token", [False, True], ids=["api", "token"])
    async def test_errors_quote_no_piece_of_a_secret_wherever_they_cut(
        self, kit: Kit, token: bool
    ) -> None:
        """Every request answers 400 with a body, in the error shapes platforms use, echoing a
        credential as copies one space apart, started at every offset of one period: whatever
        length a connector cuts its quote to, some copy is split at every character. Cut before
        masking, that copy leaks its characters up to the cut. With ``token``, the OAuth token
        endpoints fail that way (refresh errors); otherwise the kit's platform hands out a
        token and its API calls fail."""
        secret = echoed_secret(kit)
        if not kit.http or secret is None or kit.mock is None:
            pytest.skip("no platform to answer, or no credential to leak")
        if token and not {"refresh_token", "service_account_info"} & set(kit.credentials):
            pytest.skip("the credentials refresh no token")
        body: list[httpx.Response] = []

        def fail(request: httpx.Request) -> httpx.Response | None:
            if _is_token_request(request) and not token:
                return None  # on to the kit's platform, which hands out a token
            return body[0]

        said: list[str] = []
        query = query_of(kit.connector, kit.query)
        # No pacing or retries: the test is about what errors say, and it makes ~1,000 of
        # them. One connector serves them all: none keeps state from a 400 that changes how it
        # words the next.
        with stamina.set_testing(True, attempts=1), respx.mock(assert_all_called=False) as router:
            router.route().mock(side_effect=fail)
            kit.mock(router, "data")
            async with self.connected(kit, rate_per_second=None) as (connector, _):
                for phase in range(len(secret) + 1):
                    echo = "e" * phase + " ".join([secret] * COPIES)
                    for shape in ERROR_SHAPES.values():
                        body[:] = [shape(echo)]
                        said += await _outcome(connector.check())
                        said += await _outcome(connector.fetch([query], self.WINDOW))

        assert said, "the connector never failed"
        for text in said:
            assert leaked(text, secret) == [], text
            assert split_masks(text) == [], text

    @pytest.mark.anyio
    async def test_no_credential_follows_a_redirect_to_another_origin(self, kit: Kit) -> None:
        """httpx drops ``Authorization`` on such a redirect but keeps every other header (an
        ``x-api-token``) and a body resent by a 307: the connector fails, naming the other
        host, and that host sees no request (following without the credentials is a source's
        explicit choice, not a default)."""
        if not kit.http or echoed_secret(kit) is None or kit.mock is None:
            pytest.skip("no platform to answer, or no credential to carry")

        def moved(request: httpx.Request) -> httpx.Response | None:
            if _is_token_request(request) or request.url.host == ELSEWHERE:
                return None  # the kit's platform hands out a token; the other host answers
            return httpx.Response(307, headers={"Location": f"https://{ELSEWHERE}/moved"})

        with stamina.set_testing(True, attempts=1), respx.mock(assert_all_called=False) as router:
            router.route().mock(side_effect=moved)
            elsewhere = router.route(host=ELSEWHERE).mock(return_value=httpx.Response(200, json={}))
            kit.mock(router, "data")
            async with self.connected(kit, rate_per_second=None) as (connector, _):
                query = query_of(kit.connector, kit.query)
                for call in (connector.check(), connector.fetch([query], self.WINDOW)):
                    with pytest.raises(Exception) as refused:  # noqa: PT011  (any wording)
                        await call
                    assert ELSEWHERE in str(refused.value), refused.value

        assert not elsewhere.called
