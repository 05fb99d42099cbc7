"""Schedules read as crontab reads them, though APScheduler 3 counts weekdays from Monday."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.core.cron import cron_trigger, previous_fire_time


def _firings(schedule: str, timezone: str, start: str, count: int) -> list[str]:
    trigger = cron_trigger(schedule, timezone)
    moment = datetime.fromisoformat(start)
    out: list[str] = []
    for _ in range(count):
        moment = trigger.get_next_fire_time(None, moment)
        out.append(moment.strftime("%a %d %H:%M"))
        moment += timedelta(seconds=1)
    return out


@pytest.mark.parametrize(
    ("weekday", "expected"),
    [
        # 2026-08-16 is a Sunday
        ("1-5", ["Mon 17", "Tue 18", "Wed 19", "Thu 20", "Fri 21", "Mon 24"]),
        ("0", ["Sun 16", "Sun 23", "Sun 30", "Sun 06", "Sun 13", "Sun 20"]),
        ("7", ["Sun 16", "Sun 23", "Sun 30", "Sun 06", "Sun 13", "Sun 20"]),
        ("5-7", ["Sun 16", "Fri 21", "Sat 22", "Sun 23", "Fri 28", "Sat 29"]),
        ("*/2", ["Sun 16", "Tue 18", "Thu 20", "Sat 22", "Sun 23", "Tue 25"]),
        ("mon,WED", ["Mon 17", "Wed 19", "Mon 24", "Wed 26", "Mon 31", "Wed 02"]),
        ("sun-tue", ["Sun 16", "Mon 17", "Tue 18", "Sun 23", "Mon 24", "Tue 25"]),
    ],
)
def test_weekdays_count_from_sunday_as_in_crontab(weekday: str, expected: list[str]) -> None:
    got = _firings(f"0 9 * * {weekday}", "UTC", "2026-08-16T00:00:00+00:00", 6)
    assert [g[:6] for g in got] == expected


def test_day_of_month_or_weekday_fires_on_either_as_in_crontab() -> None:
    # the 1st and the 15th, and every Friday
    got = _firings("0 6 1,15 * 5", "UTC", "2026-08-10T00:00:00+00:00", 4)
    assert [g[:6] for g in got] == ["Fri 14", "Sat 15", "Fri 21", "Fri 28"]


@pytest.mark.parametrize("schedule", ["0 3 * *", "0 25 * * *", "0 3 * * 8", "0 3 * * 5-1", "x"])
def test_bad_expressions_are_value_errors(schedule: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any wording; the type is the contract
        cron_trigger(schedule, "UTC")


def test_an_unknown_timezone_is_a_lookup_error() -> None:
    with pytest.raises(LookupError):
        cron_trigger("0 3 * * *", "Mars/Olympus")


@pytest.mark.parametrize(
    ("schedule", "timezone", "now", "expected"),
    [
        # 03:00 in Paris is 01:00 UTC in summer time, 02:00 in winter
        ("0 3 * * *", "Europe/Paris", "2026-08-16T12:00Z", "2026-08-16T01:00Z"),
        ("0 3 * * *", "Europe/Paris", "2026-08-16T00:30Z", "2026-08-15T01:00Z"),
        ("0 3 * * *", "Europe/Paris", "2026-01-16T12:00Z", "2026-01-16T02:00Z"),
        # a firing at exactly now is the current slot
        ("0 3 * * *", "UTC", "2026-08-16T03:00Z", "2026-08-16T03:00Z"),
        ("*/5 * * * *", "UTC", "2026-08-16T12:07:30Z", "2026-08-16T12:05Z"),
        # Sunday noon: weekdays at 09:00 New York last fired on Friday
        ("0 9 * * 1-5", "America/New_York", "2026-08-16T12:00Z", "2026-08-14T13:00Z"),
        ("0 0 29 2 *", "UTC", "2026-08-16T12:00Z", "2024-02-29T00:00Z"),
    ],
)
def test_previous_fire_time_is_the_latest_firing_at_or_before_now(
    schedule: str, timezone: str, now: str, expected: str
) -> None:
    fire = previous_fire_time(cron_trigger(schedule, timezone), datetime.fromisoformat(now))
    assert fire is not None
    assert fire.astimezone(UTC) == datetime.fromisoformat(expected)
