"""The key-result page's chart of the cycle, laid out in Python and drawn by the template as SVG.

The page allows no script and no inline style, so every mark is an SVG element with its
coordinates as attributes and its look from a class of the stylesheet. What is drawn is what
progress counts: the running total for `sum`, the running ratio for `ratio`, else the day's level.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

#: The wide chart is drawn near its own size on a desktop; the narrow one on a phone, where the
#: wide one would shrink its labels to a few pixels (the stylesheet shows one or the other).
WIDE = (960, 320)
NARROW = (360, 260)
LEFT, RIGHT, TOP, BOTTOM = 56, 14, 14, 36


@dataclass(frozen=True)
class Mark:
    x: float
    y: float
    day: date
    value: float
    provisional: bool


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right: float
    top: int
    bottom: float
    marks: list[Mark]
    #: "x,y x,y" of the settled days, then of the provisional ones (from the last settled mark).
    path: str
    provisional_path: str
    pace: Line | None
    target: Line | None
    forecast: Line | None
    today: float | None
    provisional_band: tuple[float, float] | None
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    cumulative: bool


@dataclass(frozen=True)
class DayValue:
    day: date
    group: str
    role: str
    value: float
    provisional: bool


def daily_line(aggregation: str, rows: Iterable[DayValue]) -> list[tuple[date, float, bool]]:
    """One value a day, as progress reduces them: groups added, running total or ratio."""
    by_day: dict[date, dict[str, float]] = {}
    provisional: dict[date, bool] = {}
    for r in rows:
        slot = by_day.setdefault(r.day, {})
        slot[r.role] = slot.get(r.role, 0.0) + r.value
        provisional[r.day] = provisional.get(r.day, False) or r.provisional
    line: list[tuple[date, float, bool]] = []
    total = numerator = denominator = 0.0
    for day in sorted(by_day):
        slot = by_day[day]
        if aggregation == "sum":
            total += slot.get("value", 0.0)
            value = total
        elif aggregation == "ratio":
            numerator += slot.get("numerator", 0.0)
            denominator += slot.get("denominator", 0.0)
            if denominator == 0:
                continue
            value = numerator / denominator
        elif "value" in slot:
            value = slot["value"]
        else:
            continue
        line.append((day, value, provisional[day]))
    return line


def _nice_step(span: float, count: int) -> float:
    raw = span / count
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 2.5, 5.0):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10.0 * magnitude


def _months(start: date, end: date, gap: int) -> list[date]:
    """The cycle's first day, each month's first, and its last, none closer than `gap` days."""
    days = [start]
    month = date(start.year, start.month, 1)
    while True:
        month = (month + timedelta(days=32)).replace(day=1)
        if month > end:
            break
        if (month - days[-1]).days >= gap:
            days.append(month)
    if (end - days[-1]).days >= gap:
        days.append(end)
    return days


def build(
    *,
    start: date,
    end: date,
    as_of: date,
    line: Sequence[tuple[date, float, bool]],
    aggregation: str,
    direction: str,
    start_value: float | None,
    target_value: float | None,
    forecast_value: float | None,
    provisional_from: date | None,
    number: Callable[[float], str] = str,
    size: tuple[int, int] = WIDE,
    x_days: Sequence[date] | None = None,
) -> Chart:
    """`number` formats the value axis as the rest of the page writes figures; `x_days` are
    the days labelled under it (the months of a cycle unless given: a few weeks want weeks)."""
    shown = [p for p in line if start <= p[0] <= end]
    values = [v for _, v, _ in shown]
    for extra in (start_value, target_value, forecast_value):
        if extra is not None and math.isfinite(extra):
            values.append(extra)
    low = min([0.0, *values])
    high = max([*values, low + 1.0])
    width, height = size
    step = _nice_step(high - low, 4 if height > 300 else 3)
    low = math.floor(low / step) * step
    high = math.ceil(high / step) * step
    right, bottom = width - RIGHT, height - BOTTOM
    days = max((end - start).days, 1)

    def x(day: date) -> float:
        return round(LEFT + (right - LEFT) * (day - start).days / days, 1)

    def y(value: float) -> float:
        return round(bottom - (bottom - TOP) * (value - low) / (high - low), 1)

    marks = [Mark(x(d), y(v), d, v, p) for d, v, p in shown]
    settled = [m for m in marks if not m.provisional]
    unsettled = [m for m in marks if m.provisional]
    if unsettled and settled and settled[-1].day < unsettled[0].day:
        unsettled = [settled[-1], *unsettled]
    pace = None
    if (
        direction in ("increase", "decrease")
        and start_value is not None
        and target_value is not None
    ):
        pace = Line(x(start), y(start_value), x(end), y(target_value))
    target = None if target_value is None else Line(LEFT, y(target_value), right, y(target_value))
    forecast = None
    if forecast_value is not None and marks and marks[-1].day < end:
        last = marks[-1]
        forecast = Line(last.x, last.y, x(end), y(forecast_value))
    band = None
    if provisional_from is not None and marks:
        band = (x(max(provisional_from, start)), max(marks[-1].x, x(provisional_from)) + 4)
    y_ticks = []
    tick = low
    while tick <= high + step / 2:
        y_ticks.append(Tick(y(tick), number(tick)))
        tick += step
    return Chart(
        width=width,
        height=height,
        left=LEFT,
        right=right,
        top=TOP,
        bottom=bottom,
        marks=marks,
        path=" ".join(f"{m.x},{m.y}" for m in settled),
        provisional_path=" ".join(f"{m.x},{m.y}" for m in unsettled),
        pace=pace,
        target=target,
        forecast=forecast,
        today=x(as_of) if start <= as_of <= end else None,
        provisional_band=band,
        x_ticks=[
            Tick(x(d), d.strftime("%b %-d"))
            for d in (
                x_days if x_days is not None else _months(start, end, 10 if width > 600 else 25)
            )
        ],
        y_ticks=y_ticks,
        cumulative=aggregation == "sum",
    )
