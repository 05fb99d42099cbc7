"""Rate-limit headers of the ``{prefix}limit`` / ``-remaining`` / ``-reset`` kind, read once for
every platform that sends them (Pipedrive's ``x-ratelimit-``, X's ``x-rate-limit-``).

Platforms agree on the names and differ on two things only: whether ``-reset`` is an instant in
Unix seconds or seconds from now, and how long a spent window is held. A connector states those
and gets the three readers the engine's client and the classifier take: the :class:`Hold` a
spent window asks for (``HttpOptions.pace``), the wait before a refused call is retried
(``HttpOptions.retry_after``, ``Classifier.wait``), and the figures a run keeps.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.base import Hold, as_number, limit_headers, parse_retry_after


@dataclass(frozen=True)
class RateHeaders:
    """One platform's rate-limit headers and what a spent window asks of the source."""

    prefix: str
    #: Why a spent window holds the source, in the platform's terms; ``{until}`` is the reset
    #: as an ISO instant.
    reason: str
    #: ``-reset`` is an instant in Unix seconds (X), not seconds from now (Pipedrive).
    epoch: bool = False
    #: Seconds a spent window holds when no ``-reset`` says; None: no hold without one.
    unnamed: float | None = None
    #: The longest hold; a later reset is held this long only.
    cap: float = math.inf
    #: Only a success's headers hold the source: a refusal's wait is the client's retry.
    successes_only: bool = False

    def reset_in(self, response: httpx.Response, now: float | None = None) -> float | None:
        """Seconds from ``now`` (Unix seconds) until ``-reset``, never negative; None without
        a readable one."""
        reset = as_number(response.headers.get(f"{self.prefix}reset"))
        if reset is None or not math.isfinite(reset):
            return None
        if self.epoch:
            reset -= time.time() if now is None else now
        return max(0.0, reset)

    def pace(self, response: httpx.Response) -> Hold | None:
        """``-remaining: 0``: no call of the source leaves until the reset (a :data:`Pacer`)."""
        remaining = as_number(response.headers.get(f"{self.prefix}remaining"))
        if remaining is None or remaining > 0 or (self.successes_only and not response.is_success):
            return None
        now = time.time()
        seconds = self.reset_in(response, now)
        if seconds is None:
            seconds = self.unnamed
        if seconds is None:
            return None
        reason = self.reason
        if "{until}" in reason:
            at = as_number(response.headers.get(f"{self.prefix}reset")) if self.epoch else None
            until = datetime.fromtimestamp(at if at is not None else now + seconds, UTC)
            reason = reason.format(until=until.isoformat())
        return Hold(min(seconds, self.cap), reason)

    def wait(self, response: httpx.Response) -> float | None:
        """What a refused call waits before its retry: ``Retry-After`` when sent, else the
        reset."""
        asked = parse_retry_after(response.headers.get("Retry-After"))
        return asked if asked is not None else self.reset_in(response)

    def figures(self, response: httpx.Response) -> dict[str, Any]:
        """The headers' figures, for the run to keep: an instant reset as its ISO time; a reset
        in seconds from now is stale once kept, so it is left out."""
        found: dict[str, Any] = limit_headers(response, self.prefix)
        if "reset" in found and self.epoch:
            found["reset"] = datetime.fromtimestamp(found["reset"], UTC).isoformat()
        elif "reset" in found:
            del found["reset"]
        return found
