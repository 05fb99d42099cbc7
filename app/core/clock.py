"""The one clock: what "now" and "today" are, for the API, the pages, the engine and the CLI.

Everything reads time through this module (``clock.utcnow()``, ``clock.today()``,
``clock.today_in(tz)``), so a test that moves :func:`utcnow` moves every "today" with it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    """The server's calendar day: what progress reads, check-ins and closings count as today."""
    return utcnow().astimezone().date()


def today_in(timezone: str) -> date:
    """The calendar day the platform is living in: days are the source's, not the server's."""
    return utcnow().astimezone(ZoneInfo(timezone)).date()
