"""Daily series, written once for every connector: the day a platform's date or instant falls on
in a timezone, figures summed per (day, group), and what a fetch hands back of them.

Platforms date figures their own way (ISO days, epoch milliseconds, instants in UTC that belong
to a day of the source's zone); a connector says which and gets :class:`~datetime.date` s, so
every connector buckets days, sorts values and reports unreadable records alike.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.base import DailyValue, FilterOp, MetricQuery, RetriableError, Window

#: The group label of a record whose group is empty.
BLANK_GROUP = "(blank)"
#: Unreadable records listed one by one in a run's warnings; the rest are counted.
MAX_LISTED = 20

K = TypeVar("K", bound=Hashable)


def iso_day(raw: Any) -> date | None:
    """An ISO day, with or without a time after it (``2026-07-01 00:00:00``); else None."""
    try:
        return date.fromisoformat(str(raw)[:10])
    except ValueError:
        return None


def midnight(day: date, zone: tzinfo = UTC) -> datetime:
    """The instant ``day`` starts in ``zone``: where a platform's range of instants starts."""
    return datetime.combine(day, time(), zone)


def epoch_ms(day: date, zone: tzinfo = UTC) -> int:
    """Milliseconds since the Unix epoch at the start of ``day`` in ``zone``: how HubSpot's
    search and LinkedIn's time ranges bound days."""
    return int(midnight(day, zone).timestamp() * 1000)


def day_of(raw: Any, zone: tzinfo) -> date | None:
    """The day a platform's date value falls on in ``zone``: an ISO instant (:func:`local_day`),
    a plain ISO day as it is, or epoch milliseconds; None for anything else."""
    text = str(raw).strip() if raw is not None else ""
    if not text:
        return None
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text) / 1000, UTC).astimezone(zone).date()
        return iso_day(text) if len(text) == 10 else local_day(text, zone)
    except (ValueError, OverflowError, OSError):
        return None


def local_day(raw: Any, zone: tzinfo) -> date | None:
    """An ISO instant as a day of ``zone``; an instant without an offset is UTC, as platforms
    send them. None when ``raw`` is no instant."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(zone).date()


def zone_name(raw: Any) -> str | None:
    """A platform's account timezone when it is an IANA name Python knows, else None (the
    source's own stays)."""
    try:
        return str(ZoneInfo(raw).key) if isinstance(raw, str) and raw else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def rows_of(body: Any, key: str, what: str) -> list[Any]:
    """The records an answer holds under ``key``. An answer without that list (an error page,
    a changed API) is retried rather than read as a day without figures."""
    found = body.get(key) if isinstance(body, Mapping) else None
    if not isinstance(found, list):
        raise RetriableError(f"{what} answered without a `{key}` list")
    return found


def passes(text: str, op: FilterOp, values: Collection[str], *, fold: bool = False) -> bool:
    """A record's text against a filter a connector applies itself: ``eq``/``in`` match one of
    ``values``, ``neq``/``not_in`` none, ``contains`` holds one (ignoring case when ``fold``)."""
    if op in ("eq", "in"):
        return text in values
    if op in ("neq", "not_in"):
        return text not in values
    if fold:
        return any(v.casefold() in text.casefold() for v in values)
    return any(v in text for v in values)


class Sums:
    """Figures added up per (day, group): records of a day (and group) make one value."""

    def __init__(self) -> None:
        self._sums: dict[tuple[date, str | None], float] = {}

    def add(self, day: date, value: float, group: str | None = None) -> None:
        self._sums[day, group] = self._sums.get((day, group), 0.0) + value

    def values(self, query_id: str) -> list[DailyValue]:
        """The sums as a query's values, by day, then group."""
        ordered = sorted(self._sums.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
        return [DailyValue(query_id, day, total, group) for (day, group), total in ordered]


def daily(
    query_id: str, days: Mapping[date, float], window: Window | None = None
) -> list[DailyValue]:
    """One figure a day (of ``window`` only, when given) as a query's values, by day."""
    return [
        DailyValue(query_id, day, value)
        for day, value in sorted(days.items())
        if window is None or day in window
    ]


def snapshot(queries: Iterable[MetricQuery], value: float, window: Window) -> list[DailyValue]:
    """A figure of now for each query: dated on the window's end, which the engine makes the
    source's today for a snapshot."""
    return [DailyValue(q.id, window.end, value) for q in queries]


def group_queries(
    queries: Iterable[MetricQuery], key: Callable[[MetricQuery], K]
) -> dict[K, list[MetricQuery]]:
    """Queries that one request answers together, in the order they came."""
    groups: dict[K, list[MetricQuery]] = {}
    for query in queries:
        groups.setdefault(key(query), []).append(query)
    return groups


def listed(bad: Sequence[str], what: str) -> list[str]:
    """The run's warnings about unreadable ``what`` (rows, records): the first
    :data:`MAX_LISTED` one by one, the rest counted."""
    more = len(bad) - MAX_LISTED
    return [
        *bad[:MAX_LISTED],
        *([f"and {more} more {what} that can't be read"] if more > 0 else []),
    ]
