"""Insights over a window: split to Meta's spans, batched, halved around a retired metric, paged.

A base of the connector, between the Graph calls and the hooks, so ``fetch`` and mapping
validation share one reader of the ``data[{name, values}]`` answers and one naming of metrics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import timedelta

import httpx

from connectors.base import ConnectorConfigError, FetchResult, MetricQuery, RetriableError, Window
from connectors.meta.graph import MetaGraphBase, _InvalidMetric
from connectors.meta.models import (
    _NAME,
    INSTAGRAM_WINDOW_DAYS,
    MAX_PAGES,
    PAGE_WINDOW_DAYS,
    Series,
    Surface,
    _day_of,
    _midnight,
    _number,
)
from connectors.paginate import Follow, NextUrlPaginator, Request, pages


class MetaInsightsBase(MetaGraphBase):
    """Reading and naming insights for :class:`~connectors.meta.MetaConnector`."""

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
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise RetriableError("Meta answered insights without a `data` list")
            for item in data:
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
