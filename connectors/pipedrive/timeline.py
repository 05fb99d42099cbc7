"""Pipedrive's deals timeline read back into daily values: which totals a status reads, and how
a period's counts and (converted or single-currency) values become figures (where a change in
the timeline's answer would show)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.base import (
    DailyValue,
    FetchResult,
    Mask,
    MetricQuery,
    RetriableError,
    Window,
    as_number,
    excerpt,
)
from connectors.pipedrive.models import DealsParams
from connectors.series import iso_day

TIMELINE = "/api/v1/deals/timeline"
#: Pipedrive documents no cap on ``amount``; a quarter a call keeps a cycle's backfill to one.
MAX_DAYS = 92

#: status -> (count key in ``totals``, values-by-currency key in ``totals``, converted key).
_TOTALS = {
    None: ("count", "values", "value"),
    "open": ("open_count", "open_values", "open_value"),
    "won": ("won_count", "won_values", "won_value"),
}


def _number(raw: Any) -> float | None:
    """Pipedrive may group thousands with commas in a string figure ("12,500")."""
    return as_number(raw.replace(",", "") if isinstance(raw, str) else raw)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list of something else"
    return "null" if value is None else f"a {type(value).__name__}"


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
    if "data" not in body:
        what = "without `data`"
    else:
        data = body["data"]
        if data is None and body.get("success") is True:
            return []
        if isinstance(data, list) and data and all(isinstance(p, dict) for p in data):
            return data
        what = f"with `data` as {'an empty list' if data == [] else _kind(data)}"
    raise RetriableError(
        f"Pipedrive's deals timeline answered {what}, not the list of periods asked for: "
        "nothing was written, the next run asks again"
    )


def _read(
    period: Any,
    group: Sequence[MetricQuery],
    window: Window,
    result: FetchResult,
    currencies: set[str],
) -> None:
    if not isinstance(period, dict):
        return
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
    if not isinstance(values, dict):
        return None
    if len(values) == 1:
        [(currency, amount)] = values.items()
        currencies.add(str(currency))
        return _number(amount)
    return None
