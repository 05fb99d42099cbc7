"""The property's tokens as GA4 reports them, kept over a fetch so it can slow down while they
run low and stop before Google refuses a call it can't pay for."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from google.analytics.data_v1beta import types as ga

from connectors.base import ConnectorError, FetchResult, RateLimited

#: Pauses once tokens run low: the property's other users (dashboards) need some too.
LOW_HOURLY_TOKENS = 2_000  # 5 % of a standard property's 40,000 an hour
LOW_DAILY_TOKENS = 10_000  # 5 % of a standard property's 200,000 a day
#: Google says exhausted hourly tokens "return in under an hour".
HOURLY_QUOTA_WAIT = 3600.0
_HOURLY = ("tokens_per_hour", "tokens_per_project_per_hour")
#: The ``propertyQuota`` fields, in the order the details list them.
_QUOTAS = (
    "tokens_per_day tokens_per_hour tokens_per_project_per_hour concurrent_requests"
    " server_errors_per_project_per_hour potentially_thresholded_requests_per_hour"
).split()


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
            quota = report.property_quota if "property_quota" in report else None
            for name in (n for n in _QUOTAS if quota is not None and n in quota):
                status = getattr(quota, name)
                consumed[name] = max(consumed.get(name, 0), status.consumed)
                remaining[name] = min(remaining.get(name, status.remaining), status.remaining)
        for name, tokens in consumed.items():
            self.consumed[name] = self.consumed.get(name, 0) + tokens
        self.remaining.update(remaining)
        self.last_call_cost = max(self.last_call_cost, consumed.get("tokens_per_hour", 0))

    async def before_call(self, pid: str, result: FetchResult, pause: float) -> None:
        """Stop if the next call can't be paid for, pause if tokens run low."""
        cost = max(self.last_call_cost, 1)
        # The property's hourly tokens, or this project's share of them, whichever is lower.
        hourly = min((self.remaining[n] for n in _HOURLY if n in self.remaining), default=None)
        daily = self.remaining.get("tokens_per_day")
        if daily is not None and daily < cost:
            raise DailyQuotaExhausted(
                f"GA4 property {pid} has {daily} tokens left today, fewer than the next "
                f"request needs (~{cost}): the run stops here; the tokens return tomorrow"
            )
        if hourly is not None and hourly < cost:
            raise RateLimited(
                f"GA4 property {pid} has {hourly} tokens left this hour, fewer than the "
                f"next request needs (~{cost}): stopped before being refused",
                HOURLY_QUOTA_WAIT,
            )
        if (hourly is None or hourly >= LOW_HOURLY_TOKENS) and (
            daily is None or daily >= LOW_DAILY_TOKENS
        ):
            return
        if not self.slowed_down:
            self.slowed_down = True
            known = ((hourly, "this hour"), (daily, "today"))
            left = [f"{n} left {when}" for n, when in known if n is not None]
            result.warnings.append(
                f"GA4 property {pid} is low on tokens ({', '.join(left)}): krsync "
                "slowed down to leave some for the property's other users"
            )
        await asyncio.sleep(pause)

    def details(self) -> dict[str, Any]:
        named = [n for n in _QUOTAS if n in self.consumed or n in self.remaining]
        quotas = {
            n: {"consumed": self.consumed.get(n, 0), "remaining": self.remaining.get(n)}
            for n in named
        }
        return quotas | {"slowed_down": self.slowed_down}
