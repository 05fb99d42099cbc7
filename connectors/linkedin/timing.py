"""LinkedIn's clock: the epoch milliseconds that bound a day in ``timeIntervals``, and the wait
until its daily request limits reset at midnight UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta


def _ms(day: date) -> int:
    return int(datetime.combine(day, time(), UTC).timestamp() * 1000)


def _seconds_to_midnight_utc(now: datetime) -> float:
    tomorrow = datetime.combine(now.date() + timedelta(days=1), time(), UTC)
    return max(1.0, (tomorrow - now).total_seconds())
