"""The ``meta`` connector: its catalogue, open-ended metric names, auth header, the hooks, and
insights over a window: split to Meta's spans, batched, halved around a retired metric, paged.
The Graph calls are its base class (:mod:`connectors.meta.graph`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import date, timedelta

import httpx

from connectors.base import (
    CheckResult,
    ConnectorConfigError,
    FetchResult,
    HttpOptions,
    MappingError,
    MetricQuery,
    MetricSpec,
    Window,
)
from connectors.meta.graph import MetaGraphBase, _InvalidMetric, _pace
from connectors.meta.models import (
    _NAME,
    DEFAULT_VERSION,
    GRAPH_SUNSETS,
    INSTAGRAM_WINDOW_DAYS,
    MAX_PAGES,
    PACIFIC,
    PAGE_WINDOW_DAYS,
    MetaConfig,
    MetaCredentials,
    Series,
    Surface,
    _day_of,
    _midnight,
    _number,
    _surface_spec,
)
from connectors.paginate import Follow, NextUrlPaginator, Request, pages
from connectors.series import daily, rows_of


class MetaConnector(MetaGraphBase):
    """Any Page insight as ``page.<insight>``, any Instagram one as ``instagram.<insight>``."""

    key = "meta"
    name = "Meta (Facebook & Instagram)"
    category = "social"
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
                result.query_errors |= {q.id: self._no_instagram_id(q.metric) for q in mine}
                continue
            series, errors = await self._surface(surface, object_id, mine, window, result)
            for q in mine:
                insight = self._parts(q.metric)[1]
                if insight in errors:
                    result.query_errors[q.id] = errors[insight]
                else:
                    result.values += daily(q.id, series.get(insight, {}), window)
        result.details = self._details()
        return result

    # --- insights --------------------------------------------------------------------------------

    async def _surface(
        self,
        surface: Surface,
        object_id: str,
        queries: Sequence[MetricQuery],
        window: Window,
        result: FetchResult,
    ) -> tuple[Series, dict[str, str]]:
        """Every insight of one object over the window, and why the others have no figures."""
        insights = list(dict.fromkeys(self._parts(q.metric)[1] for q in queries))
        span = PAGE_WINDOW_DAYS if surface == "page" else INSTAGRAM_WINDOW_DAYS
        series: Series = {}
        errors: dict[str, str] = {}
        odd: set[str] = set()
        for part in window.split(span):
            asked = [i for i in insights if i not in errors]
            if not asked:
                break

            def ask(names: list[str], part: Window = part) -> Awaitable[Series]:
                return self._series(surface, object_id, names, part, odd)

            got, refused = await self._batch(asked, ask)
            errors |= {
                name: self._refused(f"{surface}.{name}", said) for name, said in refused.items()
            }
            for name, days in got.items():
                series.setdefault(name, {}).update(days)
        for name in sorted(odd):
            if series.get(name):
                result.warnings.append(f"`{surface}.{name}` sent values that aren't numbers")
            else:
                errors.setdefault(
                    name,
                    f"`{surface}.{name}` reports a breakdown (an object per day), not one number: "
                    "krsync maps plain daily figures, pick an insight without a breakdown",
                )
        return series, errors

    async def _batch(
        self, names: list[str], ask: Callable[[list[str]], Awaitable[Series]]
    ) -> tuple[Series, dict[str, str]]:
        """Ask for all; when Meta refuses the list, halve it until the culprit stands alone."""
        try:
            return await ask(names), {}
        except _InvalidMetric as exc:
            if len(names) == 1:
                return {}, {names[0]: exc.message}
        half = len(names) // 2
        first, first_errors = await self._batch(names[:half], ask)
        second, second_errors = await self._batch(names[half:], ask)
        return {**first, **second}, {**first_errors, **second_errors}

    async def _series(
        self,
        surface: Surface,
        object_id: str,
        names: list[str],
        window: Window,
        odd: set[str] | None = None,
    ) -> Series:
        """One metric list over one window, every page; names with non-numbers go to ``odd``."""
        path = f"/{self.config.api_version}/{object_id}/insights"
        until = _midnight(window.end + timedelta(days=1))
        params = {
            "metric": ",".join(names),
            "period": "day",
            "since": str(_midnight(window.start)),
            "until": str(until),
        }
        series: Series = {}
        paginator = NextUrlPaginator(next_url="$.paging.next", follow=self._follow(until))
        async for body in pages(
            paginator,
            Request("GET", path, params),
            lambda r: self._get(r.url, r.params, surface=surface),
            max_pages=MAX_PAGES,
            what="Meta's insights",
        ):
            for item in rows_of(body, "data", "Meta's insights"):
                if not isinstance(item, dict) or item.get("period", "day") != "day":
                    continue
                days = series.setdefault(str(item.get("name")), {})
                for entry in item.get("values") or []:
                    day = _day_of(entry.get("end_time")) if isinstance(entry, dict) else None
                    if day is None:
                        continue
                    value = _number(entry.get("value"))
                    if value is not None:
                        days[day] = value
                    elif odd is not None:
                        odd.add(str(item.get("name")))
        return series

    def _follow(self, until: int) -> Follow:
        """The next page, on our root and without the token Meta copies into its links."""
        version = f"/{self.config.api_version}/"

        def follow(request: Request, url: httpx.URL) -> Request | None:
            params = {k: v for k, v in url.params.items() if k != "access_token"}
            try:
                # Meta's next link moves the range on; past our window it has nothing we asked.
                if int(params.get("since", until)) >= until:
                    return None
            except ValueError:
                return None
            at = url.path.find(version)
            return replace(request, url=url.path[at:] if at >= 0 else url.path, params=params)

        return follow

    # --- naming ----------------------------------------------------------------------------------

    @staticmethod
    def _parts(metric: str) -> tuple[Surface, str]:
        match = _NAME.match(metric)
        if match is None:
            raise ConnectorConfigError(f"`{metric}` is not a `page.*` or `instagram.*` metric")
        return ("page" if match.group(1) == "page" else "instagram"), match.group(2)

    def _object_id(self, surface: Surface) -> str | None:
        return self.config.page_id if surface == "page" else self.config.instagram_user_id

    @staticmethod
    def _no_instagram_id(metric: str) -> str:
        return (
            f"`{metric}` needs the source's `instagram_user_id` (the Page's "
            "`instagram_business_account` id)"
        )

    @staticmethod
    def _refused(metric: str, said: str) -> str:
        return (
            f"Meta refuses `{metric}` for a daily figure (it may be retired or not offered with "
            f"period=day): pick a current insight; Meta said: {said}"
        )
