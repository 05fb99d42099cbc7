"""The engine's clock, in one place so tests can move time."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    return datetime.now(UTC)


def today_in(timezone: str) -> date:
    """The calendar day the platform is living in: days are the source's, not the server's."""
    return utcnow().astimezone(ZoneInfo(timezone)).date()
