"""The ``meta`` connector: its catalogue, open-ended metric names, auth header and the hooks.

The Graph calls and the insights reading are its base classes; this is what the engine sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from connectors.base import (
    CheckResult,
    ConnectorConfigError,
    DailyValue,
    FetchResult,
    HttpOptions,
    MappingError,
    MetricQuery,
    MetricSpec,
    Window,
)
from connectors.meta.graph import _InvalidMetric, _pace
from connectors.meta.insights import MetaInsightsBase
from connectors.meta.models import (
    _NAME,
    DEFAULT_VERSION,
    GRAPH_SUNSETS,
    PACIFIC,
    PAGE_WINDOW_DAYS,
    MetaConfig,
    MetaCredentials,
    Surface,
    _surface_spec,
)


class MetaConnector(MetaInsightsBase):
    """Any Page insight as ``page.<insight>``, any Instagram one as ``instagram.<insight>``."""

    key = "meta"
    name = "Meta (Facebook & Instagram)"
    category = "social"
    config_model = MetaConfig
    credentials_model = MetaCredentials
    # "Data used to calculate metrics may be delayed up to 48 hours."
    recommended_lookback_days = 3
    #: Insights are restated for up to 28 days (late data, attribution windows).
    settle_days = 28
    max_window_days = PAGE_WINDOW_DAYS
    #: The Graph API version in every path unless the source's config names another.
    api_version = DEFAULT_VERSION
    metrics = (
        _surface_spec("page", "page_follows", "Followers of the Facebook Page on each day"),
        _surface_spec("page", "page_daily_follows", "New follows of the Facebook Page a day"),
        _surface_spec("page", "page_media_view", "Times the Page's content was viewed a day"),
        _surface_spec("page", "page_post_engagements", "Interactions with the Page's posts a day"),
        _surface_spec("page", "page_views_total", "Views of the Page a day"),
        _surface_spec("instagram", "reach", "Accounts that saw the Instagram content a day"),
        _surface_spec(
            "instagram",
            "follower_count",
            "New Instagram followers a day, net (may be negative; last 30 days only)",
        ),
    )

    @classmethod
    def sunset_of(cls, version: str) -> date | None:
        return GRAPH_SUNSETS.get(version)

    @classmethod
    def metric_spec(cls, name: str) -> MetricSpec | None:
        """Any ``page.<insight>`` or ``instagram.<insight>``: Meta's list changes too often."""
        known = super().metric_spec(name)
        if known is not None:
            return known
        match = _NAME.match(name)
        if match is None:
            return None
        surface: Surface = "page" if match.group(1) == "page" else "instagram"
        return _surface_spec(surface, match.group(2))

    @classmethod
    def http_options(cls, config: MetaConfig, credentials: MetaCredentials) -> HttpOptions:
        return HttpOptions(
            base_url=config.base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {credentials.access_token}"},
            max_concurrency=2,
            # Meta's holds last a minute or more: the engine waits them out, not a request.
            pace=_pace,
            max_hold=0.0,
        )

    # --- hooks -----------------------------------------------------------------------------------

    async def check(self) -> CheckResult:
        ids = [self.config.page_id, *filter(None, [self.config.instagram_user_id])]
        try:
            # One call for both objects: Graph's multiple-id read.
            body = await self._get(
                f"/{self.config.api_version}/",
                {"ids": ",".join(ids), "fields": "id,name"},
                surface="both" if len(ids) > 1 else "page",
            )
        except _InvalidMetric as exc:  # error 100 here: an id that isn't there
            raise ConnectorConfigError(
                f"Meta can't read {', '.join(ids)}: check `page_id` and `instagram_user_id`; "
                f"Meta said: {exc.message}"
            ) from None
        found = body if isinstance(body, dict) else {}
        page = found.get(self.config.page_id) or {}
        message = f"Connected to the Facebook Page {page.get('name') or self.config.page_id}"
        if self.config.instagram_user_id:
            account = found.get(self.config.instagram_user_id) or {}
            name = account.get("name") or self.config.instagram_user_id
            message += f" and the Instagram account {name}"
        return CheckResult(message, timezone=PACIFIC, details=self._details())

    async def validate_mapping_online(self, query: MetricQuery) -> None:
        surface, insight = self._parts(query.metric)
        object_id = self._object_id(surface)
        if object_id is None:
            raise MappingError("metric", self._no_instagram_id(query.metric))
        yesterday = self.today - timedelta(days=1)
        try:
            await self._series(surface, object_id, [insight], Window(yesterday, yesterday))
        except _InvalidMetric as exc:
            raise MappingError("metric", self._refused(query.metric, exc.message)) from None

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult()
        for surface in ("page", "instagram"):
            mine = [q for q in queries if self._parts(q.metric)[0] == surface]
            if not mine:
                continue
            object_id = self._object_id(surface)
            if object_id is None:
                for q in mine:
                    result.query_errors[q.id] = self._no_instagram_id(q.metric)
                continue
            series, errors = await self._surface(surface, object_id, mine, window, result)
            for q in mine:
                insight = self._parts(q.metric)[1]
                if insight in errors:
                    result.query_errors[q.id] = errors[insight]
                    continue
                result.values += [
                    DailyValue(q.id, day, value)
                    for day, value in sorted(series.get(insight, {}).items())
                    if day in window
                ]
        result.details = self._details()
        return result
