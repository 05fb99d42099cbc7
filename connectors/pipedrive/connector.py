"""The Pipedrive connector: checks the company, fetches one timeline call per window and
shared (date field, filter, pipeline), and reads the burst-limit headers its client paces by.

The periods are read by :mod:`connectors.pipedrive.timeline`, the errors classified by
:mod:`connectors.pipedrive.errors`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import BaseModel

from connectors.base import (
    Aggregation,
    CheckResult,
    Connector,
    ConnectorAuthError,
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
    json_body,
    stored_token,
)
from connectors.pipedrive.errors import REFRESH_REFUSED, TimelineRejected, _error
from connectors.pipedrive.models import _METRICS, DealsParams, PipedriveConfig, PipedriveCredentials
from connectors.pipedrive.timeline import MAX_DAYS, TIMELINE, _number, _periods, _read

TOKEN_ENDPOINT = "https://oauth.pipedrive.com/oauth/token"
#: The longest burst-limit pause honoured in a run (Pipedrive's window is 2 seconds).
MAX_PAUSE = 10.0


def _pace(response: httpx.Response) -> Hold | None:
    """A success that spent the burst window (``x-ratelimit-remaining: 0``) holds the source
    for ``x-ratelimit-reset`` seconds; a 429 is the client's retry to wait out."""
    remaining = _number(response.headers.get("x-ratelimit-remaining"))
    if not response.is_success or remaining is None or remaining > 0:
        return None
    reset = _number(response.headers.get("x-ratelimit-reset"))
    seconds = min(2.0 if reset is None else reset, MAX_PAUSE)
    return Hold(seconds, "Pipedrive's burst window is spent (x-ratelimit-remaining: 0)")


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
            return HttpOptions(
                **options, headers={"Authorization": f"Bearer {credentials.access_token}"}
            )
        token = stored_token(
            credentials.refresh_token, credentials.access_token, credentials.expires_at
        )
        return HttpOptions(
            **options,
            oauth=OAuthSpec(
                token_endpoint=TOKEN_ENDPOINT,
                client_id=credentials.client_id or "",
                client_secret=credentials.client_secret or "",
                token=token,
                auth_method="client_secret_basic",
            ),
        )

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
        zone = me.get("timezone_name")
        try:
            timezone = str(ZoneInfo(zone).key) if isinstance(zone, str) and zone else None
        except (ZoneInfoNotFoundError, ValueError):
            timezone = None
        return CheckResult(
            f"Connected to Pipedrive company {me.get('company_name') or domain or '?'} as "
            f"{me.get('name') or 'the API user'}; values in {me.get('default_currency') or '?'}",
            timezone=timezone,
            details={
                "company_id": me.get("company_id"),
                "default_currency": me.get("default_currency"),
                **self._limit_details(),
            },
            notices=notices,
        )

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult()
        groups: dict[tuple[str, int | None, int | None], list[MetricQuery]] = {}
        for query in queries:
            params = query.params
            assert isinstance(params, DealsParams)
            key = (params.date_field, params.filter_id, params.pipeline_id)
            groups.setdefault(key, []).append(query)
        currencies: set[str] = set()
        for (field_key, filter_id, pipeline_id), group in groups.items():
            for part in window.split(MAX_DAYS):
                request = {
                    "start_date": part.start.isoformat(),
                    "interval": "day",
                    "amount": str(part.num_days),
                    "field_key": field_key,
                    "exclude_deals": "1",
                    "totals_convert_currency": "default_currency",
                }
                if filter_id is not None:
                    request["filter_id"] = str(filter_id)
                if pipeline_id is not None:
                    request["pipeline_id"] = str(pipeline_id)
                try:
                    body = await self._get(TIMELINE, request)
                except TimelineRejected as exc:
                    result.query_errors |= {q.id: exc.message for q in group}
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
            raise ConnectorAuthError(REFRESH_REFUSED) from None
        self._note_limits(response)
        if not response.is_success:
            raise _error(
                response,
                uses_api_token=self.credentials.api_token is not None,
                mask=self.http.redact,
            )
        return json_body(response, "Pipedrive")

    def _note_limits(self, response: httpx.Response) -> None:
        for name in ("limit", "remaining", "reset"):
            value = _number(response.headers.get(f"x-ratelimit-{name}"))
            if value is not None:
                self._limits[name] = int(value)

    def _limit_details(self) -> dict[str, Any]:
        keep = {k: v for k, v in self._limits.items() if k in ("limit", "remaining")}
        return {"ratelimit": keep} if keep else {}
