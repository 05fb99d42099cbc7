"""One batch of GA4 reports: each page's request built and its answer read (values, caveats, the
next page), pacing on the property's tokens between calls, and asking again without the mappings
a refused batch names. A mixin of :class:`GA4Connector` (its ``fetch`` drives these)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import ClassVar

from google.analytics.data_v1beta import types as ga

from connectors.base import FetchResult, MetricQuery, RateLimited, Window
from connectors.ga4.client import GA4Client
from connectors.ga4.planning import Page, Report, dimension_filter, plan
from connectors.ga4.quota import (
    HOURLY_QUOTA_WAIT,
    LOW_DAILY_TOKENS,
    LOW_HOURLY_TOKENS,
    DailyQuotaExhausted,
    QuotaLog,
)


class GA4Reports(GA4Client):
    """Report requests and their answers, for a connector that declares the two limits below."""

    row_limit: ClassVar[int]
    quota_pause_seconds: ClassVar[float]

    # --- requests --------------------------------------------------------------------------------

    def _batch(self, pages: Sequence[Page], window: Window) -> ga.BatchRunReportsRequest:
        return ga.BatchRunReportsRequest(
            property=self._property, requests=[self._report(p, window) for p in pages]
        )

    def _report(self, page: Page, window: Window) -> ga.RunReportRequest:
        report = page.report
        dims = ["date"] + ([report.split_by] if report.split_by else [])
        request = ga.RunReportRequest(
            date_ranges=[
                ga.DateRange(start_date=window.start.isoformat(), end_date=window.end.isoformat())
            ],
            dimensions=[ga.Dimension(name=d) for d in dims],
            metrics=[ga.Metric(name=m) for m in report.metrics],
            # A stable order is what makes `offset` paging safe.
            order_bys=[
                ga.OrderBy(dimension=ga.OrderBy.DimensionOrderBy(dimension_name=d)) for d in dims
            ],
            limit=self.row_limit,
            offset=page.offset,
            keep_empty_rows=True,
            return_property_quota=True,
        )
        expression = dimension_filter(report.filters)
        if expression is not None:
            request.dimension_filter = expression
        return request

    def _read(
        self,
        page: Page,
        response: ga.RunReportResponse,
        window: Window,
        values: dict[tuple[str, date, str | None], float],
        result: FetchResult,
    ) -> Page | None:
        """Values of one report page into ``values``; the next page if rows remain."""
        report = page.report
        names = [h.name for h in response.metric_headers] or report.metrics
        by_metric: dict[str, list[str]] = {}
        for query in report.queries:
            by_metric.setdefault(query.metric, []).append(query.id)
        unreadable = 0
        for row in response.rows:
            dims = [d.value for d in row.dimension_values]
            try:
                day = datetime.strptime(dims[0], "%Y%m%d").date()  # noqa: DTZ007 - a day
            except (ValueError, IndexError):
                unreadable += 1
                continue
            if day not in window:
                continue
            group = (dims[1] if len(dims) > 1 else "") if report.split_by else None
            for name, cell in zip(names, row.metric_values, strict=False):
                try:
                    number = float(cell.value)
                except ValueError:
                    unreadable += 1
                    continue
                for query_id in by_metric.get(name, ()):
                    values[query_id, day, group] = number
        if unreadable:
            result.warnings.append(f"{unreadable} values of {report.label()} could not be read")
        self._caveats(report, response, result)
        seen = page.offset + len(response.rows)
        if response.rows and seen < response.row_count:
            return Page(report, seen)
        return None

    def _caveats(self, report: Report, response: ga.RunReportResponse, result: FetchResult) -> None:
        meta = response.metadata
        what = f"GA4 report {report.label()}"
        for sampling in meta.sampling_metadatas:
            read, space = int(sampling.samples_read_count), int(sampling.sampling_space_size)
            share = f" ({read / space:.1%} of {space} events)" if space else ""
            _warn(result, f"{what} is sampled{share}: its figures are estimates")
        if meta.subject_to_thresholding:
            _warn(
                result,
                f"{what} is subject to thresholding: GA4 withholds rows with few users "
                "(Google signals), so figures may be low",
            )
        if meta.data_loss_from_other_row:
            _warn(result, f'{what} lost data to GA4\'s "(other)" row')

    async def _mind_the_quota(self, quota: QuotaLog, result: FetchResult) -> None:
        """Before another call: stop if it can't be paid for, pause if tokens run low."""
        cost = max(quota.last_call_cost, 1)
        hourly, daily = quota.hourly_left(), quota.remaining.get("tokens_per_day")
        if daily is not None and daily < cost:
            raise DailyQuotaExhausted(
                f"GA4 property {self._pid} has {daily} tokens left today, fewer than the next "
                f"request needs (~{cost}): the run stops here; the tokens return tomorrow"
            )
        if hourly is not None and hourly < cost:
            raise RateLimited(
                f"GA4 property {self._pid} has {hourly} tokens left this hour, fewer than the "
                f"next request needs (~{cost}): stopped before being refused",
                HOURLY_QUOTA_WAIT,
            )
        low = (hourly is not None and hourly < LOW_HOURLY_TOKENS) or (
            daily is not None and daily < LOW_DAILY_TOKENS
        )
        if low:
            if not quota.slowed_down:
                quota.slowed_down = True
                left = [
                    f"{n} left {when}"
                    for n, when in ((hourly, "this hour"), (daily, "today"))
                    if n is not None
                ]
                result.warnings.append(
                    f"GA4 property {self._pid} is low on tokens ({', '.join(left)}): krsync "
                    "slowed down to leave some for the property's other users"
                )
            await asyncio.sleep(self.quota_pause_seconds)

    def _without_culprits(
        self, batch: Sequence[Page], message: str, result: FetchResult
    ) -> list[Page]:
        """A refused batch: fail the queries the message names, ask again for the others."""
        queries = [q for page in batch for q in page.report.queries]

        def named(query: MetricQuery) -> bool:
            names = [query.metric, *(f.field for f in query.filters)]
            split = getattr(query.params, "split_by", None)
            return any(re.search(rf"\b{re.escape(n)}\b", message) for n in [*names, split] if n)

        culprits = [q for q in queries if named(q)] or queries
        for query in culprits:
            result.query_errors[query.id] = f"GA4 refused the report: {message}"
        # The others' reports are asked again from their first row.
        return [Page(report) for report in plan([q for q in queries if q not in culprits])]


def _warn(result: FetchResult, message: str) -> None:
    if message not in result.warnings:
        result.warnings.append(message)
