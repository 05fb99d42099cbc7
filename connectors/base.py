"""The connector contract: catalogue types, query and result shapes, errors and the base class.

Everything the sync engine and the API need to know about a platform is declared here as data
(the metric catalogue), so a mapping can be refused with a precise 422 before any sync runs and
``GET /api/v1/connectors`` can describe every installed connector without calling it.
"""

from __future__ import annotations

import base64
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Annotated, Any, ClassVar, Generic, Literal, Protocol, TypeVar, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

Category = Literal["analytics", "crm", "email", "social", "generic", "demo"]
FilterOp = Literal["eq", "neq", "in", "not_in", "contains", "gt", "gte", "lt", "lte"]
Aggregation = Literal["sum", "last", "avg", "min", "max", "ratio"]
History = Literal["daily", "snapshot"]

FILTER_OPS: tuple[FilterOp, ...] = get_args(FilterOp)
#: What each op asks of a field's value, as most platforms read it; a connector whose platform
#: reads one otherwise says so in ``Connector.filter_meanings``.
FILTER_MEANINGS: dict[FilterOp, str] = {
    "eq": "equals the value",
    "neq": "differs from the value",
    "in": "equals one of the values",
    "not_in": "equals none of the values",
    "contains": "contains the value anywhere in its text (a substring)",
    "gt": "is greater than the value",
    "gte": "is greater than or equal to the value",
    "lt": "is less than the value",
    "lte": "is less than or equal to the value",
}
AGGREGATIONS: tuple[Aggregation, ...] = get_args(Aggregation)
LIST_OPS: frozenset[FilterOp] = frozenset({"in", "not_in"})
SET_OPS: frozenset[FilterOp] = frozenset({"eq", "neq", "in", "not_in"})
#: What a summable count supports; ``ratio`` sums numerator and denominator, so it needs additivity.
ADDITIVE_AGGREGATIONS: frozenset[Aggregation] = frozenset(AGGREGATIONS)
#: What a level (rate, cumulative total, distinct count) supports: summing it over days is wrong.
LEVEL_AGGREGATIONS: frozenset[Aggregation] = frozenset({"last", "avg", "min", "max"})
ANY_FIELD = "*"

Scalar = str | float | int | bool


class Filter(BaseModel):
    """One ``{field, op, value}`` condition of a mapping; several are combined with AND."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str = Field(min_length=1)
    op: FilterOp
    value: Scalar | list[str | float | int]

    @model_validator(mode="after")
    def _value_fits_op(self) -> Filter:
        is_list = isinstance(self.value, list)
        if self.op in LIST_OPS and not is_list:
            raise ValueError(f'`{self.op}` needs a list of values, e.g. ["a", "b"]')
        if self.op in LIST_OPS and not self.value:
            raise ValueError(f"`{self.op}` needs at least one value")
        if self.op not in LIST_OPS and is_list:
            raise ValueError(f"`{self.op}` compares with one value; use `in` to match a list")
        return self

    @property
    def values(self) -> tuple[Scalar, ...]:
        """The value(s) as a tuple, so callers handle scalar and list ops alike."""
        return tuple(self.value) if isinstance(self.value, list) else (self.value,)


@dataclass(frozen=True)
class Window:
    """A span of calendar days, both ends inclusive, in the source's reporting timezone."""

    start: date
    end: date

    def __post_init__(self) -> None:
        # A datetime is a date subclass; letting one in would smuggle a clock into day arithmetic.
        if isinstance(self.start, datetime) or isinstance(self.end, datetime):
            raise TypeError("a Window takes calendar dates, not datetimes")
        if self.start > self.end:
            raise ValueError(f"window start {self.start} is after its end {self.end}")

    @property
    def num_days(self) -> int:
        return (self.end - self.start).days + 1

    def days(self) -> Iterator[date]:
        for offset in range(self.num_days):
            yield self.start + timedelta(days=offset)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end

    def split(self, max_days: int) -> list[Window]:
        """Consecutive sub-windows of at most ``max_days``, for APIs that cap a request's span."""
        if max_days < 1:
            raise ValueError("max_days must be at least 1")
        parts: list[Window] = []
        start = self.start
        while start <= self.end:
            end = min(self.end, start + timedelta(days=max_days - 1))
            parts.append(Window(start, end))
            start = end + timedelta(days=1)
        return parts


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date), else None."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def retry_after(response: httpx.Response) -> float | None:
    """The response's ``Retry-After`` in seconds, for ``RateLimited(retry_after)``."""
    return parse_retry_after(response.headers.get("Retry-After"))


def _root_url(value: str) -> str:
    value = value.strip()
    if not re.match(r"(?i)^https?://[^/\s]+", value):
        raise ValueError("`base_url` must be an http:// or https:// address")
    return value.rstrip("/")


#: A connector's ``base_url`` (SPEC section 4): an http(s) root that replaces the platform's own.
BaseUrl = Annotated[str, AfterValidator(_root_url)]


class NoParams(BaseModel):
    """The params of a metric that takes none: anything given is a mistake worth reporting."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricSpec(BaseModel):
    """One entry of a connector's metric catalogue: what a mapping may ask and how to reduce it."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    name: str
    description: str
    unit: str
    params_model: type[BaseModel] = NoParams
    #: field -> allowed ops; the key ``"*"`` stands for any field name (open-ended platforms).
    filters: dict[str, frozenset[FilterOp]] = Field(default_factory=dict)
    #: Defaults to every aggregation for an additive metric, and to the level ones otherwise.
    aggregations: frozenset[Aggregation] = frozenset()
    history: History = "daily"
    additive: bool = True
    #: A figure that improves as it falls (an average search position, a bounce rate): a key
    #: result on it reads `decrease` or `at_most`, and the catalogue says so, since neither the
    #: name nor the unit tells a client which way is good.
    lower_is_better: bool = False
    #: How many recent days the platform may still restate (SPEC section 4); None takes the
    #: connector's `settle_days`, so a catalogue states the exceptions only. A snapshot has none:
    #: its figure is today's, and tomorrow's is another day's.
    settle_days: int | None = Field(default=None, ge=0, le=90)

    @model_validator(mode="before")
    @classmethod
    def _default_aggregations(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("aggregations"):
            additive = data.get("additive", True)
            data = {
                **data,
                "aggregations": ADDITIVE_AGGREGATIONS if additive else LEVEL_AGGREGATIONS,
            }
        return data

    @model_validator(mode="after")
    def _consistent(self) -> MetricSpec:
        # A catalogue that offers `sum` on a rate would let wrong key results through silently.
        if not self.additive and self.aggregations & {"sum", "ratio"}:
            raise ValueError(f"`{self.name}` is not additive: it can't offer `sum` or `ratio`")
        if self.history == "snapshot" and self.settle_days:
            raise ValueError(f"`{self.name}` is a snapshot: nothing of it is restated later")
        return self

    def allowed_ops(self, field_name: str) -> frozenset[FilterOp] | None:
        """The ops allowed on a field, or None when the field can't be filtered on."""
        ops = self.filters.get(field_name)
        return ops if ops is not None else self.filters.get(ANY_FIELD)

    def params_schema(self) -> dict[str, Any]:
        return self.params_model.model_json_schema()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "unit": self.unit,
            "params": self.params_schema(),
            "filters": {
                f: [op for op in FILTER_OPS if op in ops] for f, ops in self.filters.items()
            },
            "aggregations": [a for a in AGGREGATIONS if a in self.aggregations],
            "history": self.history,
            "additive": self.additive,
            "lower_is_better": self.lower_is_better,
        }


@dataclass(frozen=True)
class MetricQuery:
    """One mapping's request; ``id`` is opaque to the connector and routes results back."""

    id: str
    metric: str
    params: BaseModel
    filters: tuple[Filter, ...] = ()


@dataclass(frozen=True)
class DailyValue:
    """A figure for one day; ``group`` None means the mapping's own group label."""

    query_id: str
    date: date
    value: float
    group: str | None = None


@dataclass
class FetchResult:
    """Values plus what the engine should surface: caveats, and queries that failed on their own."""

    values: list[DailyValue] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    query_errors: dict[str, str] = field(default_factory=dict)
    #: Platform facts worth keeping on the SyncRun (quota left, API limits); under ``platform``.
    details: dict[str, Any] = field(default_factory=dict)
    #: Things an admin must act on (``re-authorize before 2026-12-01``); shown on the source.
    notices: list[str] = field(default_factory=list)
    #: Queries whose values are the platform's whole answer for the window: a day it no longer
    #: gives (the only deal of that day moved out of closed-won) is no longer stored either,
    #: unless the answer has no figure at all for the query (then nothing is cleared).
    #: Leave out queries of platforms that omit days for other reasons (not processed yet).
    complete: set[str] = field(default_factory=set)

    def fail(self, queries: Iterable[MetricQuery], message: str) -> None:
        """Queries that failed on their own, for one reason (a request they shared refused)."""
        self.query_errors |= dict.fromkeys((q.id for q in queries), message)


@dataclass(frozen=True)
class OAuthSpec:
    """What the engine needs to refresh a token; the engine stores refreshed tokens back."""

    token_endpoint: str
    client_id: str
    client_secret: str
    token: dict[str, Any]
    auth_method: str = "client_secret_post"
    scope: str | None = None

    @classmethod
    def of(cls, credentials: Any, token_endpoint: str, **kwargs: Any) -> OAuthSpec:
        """The spec of credentials stored the usual way: ``client_id``, ``client_secret``,
        ``refresh_token``, and ``access_token`` with ``expires_at`` where there is one."""
        c = credentials
        token = stored_token(c.refresh_token, c.access_token, getattr(c, "expires_at", None))
        return cls(token_endpoint, c.client_id or "", c.client_secret or "", token, **kwargs)


def basic_auth(username: str, password: str) -> str:
    """An ``Authorization`` value for HTTP Basic (RFC 7617)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def stored_token(
    refresh_token: str | None, access_token: str | None, expires_at: float | None = None
) -> dict[str, Any]:
    """The token an ``OAuthSpec`` starts from: the stored refresh token, and the stored access
    token with its expiry when there is one, so a sync doesn't refresh a token still valid."""
    token: dict[str, Any] = {"refresh_token": refresh_token}
    if access_token:
        token |= {"access_token": access_token, "token_type": "Bearer"}
        if expires_at is not None:
            token["expires_at"] = expires_at
    return token


OtherOrigins = Literal["refuse", "strip"]


def origin_of(url: httpx.URL | str) -> str:
    """``scheme://host[:port]`` (the port only when not the scheme's default): the unit a
    credential belongs to, as browsers and httpx's redirect rules see it."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"


@dataclass(frozen=True)
class Hold:
    """What a platform's usage headers ask of a source's next requests: none leaves for
    ``seconds``, counted from the answer that said so. ``reason`` says why in the platform's
    own terms (``x-rate-limit-remaining: 0``); it starts the ``RateLimited`` message of a hold
    too long for the client to wait out."""

    seconds: float
    reason: str


def limit_headers(response: httpx.Response, prefix: str) -> dict[str, int]:
    """A platform's rate-limit headers (``{prefix}limit``, ``-remaining``, ``-reset``) that are
    there, kept on the run so an admin sees how close the source runs to its quota."""
    names = ("limit", "remaining", "reset")
    found = {name: as_number(response.headers.get(f"{prefix}{name}")) for name in names}
    return {name: int(value) for name, value in found.items() if value is not None}


#: Reads a platform's usage headers off one answer: the :class:`Hold` they ask for, or None.
#: It sees every answer of the source (each attempt and redirect hop, errors included) and
#: must be cheap and pure: the engine's client applies it, not the connector.
Pacer = Callable[[httpx.Response], Hold | None]


@dataclass(frozen=True)
class HttpOptions:
    """How the engine should build this source's HTTP client."""

    base_url: str = ""
    rate_per_second: float | None = None
    max_concurrency: int = 10
    headers: dict[str, str] = field(default_factory=dict)
    oauth: OAuthSpec | None = None
    #: Seconds a 429/5xx asks to wait, for platforms that say it other than by ``Retry-After``.
    retry_after: Callable[[httpx.Response], float | None] | None = None
    #: Reads the platform's usage headers (:data:`Pacer`); while a :class:`Hold` lasts, every
    #: request of the source waits, those already queued in the client included.
    pace: Pacer | None = None
    #: The longest hold a request waits out; past it, requests are refused without being sent,
    #: as ``RateLimited(retry_after=<what is left>)``, so the engine decides with its time budget.
    max_hold: float = 60.0
    #: The origins (:func:`origin_of`) the source's credentials may be sent to. Empty: the
    #: origin each request is made to, so only a redirect elsewhere is in question; a connector
    #: that follows URLs a platform hands out (next links) names the platform's own.
    credential_origins: tuple[str, ...] = ()
    #: A request elsewhere that would carry a credential: ``refuse`` it (ForeignOriginError), or
    #: ``strip`` the headers that carry one and send it without (a user's explicit choice).
    other_origins: OtherOrigins = "refuse"


@dataclass(frozen=True)
class CheckResult:
    message: str
    timezone: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    #: As ``FetchResult.notices``: replaces what the source shows.
    notices: list[str] = field(default_factory=list)


class ConnectorError(Exception):
    """Base of every error a connector raises on purpose; ``message`` is safe to show a user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConnectorConfigError(ConnectorError):
    """The source is misconfigured: retrying won't help, someone has to fix it."""


class ConnectorAuthError(ConnectorConfigError):
    """Bad or expired credentials or a missing permission; the message says which to fix."""


class ForeignOriginError(ConnectorConfigError):
    """A request would have carried the source's credentials to an origin they don't belong to
    (a redirect, a platform's next link); the engine's client refused to send it.

    ``origin`` is the other origin, never with a path, query or credentials.
    """

    def __init__(self, message: str, origin: str) -> None:
        super().__init__(message)
        self.origin = origin

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.origin))


class TokenRefreshError(ConnectorAuthError):
    """The engine's client could not refresh an OAuth2 token (raised by it, caught by connectors).

    Usually a revoked refresh token: someone has to reconnect the source. ``transient`` is true
    when the token endpoint itself was down, so the next run may succeed as it is.
    """

    @property
    def transient(self) -> bool:
        return False


class RetriableError(ConnectorError):
    """A transient failure (platform down, timeout): the engine retries, then fails the run."""


class RateLimited(RetriableError):
    """The platform asked us to slow down; ``retry_after`` seconds when it said how long."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.retry_after))


class MappingError(ConnectorConfigError):
    """A mapping the catalogue doesn't allow; ``part`` names the offending bit for the 422."""

    def __init__(self, part: str, message: str) -> None:
        super().__init__(message)
        self.part = part

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.part, self.message))

    def __str__(self) -> str:
        return f"{self.part}: {self.message}"


ConfigT = TypeVar("ConfigT", bound=BaseModel)
CredT = TypeVar("CredT", bound=BaseModel)


def as_number(raw: Any) -> float | None:
    """A JSON figure as platforms send it: a number or a numeric string ("1500.50"). Anything
    else (a boolean, an object, text) is no figure rather than a guess."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        return float(raw)
    except ValueError:
        return None


#: How much of a platform's own words an error message quotes: what it said went wrong, not a page.
EXCERPT_CHARS = 300

#: Masks known secrets in a text (the engine client's ``redact``).
Mask = Callable[[str], str]


class HttpClient(Protocol):
    """The client the engine hands a connector: httpx's calls, already retrying, pacing,
    refreshing tokens and keeping credentials to their origins, plus the masking of the
    source's secrets that every quote of a platform's words in an error goes through.

    ``app.core.http.KrsyncClient`` is one; connectors don't import it (they don't depend on
    app/). A test that needs no engine behind a connector hands it a bare httpx client with a
    ``redact`` that masks nothing (``BareClient`` in ``tests/connectors/engine_client.py``).
    """

    def redact(self, text: str) -> str: ...

    async def get(
        self, url: httpx.URL | str, *, params: Any = None, headers: Any = None
    ) -> httpx.Response: ...

    async def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: Any = None,
        json: Any = None,
        params: Any = None,
        headers: Any = None,
        timeout: Any = ...,
    ) -> httpx.Response: ...


def excerpt(text: str, mask: Mask | None, limit: int = EXCERPT_CHARS) -> str:
    """The start of ``text`` on one line, for an error message: masked first, then cut.

    The order is the point. Cut first, a secret the cut splits no longer matches its mask and
    all of it but the characters past the cut is quoted; masked first, the cut can only split a
    mask, and that stub is dropped too, so no character of a secret and no half mask remains.
    Every quote of a platform's or a library's words in an error goes through here.
    """
    masked = mask(text) if mask is not None else text
    flat = " ".join(masked.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit]
    if flat[limit] == "*":  # inside a mask: drop its stub
        cut = cut.rstrip("*")
    return cut.rstrip() + "…"


def status_failure(http: Any, response: httpx.Response) -> tuple[str, float | None]:
    """A failed answer as the engine's client words it: its redacted message (source, request,
    status, the start of the body) and the wait the platform asked for.

    The client raises its own ``HttpStatusError``, which connectors can't import (they don't
    depend on app/): it is read by duck typing.
    """
    try:
        http.raise_for_status(response)
    except Exception as exc:
        return str(getattr(exc, "message", exc)), getattr(exc, "retry_after", None)
    return f"HTTP {response.status_code}", None


def json_body(response: httpx.Response, platform: str) -> Any:
    """A successful answer's JSON. A body that isn't JSON (a proxy's error page, a cut-off
    transfer) is retried rather than read as an answer without figures."""
    try:
        return response.json()
    except ValueError:
        raise RetriableError(
            f"{platform} answered {response.status_code} with something that isn't JSON"
        ) from None


def _names(items: Sequence[str] | frozenset[str]) -> str:
    return ", ".join(f"`{i}`" for i in items) or "none"


class Connector(ABC, Generic[ConfigT, CredT]):
    """Base of every connector. Subclasses declare class attributes and implement two hooks.

    The engine owns the HTTP client (retries, rate limits, token refresh, redaction), so a
    connector only builds requests and parses responses.
    """

    key: ClassVar[str]
    name: ClassVar[str]
    category: ClassVar[Category]
    #: The models named as ``Connector[Config, Credentials]``: read off that line by
    #: ``__init_subclass__``, so the two can't disagree (a subclass may still set them).
    config_model: type[ConfigT]
    credentials_model: type[CredT]
    metrics: ClassVar[tuple[MetricSpec, ...]] = ()
    recommended_lookback_days: ClassVar[int | None] = None
    #: The recent days the platform may still restate, for every metric that doesn't say
    #: otherwise (``MetricSpec.settle_days``): the engine re-reads them on every incremental
    #: run and reads mark their values provisional.
    settle_days: ClassVar[int] = 0
    #: The longest window one fetch may span; the engine splits longer ones.
    max_window_days: ClassVar[int | None] = None
    #: The platform API version this connector speaks by default (a ``LinkedIn-Version`` month,
    #: a Graph API ``vNN.0``, ``v1beta``); None for sources that call no versioned platform API.
    #: A connector whose config has an ``api_version`` speaks that one instead.
    api_version: ClassVar[str | None] = None
    #: What each filter op means on this platform, where it differs from :data:`FILTER_MEANINGS`
    #: (HubSpot's ``contains`` matches whole words): the catalogue shows the merged table.
    filter_meanings: ClassVar[Mapping[FilterOp, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in cls.__dict__.get("__orig_bases__", ()):
            if getattr(base, "__origin__", None) is Connector:
                config, credentials = get_args(base)
                if "config_model" not in cls.__dict__ and isinstance(config, type):
                    cls.config_model = config
                if "credentials_model" not in cls.__dict__ and isinstance(credentials, type):
                    cls.credentials_model = credentials

    def __init__(
        self,
        config: ConfigT,
        credentials: CredT,
        http: HttpClient,
        *,
        timezone: str = "UTC",
        today: date | None = None,
    ) -> None:
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConnectorConfigError(f"unknown timezone `{timezone}`: use an IANA name") from exc
        #: The source's today by the engine's clock: limits such as "12 months back" count from
        #: it, so a run and its window agree on the date (and tests can set it).
        self.today = today if today is not None else datetime.now(self.zone).date()
        self.config = config
        self.credentials = credentials
        self.http = http
        self.timezone = timezone

    @abstractmethod
    async def check(self) -> CheckResult:
        """Make one cheap call proving credentials and ids work, or raise the error saying which."""

    @abstractmethod
    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        """Daily values of ``queries`` over ``window``.

        Batch the queries into as few API calls as the platform allows, ask it for aggregates
        rather than raw records, and date values as the platform reports them (its reporting
        timezone). A query that fails on its own goes to ``query_errors``; raise only when the
        whole fetch is lost, so one retired metric doesn't block the others.
        """

    @classmethod
    def http_options(cls, config: ConfigT, credentials: CredT) -> HttpOptions:
        """The engine builds the client from this; connectors add rate limits, OAuth, headers."""
        return HttpOptions(base_url=str(getattr(config, "base_url", "") or ""))

    @classmethod
    def merge_token(cls, credentials: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
        """Credentials to store after a refresh (a rotated refresh token replaces the old)."""
        merged = dict(credentials)
        for key in ("access_token", "refresh_token", "expires_at"):
            if token.get(key) is not None:
                merged[key] = token[key]
        return merged

    #: An open-ended catalogue (any object's count, any GA4 metric) has no list to offer for a
    #: name it refuses: it says the naming rule instead ("Salesforce metric: name an object...").
    metric_naming: ClassVar[str | None] = None
    #: What narrows a metric whose catalogue takes no filters, where the platform offers another
    #: way (a saved filter, a param): a filter given anyway is refused with it, before the params.
    unfiltered: ClassVar[str | None] = None

    @classmethod
    def metric_spec(cls, name: str) -> MetricSpec | None:
        """Catalogue lookup; open-ended connectors override it to accept a naming pattern."""
        return next((m for m in cls.metrics if m.name == name), None)

    @classmethod
    def settle_days_of(cls, spec: MetricSpec) -> int:
        """The metric's own ``settle_days``, else the connector's; 0 for a snapshot.

        Read through the connector rather than off the spec, so the open-ended metrics an
        overridden ``metric_spec`` builds on the fly settle like the catalogue's own.
        """
        if spec.history == "snapshot":
            return 0
        return spec.settle_days if spec.settle_days is not None else cls.settle_days

    @classmethod
    def validate_query(
        cls,
        metric: str,
        params: Mapping[str, Any] | None,
        filters: Sequence[Filter | Mapping[str, Any]],
        aggregation: Aggregation | None,
    ) -> BaseModel:
        """Check a mapping offline and return its validated params, or raise ``MappingError``."""
        spec = cls.metric_spec(metric)
        if spec is None and cls.metric_naming:
            raise MappingError("metric", f"`{metric[:80]}` is not a {cls.metric_naming}")
        if spec is None:
            known = _names([m.name for m in cls.metrics])
            raise MappingError("metric", f"{cls.name} has no metric `{metric}`; available: {known}")
        if filters and not spec.filters and cls.unfiltered:
            raise MappingError("filters[0].field", cls.unfiltered)
        try:
            validated = spec.params_model.model_validate(dict(params or {}))
        except ValidationError as exc:
            raise _params_error(spec, exc) from exc
        checked: list[Filter] = []
        for i, raw in enumerate(filters):
            try:
                flt = raw if isinstance(raw, Filter) else Filter.model_validate(raw)
            except ValidationError as exc:
                err = exc.errors()[0]
                loc = str(err["loc"][0]) if err["loc"] else ""  # past [0] come union-member tags
                raise MappingError(
                    f"filters[{i}]" + (f".{loc}" if loc else ""), err["msg"]
                ) from exc
            ops = spec.allowed_ops(flt.field)
            if ops is None:
                allowed = _names(sorted(spec.filters))
                raise MappingError(
                    f"filters[{i}].field",
                    f"`{metric}` can't be filtered on `{flt.field}`; filterable fields: {allowed}",
                )
            if flt.op not in ops:
                allowed = _names([op for op in FILTER_OPS if op in ops])
                raise MappingError(
                    f"filters[{i}].op", f"`{flt.field}` doesn't take `{flt.op}`; use {allowed}"
                )
            checked.append(flt)
        if aggregation is not None:
            _check_aggregation(spec, aggregation)
        cls.check_filters(checked)
        return validated

    @classmethod
    def check_filters(cls, filters: Sequence[Filter]) -> None:
        """The platform's own rules for filters the catalogue allows (value formats, how many
        fit one request); raise ``MappingError`` naming ``filters[i]``. Runs last, on the
        validated filters, so a connector needn't parse them again."""

    async def validate_mapping_online(self, query: MetricQuery) -> None:
        """Check a mapping against the platform's own metadata; a no-op where there is none."""
        return None

    @classmethod
    def api_version_for(cls, config: ConfigT) -> str | None:
        """The version this source's calls use: its config's ``api_version`` where the connector
        lets a source choose one (moving to a newer version is a config change), else the
        connector's own."""
        chosen = getattr(config, "api_version", None)
        return chosen if isinstance(chosen, str) and chosen else cls.api_version

    @classmethod
    def sunset_of(cls, version: str) -> date | None:
        """The day the vendor retires ``version``, where it publishes one; None otherwise."""
        return None

    @classmethod
    def api_version_sunset(cls, config: ConfigT) -> date | None:
        """The day the vendor retires the version this source speaks, where it says."""
        version = cls.api_version_for(config)
        return None if version is None else cls.sunset_of(version)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The item shape of ``GET /api/v1/connectors``."""
        sunset = None if cls.api_version is None else cls.sunset_of(cls.api_version)
        return {
            "key": cls.key,
            "name": cls.name,
            "category": cls.category,
            "config": cls.config_model.model_json_schema(),
            "credentials": cls.credentials_model.model_json_schema(),
            "metrics": [m.describe() | {"settle_days": cls.settle_days_of(m)} for m in cls.metrics],
            "recommended_lookback_days": cls.recommended_lookback_days,
            "api_version": cls.api_version,
            "api_version_sunset": None if sunset is None else sunset.isoformat(),
            "filter_meanings": {
                op: cls.filter_meanings.get(op, FILTER_MEANINGS[op])
                for op in FILTER_OPS
                if any(op in ops for m in cls.metrics for ops in m.filters.values())
            },
        }


def _params_error(spec: MetricSpec, exc: ValidationError) -> MappingError:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    part = f"params.{loc}" if loc else "params"
    if err["type"] == "extra_forbidden":
        accepted = _names(list(spec.params_model.model_fields))
        return MappingError(part, f"`{spec.name}` has no param `{loc}`; it takes: {accepted}")
    return MappingError(part, err["msg"])


def _check_aggregation(spec: MetricSpec, aggregation: Aggregation) -> None:
    if aggregation in ("sum", "ratio") and not spec.additive:
        what = "is a rate" if spec.unit in ("%", "ratio") else "is not additive"
        instead = " or ".join(f"`{a}`" for a in ("avg", "last") if a in spec.aggregations)
        use = f"use aggregation {instead}, or " if instead else ""
        verb = "summed over days" if aggregation == "sum" else "the side of a ratio (it sums days)"
        raise MappingError(
            "aggregation",
            f"`{spec.name}` {what} and can't be {verb}: {use}make a `ratio` key result "
            "with an additive numerator and denominator",
        )
    if aggregation not in spec.aggregations:
        allowed = _names([a for a in AGGREGATIONS if a in spec.aggregations])
        raise MappingError(
            "aggregation", f"`{spec.name}` doesn't support `{aggregation}`; use {allowed}"
        )
