"""Provisional days (SPEC section 4, `settle_days`): the recent days a platform may still restate.

Day `d` of a metric that settles in `n` days is provisional while `d >= today - n`, `today` being
the source's calendar day: with GA4's 2, on 2026-08-15 the 13th and the 14th may still move and
the 12th is final. The incremental window re-reads exactly those days (from `today - n` to
yesterday), so a provisional figure is always replaced by a later one until it settles.
"""

from __future__ import annotations

from datetime import date, timedelta

from connectors.registry import UnknownConnectorError, get_connector


def settle_days(connector: str, metric: str) -> int:
    """The metric's settle days; 0 when its connector or metric is gone (nothing will restate
    it: the next sync says what is missing)."""
    try:
        cls = get_connector(connector)
    except UnknownConnectorError:
        return 0
    spec = cls.metric_spec(metric)
    return 0 if spec is None else cls.settle_days_of(spec)


def first_provisional_day(settle: int, today: date) -> date | None:
    """The earliest day still provisional on `today`, or None when nothing is."""
    return today - timedelta(days=settle) if settle > 0 else None


def settle_start(settle: int, yesterday: date) -> date:
    """Where an incremental window must start at the latest to re-read every provisional day
    (yesterday itself when nothing settles)."""
    return yesterday - timedelta(days=max(settle - 1, 0))
