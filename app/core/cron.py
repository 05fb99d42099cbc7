"""A source's `schedule` (standard 5-field crontab) as an APScheduler 3 trigger that means the same.

APScheduler 3's `CronTrigger.from_crontab` reads the weekday field counting from Monday = 0
(its issue #286, fixed only in 4.x), so "0 9 * * 1-5" would fire Tuesday to Saturday; and it
fires when the day of the month *and* the weekday match, where cron fires when either does.
Both are translated here, once, for everyone who reads a schedule (scheduler, freshness, API).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

#: crontab numbering: 0 (and 7) is Sunday
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: How far back to look for a firing (a 29 February schedule fires every 4 years).
_LONGEST_GAP = timedelta(days=8 * 366)


def cron_trigger(schedule: str, timezone: str) -> Any:
    """Raises ValueError for a bad expression and LookupError for an unknown timezone."""
    fields = schedule.split()
    if len(fields) != 5:
        raise ValueError(f"Wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, day, month, weekday = fields
    weekdays = _weekdays(weekday)

    # What the one trigger or both halves of the OR have alike: all but the two day fields.
    alike = {"minute": minute, "hour": hour, "month": month, "timezone": timezone}

    def cron(day: str, day_of_week: str) -> CronTrigger:
        return CronTrigger(day=day, day_of_week=day_of_week, **alike)

    if day != "*" and weekdays != "*":
        return OrTrigger([cron(day, "*"), cron("*", weekdays)])
    return cron(day, weekdays)


def _weekdays(field: str) -> str:
    """The crontab weekday field as APScheduler weekday names ("1-5" → "mon,tue,wed,thu,fri")."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for item in field.lower().split(","):
        part, slash, step_text = item.partition("/")
        step = int(step_text) if slash else 1
        if part == "*":
            first, last = 0, 6
        elif "-" in part:
            start, _, end = part.partition("-")
            first, last = _day(start), _day(end)
        else:
            first = _day(part)
            last = 7 if slash else first  # "1/2": from Monday to the end of the week
        if step < 1 or first > last:
            raise ValueError(f"Error validating weekday expression {item!r}")
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(_DAYS[d] for d in sorted(days))


def _day(token: str) -> int:
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token in _DAYS:
        return _DAYS.index(token)
    raise ValueError(f"Invalid weekday {token!r} (use 0-7 or sun-sat)")


def previous_fire_time(trigger: Any, now: datetime) -> datetime | None:
    """The trigger's latest firing at or before `now` (APScheduler 3 only looks forward).

    The look-back doubles until it holds a firing, so it walks no more than a couple of
    firings, however dense or sparse the schedule.
    """
    span = timedelta(minutes=1)
    while span <= _LONGEST_GAP:
        fire: datetime | None = trigger.get_next_fire_time(None, now - span)
        if fire is not None and fire <= now:
            while True:
                following: datetime | None = trigger.get_next_fire_time(
                    None, fire + timedelta(seconds=1)
                )
                if following is None or following > now:
                    return fire
                fire = following
        span *= 2
    return None
