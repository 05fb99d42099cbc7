"""The Pipedrive connector: checks the company, fetches one timeline call per window and
shared (date field, filter, pipeline), reads the burst-limit headers its client paces by, and
makes krsync's errors of Pipedrive's answers.

Pipedrive says little in an error (``error``, ``error_info``, a status); what each status means
for a run (the token, the plan, a permission, one bad filter) is decided here. The periods are
read by :mod:`connectors.pipedrive.timeline`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from pydantic import BaseModel

from connectors.base import (
    Aggregation,
    CheckResult,
    Connector,
    ConnectorAuthError,
    ConnectorConfigError,
    FetchResult,
    Filter,
    Hold,
    HttpOptions,
    MappingError,
    MetricQuery,
    OAuthSpec,
    RetriableError,
    TokenRefreshError,
    Window,
    limit_headers,
)
from connectors.errors import Classifier, Hint, Hints
from connectors.pipedrive.models import _METRICS, DealsParams, PipedriveConfig, PipedriveCredentials
from connectors.pipedrive.timeline import MAX_DAYS, TIMELINE, _number, _periods, _read
from connectors.series import group_queries, zone_name

TOKEN_ENDPOINT = "https://oauth.pipedrive.com/oauth/token"
#: The longest burst-limit pause honoured in a run (Pipedrive's window is 2 seconds).
MAX_PAUSE = 10.0
#: A refused OAuth access token (the API token's refusal is the table's 401).
_OAUTH_REFUSED: Hints = {
    401: "Pipedrive refused the OAuth access token (even after a refresh, where a `refresh_token` "
    "is stored): reconnect the app to get new tokens"
}


class TimelineRejected(ConnectorConfigError):
    """Pipedrive refused one timeline request (an unknown filter or pipeline)."""


def _pace(response: httpx.Response) -> Hold | None:
    """A success that spent the burst window (``x-ratelimit-remaining: 0``) holds the source
    for ``x-ratelimit-reset`` seconds; a 429 is the client's retry to wait out."""
    remaining = _number(response.headers.get("x-ratelimit-remaining"))
    if not response.is_success or remaining is None or remaining > 0:
        return None
    reset = _number(response.headers.get("x-ratelimit-reset"))
    seconds = min(2.0 if reset is None else reset, MAX_PAUSE)
    return Hold(seconds, "Pipedrive's burst window is spent (x-ratelimit-remaining: 0)")


def _words(response: httpx.Response, body: Any) -> tuple[tuple[str, ...], str]:
    if not isinstance(body, dict):
        return (), ""
    return (), " ".join(str(body.get(k) or "") for k in ("error", "error_info")).strip()


def _wait(response: httpx.Response) -> float | None:
    wait = _number(response.headers.get("Retry-After"))
    return wait if wait is not None else _number(response.headers.get("x-ratelimit-reset"))


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
    wait=_wait,
)


class PipedriveConnector(Connector[PipedriveConfig, PipedriveCredentials]):
    """Deals per day and their value, one timeline call per window and (date, filter, pipeline)."""

    key = "pipedrive"
    name = "Pipedrive"
    category = "crm"
    config_model = PipedriveConfig
    credentials_model = PipedriveCredentials
    metrics = _METRICS
    #: Deals are won, re-dated and re-valued days after they were first read.
    recommended_lookback_days = 7
    #: API v1 (``/api/v1/deals/timeline``); Pipedrive has dated no sunset for it.
    api_version = "v1"
    #: Deals move between stages and dates are corrected for days after the fact.
    settle_days = 7
    max_window_days = MAX_DAYS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits: dict[str, int] = {}

    @classmethod
    def http_options(
        cls, config: PipedriveConfig, credentials: PipedriveCredentials
    ) -> HttpOptions:
        # 20 calls per 2 s on the smallest plan; a fetch makes a handful.
        options: dict[str, Any] = {"base_url": config.root, "rate_per_second": 5.0, "pace": _pace}
        if credentials.api_token is not None:
            return HttpOptions(**options, headers={"x-api-token": credentials.api_token})
        if credentials.refresh_token is None:
            bearer = {"Authorization": f"Bearer {credentials.access_token}"}
            return HttpOptions(**options, headers=bearer)
        oauth = OAuthSpec.of(credentials, TOKEN_ENDPOINT, auth_method="client_secret_basic")
        return HttpOptions(**options, oauth=oauth)

    @classmethod
    def validate_query(
        cls,
        metric: str,
        params: Mapping[str, Any] | None,
        filters: Sequence[Filter | Mapping[str, Any]],
        aggregation: Aggregation | None,
    ) -> BaseModel:
        if filters and cls.metric_spec(metric) is not None:
            raise MappingError(
                "filters[0].field",
                "Pipedrive's deals timeline takes no field filters: save a filter in Pipedrive "
                "and give its id as `params.filter_id`, or use `pipeline_id` or `status`",
            )
        return super().validate_query(metric, params, filters, aggregation)

    # --- hooks -----------------------------------------------------------------------------------

    async def check(self) -> CheckResult:
        body = await self._get("/api/v1/users/me", {})
        me = body.get("data") if isinstance(body, dict) else None
        if not isinstance(me, dict):
            raise RetriableError("Pipedrive's /users/me answered without `data`")
        notices = []
        domain = me.get("company_domain")
        wanted = self.config.company_domain
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
                **self._limit_details(),
            },
            notices=notices,
        )

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult()
        groups = group_queries(queries, _timeline_key)
        currencies: set[str] = set()
        for (field_key, filter_id, pipeline_id), group in groups.items():
            for part in window.split(MAX_DAYS):
                narrow = {"filter_id": filter_id, "pipeline_id": pipeline_id}
                request = {
                    "start_date": part.start.isoformat(),
                    "interval": "day",
                    "amount": str(part.num_days),
                    "field_key": field_key,
                    "exclude_deals": "1",
                    "totals_convert_currency": "default_currency",
                    **{k: str(v) for k, v in narrow.items() if v is not None},
                }
                try:
                    body = await self._get(TIMELINE, request)
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
        result.details |= self._limit_details()
        return result

    # --- HTTP ------------------------------------------------------------------------------------

    async def _get(self, path: str, params: dict[str, str]) -> Any:
        try:
            response = await self.http.get(path, params=params)
        except TokenRefreshError as exc:
            if exc.transient:
                raise RetriableError("Pipedrive's OAuth server is unavailable") from None
            raise ConnectorAuthError(
                "Pipedrive refused to refresh the OAuth token: the `refresh_token` is revoked or "
                "expired, or `client_id`/`client_secret` belong to another app; reconnect the app"
            ) from None
        self._limits |= limit_headers(response, "x-ratelimit-")
        hints = None if self.credentials.api_token is not None else _OAUTH_REFUSED
        return _ERRORS.json(response, self.http.redact, hints=hints, path=response.request.url.path)

    def _limit_details(self) -> dict[str, Any]:
        keep = {k: v for k, v in self._limits.items() if k in ("limit", "remaining")}
        return {"ratelimit": keep} if keep else {}


def _timeline_key(query: MetricQuery) -> tuple[str, int | None, int | None]:
    params = query.params
    assert isinstance(params, DealsParams)
    return params.date_field, params.filter_id, params.pipeline_id
