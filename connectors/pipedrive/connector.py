"""Pipedrive: deals per day and their value, from the deals timeline.

One ``GET /api/v1/deals/timeline`` answers a window, a period a day, with ``totals`` (counts,
values by deal currency) and ``totals_converted`` (values in the company's currency). Queries
sharing the date field (``field_key``), ``filter_id`` and ``pipeline_id`` share the call;
``status`` picks the totals read (all, ``open_*`` or ``won_*``: the timeline holds open and won
deals, never lost). The answer covers every day asked, so the fetch is complete: a day whose only
deal was lost or deleted loses its stored figure.

The ``x-api-token`` header is Pipedrive's recommended way for an API token; an OAuth token is
refreshed by the engine. Pipedrive says little in an error (``error``, ``error_info``): what each
status means for a run (the token, the plan, a permission, one bad filter) is decided here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

import httpx
from pydantic import Field, model_validator

from connectors.base import (
    CheckResult,
    Connector,
    ConnectorConfigError,
    DailyValue,
    FetchResult,
    HttpOptions,
    Mask,
    MetricQuery,
    OAuthSpec,
    RetriableError,
    TokenRefreshError,
    Window,
    as_number,
    excerpt,
)
from connectors.errors import Classifier, Hint, Hints, refresh_refused
from connectors.models import OAuthCredentials, Params, RootUrl, Strict, catalogue, root_field
from connectors.pacing import RateHeaders
from connectors.series import group_queries, iso_day, zone_name

TIMELINE = "/api/v1/deals/timeline"
TOKEN_ENDPOINT = "https://oauth.pipedrive.com/oauth/token"
#: A day a period, the deals themselves left out, values also converted to the company's currency.
_TIMELINE_ASKS = {
    "interval": "day",
    "exclude_deals": "1",
    "totals_convert_currency": "default_currency",
}
#: Pipedrive documents no cap on ``amount``; a quarter a call keeps a cycle's backfill to one.
MAX_DAYS = 92
#: A success that spent the burst window (2 seconds) holds every call of the source, queued ones
#: included, for ``x-ratelimit-reset`` seconds, 10 at most; a 429 is retried by the engine's
#: client, then ``RateLimited``.
_LIMITS = RateHeaders(
    "x-ratelimit-",
    "Pipedrive's burst window is spent (x-ratelimit-remaining: 0)",
    unnamed=2.0,
    cap=10.0,
    successes_only=True,
)
#: status -> (count key in ``totals``, values-by-currency key in ``totals``, converted key).
_TOTALS = {
    None: ("count", "values", "value"),
    "open": ("open_count", "open_values", "open_value"),
    "won": ("won_count", "won_values", "won_value"),
}
#: A refused OAuth access token (the API token's refusal is the table's 401).
_OAUTH_REFUSED: Hints = {
    401: "Pipedrive refused the OAuth access token (even after a refresh, where a `refresh_token` "
    "is stored): reconnect the app to get new tokens"
}


class PipedriveConfig(Strict):
    company_domain: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$",
        description="The company's subdomain: `acme` for https://acme.pipedrive.com.",
    )
    base_url: RootUrl | None = root_field("https://{company_domain}.pipedrive.com", unset=True)

    @model_validator(mode="after")
    def _somewhere(self) -> PipedriveConfig:
        if self.company_domain is None and self.base_url is None:
            raise ValueError("give `company_domain` (acme for https://acme.pipedrive.com)")
        return self

    @property
    def root(self) -> str:
        return self.base_url or f"https://{self.company_domain}.pipedrive.com"


class _ApiToken(Strict):
    """A base of its own so that ``api_token``, the usual way in, comes first in the form."""

    api_token: str | None = Field(None, description="Personal preferences > API in Pipedrive.")


class PipedriveCredentials(OAuthCredentials, _ApiToken):
    """A personal API token, or an OAuth app's tokens."""

    @model_validator(mode="after")
    def _one_way_in(self) -> PipedriveCredentials:
        oauth = self.access_token is not None or self.refresh_token is not None
        if (self.api_token is None) == (not oauth):
            raise ValueError("give `api_token`, or OAuth's `access_token` / `refresh_token`")
        return self


class DealsParams(Params):
    date_field: Literal["add_time", "won_time", "close_time"] = Field(
        "add_time", description="The date that puts a deal on a day (the timeline's `field_key`)."
    )
    status: Literal["open", "won"] | None = Field(
        None, description="Only open or only won deals; both when unset (lost deals never count)."
    )
    filter_id: int | None = Field(None, ge=1, description="A saved Pipedrive deal filter.")
    pipeline_id: int | None = Field(None, ge=1, description="Only deals in this pipeline.")


METRICS = catalogue(
    {
        "deals.count": (
            "Open and won deals per day of `date_field` (one `status` with that param)",
            "deals",
        ),
        "deals.value": (
            "The value of those deals per day, converted into the company's currency",
            "currency",
        ),
    },
    params_model=DealsParams,
)


class TimelineRejected(ConnectorConfigError):
    """Pipedrive refused one timeline request (an unknown filter or pipeline)."""


def _number(raw: Any) -> float | None:
    """Pipedrive may group thousands with commas in a string figure ("12,500")."""
    return as_number(raw.replace(",", "") if isinstance(raw, str) else raw)


def _words(response: httpx.Response, body: Any) -> tuple[tuple[str, ...], str]:
    keys = ("error", "error_info") if isinstance(body, dict) else ()
    return (), " ".join(str(body.get(k) or "") for k in keys).strip()


_REFRESH_FIX = (
    "the `refresh_token` is revoked or expired, or `client_id`/`client_secret` belong to another "
    "app; reconnect the app"
)
_ERRORS = Classifier(
    "Pipedrive",
    {
        401: "Pipedrive refused the API token: copy `api_token` again from Personal preferences > "
        "API in the company at `company_domain` (each company has its own token, and a "
        "regenerated one replaces the old)",
        429: "Pipedrive's rate limit is reached: {said}",
        402: "Pipedrive refused the call (402 Payment Required: {said}): the company's "
        "subscription has lapsed or its plan lacks API access",
        403: "Pipedrive refused access (403: {said}): the user needs permission to see deals "
        "(and the filter or pipeline given); an OAuth app needs the `deals:read` scope",
        (404, 410): "Pipedrive has nothing at {path} ({said}): check `company_domain`",
        "config": Hint(
            "Pipedrive refused the deals timeline ({status}: {said}): check `filter_id` and "
            "`pipeline_id`",
            TimelineRejected,
        ),
    },
    read=_words,
    wait=_LIMITS.wait,
)


class PipedriveConnector(Connector[PipedriveConfig, PipedriveCredentials]):
    """Deals per day and their value, one timeline call per window and (date, filter, pipeline)."""

    key = "pipedrive"
    name = "Pipedrive"
    category = "crm"
    metrics = METRICS
    #: Deals are won, moved between stages, re-dated and re-valued days after they were read.
    recommended_lookback_days = settle_days = 7
    #: API v1 (``/api/v1/deals/timeline``); Pipedrive has dated no sunset for it.
    api_version = "v1"
    max_window_days = MAX_DAYS
    unfiltered = (
        "Pipedrive's deals timeline takes no field filters: save a filter in Pipedrive and give "
        "its id as `params.filter_id`, or use `pipeline_id` or `status`"
    )

    @classmethod
    def http_options(
        cls, config: PipedriveConfig, credentials: PipedriveCredentials
    ) -> HttpOptions:
        # 20 calls per 2 s on the smallest plan; a fetch makes a handful.
        options = HttpOptions(base_url=config.root, rate_per_second=5.0, pace=_LIMITS.pace)
        if credentials.api_token is not None:
            return replace(options, headers={"x-api-token": credentials.api_token})
        if credentials.refresh_token is None:
            bearer = {"Authorization": f"Bearer {credentials.access_token}"}
            return replace(options, headers=bearer)
        oauth = OAuthSpec.of(credentials, TOKEN_ENDPOINT, auth_method="client_secret_basic")
        return replace(options, oauth=oauth)

    async def check(self) -> CheckResult:
        kept: dict[str, Any] = {}
        body = await self._get("/api/v1/users/me", {}, kept)
        me = body.get("data") if isinstance(body, dict) else None
        if not isinstance(me, dict):
            raise RetriableError("Pipedrive's /users/me answered without `data`")
        notices, domain, wanted = [], me.get("company_domain"), self.config.company_domain
        if wanted and isinstance(domain, str) and domain and domain.lower() != wanted.lower():
            notices.append(
                f"the credentials belong to the company `{domain}`, not `{wanted}`: "
                "check `company_domain`"
            )
        return CheckResult(
            f"Connected to Pipedrive company {me.get('company_name') or domain or '?'} as "
            f"{me.get('name') or 'the API user'}; values in {me.get('default_currency') or '?'}",
            timezone=zone_name(me.get("timezone_name")),
            details={
                "company_id": me.get("company_id"),
                "default_currency": me.get("default_currency"),
                **kept,
            },
            notices=notices,
        )

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult()
        currencies: set[str] = set()
        for asked, group in group_queries(queries, _timeline_key).items():
            for part in window.split(MAX_DAYS):
                days = {"start_date": part.start.isoformat(), "amount": str(part.num_days)}
                try:
                    asks = {**_TIMELINE_ASKS, **dict(asked), **days}
                    body = await self._get(TIMELINE, asks, result.details)
                except TimelineRejected as exc:
                    result.fail(group, exc.message)
                    break
                for period in _periods(body, self.http.redact):
                    _read(period, group, part, result, currencies)
            else:
                # The timeline answers every day asked: a day it has no deals for any more (the
                # only one lost or deleted) has none, and its old figure must not linger.
                result.complete.update(q.id for q in group)
        if currencies:
            listed = sorted(currencies)
            result.details["currency"] = listed[0] if len(listed) == 1 else listed
        return result

    async def _get(self, path: str, params: dict[str, str], details: dict[str, Any]) -> Any:
        """The answer's JSON; its rate-limit figures go to ``details`` (the latest of each)."""
        try:
            response = await self.http.get(path, params=params)
        except TokenRefreshError as exc:
            raise refresh_refused(exc, "Pipedrive", _REFRESH_FIX) from None
        if figures := _LIMITS.figures(response):
            details["ratelimit"] = details.get("ratelimit", {}) | figures
        hints = None if self.credentials.api_token is not None else _OAUTH_REFUSED
        return _ERRORS.json(response, self.http.redact, hints=hints)


def _timeline_key(query: MetricQuery) -> tuple[tuple[str, str], ...]:
    """What a timeline call asks besides its days: queries asking the same share the call."""
    p = query.params
    assert isinstance(p, DealsParams)
    narrow = {"field_key": p.date_field, "filter_id": p.filter_id, "pipeline_id": p.pipeline_id}
    return tuple((k, str(v)) for k, v in narrow.items() if v is not None)


def _kind(value: Any) -> str:
    """What came back instead of an object or a list of periods, parsed JSON's own types."""
    kinds = {dict: "an object", list: "a list of something else", type(None): "null"}
    return kinds.get(type(value), f"a {type(value).__name__}")


def _periods(body: Any, mask: Mask | None) -> list[dict[str, Any]]:
    """The timeline's periods, or an error naming what came back instead.

    The timeline groups deals "into N groups" for the N intervals asked
    (https://developers.pipedrive.com/docs/api/v1/Deals#getDealsTimeline): ``data`` is a list of
    periods, an empty day among them with its zero totals, so never an empty list.
    ``success: true`` with ``data: null`` is Pipedrive's documented empty answer ("data: null,
    //object in other cases", https://pipedrive.readme.io/docs/core-api-concepts-responses): no
    deal in any period. Anything else (an object, an empty list or one of something other than
    periods, no ``data``, ``success: false``) is not an answer to read: reading it as no deals
    would write zeros over the window's days.
    """
    if not isinstance(body, dict):
        raise RetriableError(f"Pipedrive's deals timeline answered {_kind(body)}, not an object")
    if body.get("success") is False:
        said = excerpt(str(body.get("error") or ""), mask)
        raise RetriableError(f"Pipedrive's deals timeline answered success: false ({said})")
    data = body.get("data")
    if data is None and "data" in body and body.get("success") is True:
        return []
    if isinstance(data, list) and data and all(isinstance(p, dict) for p in data):
        return data
    shown = "an empty list" if data == [] else _kind(data)
    what = f"with `data` as {shown}" if "data" in body else "without `data`"
    raise RetriableError(
        f"Pipedrive's deals timeline answered {what}, not the list of periods asked for: "
        "nothing was written, the next run asks again"
    )


def _read(
    period: dict[str, Any],
    group: Sequence[MetricQuery],
    window: Window,
    result: FetchResult,
    currencies: set[str],
) -> None:
    """One period's counts and (converted or single-currency) values as the group's figures."""
    raw = str(period.get("period_start") or "")
    day = iso_day(raw)  # "2026-07-01 00:00:00"
    if day is None:
        result.warnings.append(f"Pipedrive sent a period starting `{raw[:40]}`: skipped")
        return
    if day not in window:
        return
    raw_totals, raw_converted = period.get("totals"), period.get("totals_converted")
    totals: dict[str, Any] = raw_totals if isinstance(raw_totals, dict) else {}
    converted: dict[str, Any] = raw_converted if isinstance(raw_converted, dict) else {}
    if isinstance(converted.get("currency"), str):
        currencies.add(converted["currency"])
    for query in group:
        params = query.params
        assert isinstance(params, DealsParams)
        count_key, values_key, converted_key = _TOTALS[params.status]
        count = _number(totals.get(count_key))
        if not count:  # a day without deals: nothing to record
            continue
        if query.metric == "deals.count":
            result.values.append(DailyValue(query.id, day, count))
            continue
        value = _number(converted.get(converted_key))
        if value is None:
            value = _single_currency(totals.get(values_key), currencies)
        if value is None:
            result.query_errors[query.id] = (
                f"Pipedrive sent {day}'s deal values in several currencies without a "
                "converted total: the company's currency rates may be missing"
            )
            continue
        result.values.append(DailyValue(query.id, day, value))


def _single_currency(values: Any, currencies: set[str]) -> float | None:
    """Values by deal currency, when only one is there: an empty ``[]`` is a day of no value."""
    if not values:
        return 0.0
    if isinstance(values, dict) and len(values) == 1:
        [(currency, amount)] = values.items()
        currencies.add(str(currency))
        return _number(amount)
    return None
