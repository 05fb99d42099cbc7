"""The property's tokens as GA4 reports them, kept over a fetch so it can slow down while they
run low and stop before Google refuses a call it can't pay for."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from google.analytics.data_v1beta import types as ga

from connectors.base import ConnectorError

#: Pauses once tokens run low: the property's other users (dashboards) need some too.
LOW_HOURLY_TOKENS = 2_000  # 5 % of a standard property's 40,000 an hour
LOW_DAILY_TOKENS = 10_000  # 5 % of a standard property's 200,000 a day
#: Google says exhausted hourly tokens "return in under an hour".
HOURLY_QUOTA_WAIT = 3600.0
_QUOTAS = (
    "tokens_per_day",
    "tokens_per_hour",
    "tokens_per_project_per_hour",
    "concurrent_requests",
    "server_errors_per_project_per_hour",
    "potentially_thresholded_requests_per_hour",
)


class DailyQuotaExhausted(ConnectorError):
    """The property's tokens for the day are spent: no retry today can succeed."""


@dataclass
class QuotaLog:
    """Tokens as GA4 reports them: consumed summed over calls, the latest ``remaining``."""

    consumed: dict[str, int] = field(default_factory=dict)
    remaining: dict[str, int] = field(default_factory=dict)
    last_call_cost: int = 0
    slowed_down: bool = False

    def record(self, reports: Iterable[ga.RunReportResponse]) -> None:
        """One call's reports; each tells the property's state, so the largest cost counts."""
        consumed: dict[str, int] = {}
        remaining: dict[str, int] = {}
        for report in reports:
            if "property_quota" not in report:
                continue
            for name in _QUOTAS:
                if name not in report.property_quota:
                    continue
                status = getattr(report.property_quota, name)
                consumed[name] = max(consumed.get(name, 0), status.consumed)
                remaining[name] = min(remaining.get(name, status.remaining), status.remaining)
        for name, tokens in consumed.items():
            self.consumed[name] = self.consumed.get(name, 0) + tokens
        self.remaining.update(remaining)
        self.last_call_cost = max(self.last_call_cost, consumed.get("tokens_per_hour", 0))

    def hourly_left(self) -> int | None:
        """The property's hourly tokens, or this project's share of them, whichever is lower."""
        left = [
            self.remaining[n]
            for n in ("tokens_per_hour", "tokens_per_project_per_hour")
            if n in self.remaining
        ]
        return min(left) if left else None

    def details(self) -> dict[str, Any]:
        names = [n for n in _QUOTAS if n in self.consumed or n in self.remaining]
        return {
            **{
                n: {"consumed": self.consumed.get(n, 0), "remaining": self.remaining.get(n)}
                for n in names
            },
            "slowed_down": self.slowed_down,
        }
