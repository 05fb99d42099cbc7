"""HubSpot's CRM search as krsync asks it: request bodies, pages, plans and the daily tally.

HubSpot has no aggregate endpoint, so a figure is built from searches: this is everything about
them that needs no HTTP, kept apart so the connector only decides which calls to make.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any, Literal

from connectors.base import (
    LIST_OPS,
    DailyValue,
    Filter,
    MetricQuery,
    RetriableError,
    Window,
)
from connectors.hubspot.models import CountParams, SumParams

#: The most records one search page holds.
PAGE_LIMIT = 200
#: Past this many records a search can't page ("10,000 total results"): split the window.
RESULT_CAP = 10_000
#: Filters a filter group may hold since the 2024-08-26 search change; the date range is one.
MAX_FILTERS_PER_GROUP = 10

#: A deal's ``amount`` is in the deal's own currency, named by ``deal_currency_code``; HubSpot
#: calculates ``amount_in_home_currency`` (Amount in company currency) from it with the
#: account's exchange rates (https://knowledge.hubspot.com/properties/hubspots-default-deal-properties).
CURRENCY_CODE = "deal_currency_code"
HOME_AMOUNT = "amount_in_home_currency"

_OPERATORS: dict[str, str] = {
    "eq": "EQ",
    "neq": "NEQ",
    "in": "IN",
    "not_in": "NOT_IN",
    "gt": "GT",
    "gte": "GTE",
    "lt": "LT",
    "lte": "LTE",
    "contains": "CONTAINS_TOKEN",
}


# --- searches ------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _filter(flt: Filter) -> dict[str, Any]:
    operator = _OPERATORS[flt.op]
    if flt.op in LIST_OPS:
        return {
            "propertyName": flt.field,
            "operator": operator,
            "values": [_text(v) for v in flt.values],
        }
    return {"propertyName": flt.field, "operator": operator, "value": _text(flt.value)}


@dataclass(frozen=True)
class Search:
    """What mappings share: one object, one date property, one set of filters."""

    object: str
    date_property: str
    filters: tuple[str, ...]  # JSON of each filter, sorted: the group ANDs them in any order

    @classmethod
    def of(cls, query: MetricQuery) -> Search:
        params = query.params
        assert isinstance(params, CountParams)
        filters = sorted(json.dumps(_filter(f), sort_keys=True) for f in query.filters)
        return cls(query.metric.split(".")[0], params.date_property, tuple(filters))

    def body(self, lo: int, hi: int, limit: int, properties: Sequence[str]) -> dict[str, Any]:
        between = {
            "propertyName": self.date_property,
            "operator": "BETWEEN",
            "value": str(lo),
            "highValue": str(hi),
        }
        return {
            "filterGroups": [{"filters": [between, *(json.loads(f) for f in self.filters)]}],
            "properties": list(properties),
            "limit": limit,
        }


@dataclass
class Page:
    total: int
    results: list[dict[str, Any]]
    after: str | None


def _page(body: Any) -> Page:
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise RetriableError("HubSpot's search answered without a `results` list")
    total = body.get("total")
    after = (body.get("paging") or {}).get("next", {}).get("after")
    return Page(
        total=int(total) if isinstance(total, int | str) and str(total).isdigit() else 0,
        results=[r for r in body["results"] if isinstance(r, dict)],
        after=str(after) if after not in (None, "") else None,
    )


def paging_calls(total: int) -> int:
    """Calls still needed to page ``total`` records once the first page is in.

    Past the cap, each split costs the first page of both halves again; the estimate counts the
    halves of an even split, enough to compare with one call a day.
    """
    calls = math.ceil(total / PAGE_LIMIT) - 1
    if total > RESULT_CAP:
        calls += 2 * math.ceil(total / RESULT_CAP)
    return max(calls, 0)


def currency_properties(obj: str, summed: Sequence[str]) -> dict[str, str]:
    """Summed property -> the property naming its currency, where one sum can mix currencies.

    Only a deal's ``amount`` does: it is what a user sums first, and adding EUR to USD gives a
    figure in no currency at all. Asked only then, so other searches stay as lean as before.
    """
    return {"amount": CURRENCY_CODE} if obj == "deals" and "amount" in summed else {}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _day_start(day: date, zone: tzinfo) -> int:
    return _ms(datetime(day.year, day.month, day.day, tzinfo=zone))


def _day_of(raw: Any, zone: tzinfo) -> date | None:
    """The day a HubSpot date value falls on: ISO datetimes, plain dates and epoch milliseconds."""
    text = str(raw).strip() if raw is not None else ""
    if not text:
        return None
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text) / 1000, UTC).astimezone(zone).date()
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).date()


def _number(raw: Any) -> float | str | None:
    """HubSpot sends numbers as strings ("1500.50"); blank means no value, else the reason."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        return float(str(raw).strip())
    except ValueError:
        return f"`{str(raw)[:40]}` is not a number"


def tally(
    members: list[MetricQuery],
    records: list[dict[str, Any]],
    date_property: str,
    window: Window,
    zone: tzinfo,
    warnings: list[str],
    currencies: Mapping[str, str] | None = None,
) -> list[DailyValue]:
    """Count the records of each day, and sum each summed property over them.

    ``currencies`` maps a summed property to the one naming each record's currency: a sum
    over records in more than one currency is kept, with a warning saying what to sum instead.
    """
    counts: dict[date, int] = {}
    sums: dict[tuple[str, date], float] = {}
    bad: list[str] = []
    codes: dict[str, set[str]] = {}
    # Each property once, however many mappings sum it: they share the figure, not add to it.
    summed = sorted({q.params.property for q in members if isinstance(q.params, SumParams)})
    for record in records:
        props = record.get("properties") or {}
        day = _day_of(props.get(date_property), zone)
        if day is None or day not in window:
            continue  # outside the bounds asked: HubSpot wouldn't send it, a proxy might
        counts[day] = counts.get(day, 0) + 1
        for name in summed:
            number = _number(props.get(name))
            if isinstance(number, str):
                bad.append(f"{name} of record {record.get('id')}: {number}")
            elif number is not None:
                sums[name, day] = sums.get((name, day), 0.0) + number
                code = str(props.get((currencies or {}).get(name, "")) or "").strip()
                if code:  # blank: the account's only currency, or not asked
                    codes.setdefault(name, set()).add(code.upper())
    for reason in sorted(set(bad))[:20]:
        warnings.append(f"HubSpot sent a value that can't be summed: {reason}")
    for name, found in sorted(codes.items()):
        if len(found) > 1:
            warnings.append(
                f"HubSpot's `{name}` values summed here are in {len(found)} currencies "
                f"({', '.join(sorted(found))}) and were added up as they are: sum "
                f"`{HOME_AMOUNT}` (Amount in company currency) to get one currency"
            )
    values: list[DailyValue] = []
    for query in members:
        for day in sorted(counts):
            if isinstance(query.params, SumParams):
                values.append(
                    DailyValue(query.id, day, sums.get((query.params.property, day), 0.0))
                )
            else:
                values.append(DailyValue(query.id, day, float(counts[day])))
    return values


@dataclass
class Plan:
    """How one shared search was answered, kept on the run for whoever wonders about calls."""

    search: Search
    kind: Literal["paged", "per_day"] = "paged"
    total: int = 0
    calls: int = 0
