"""GA4's refusals as the engine needs them: the 400 that fails one mapping only, how long the
engine's client may wait on a 429, and the message naming a metric or dimension a property
lacks."""

from __future__ import annotations

import difflib
import math

import httpx
from google.api_core import exceptions as gexc

from connectors.base import (
    ConnectorConfigError,
    RateLimited,
    RetriableError,
    parse_retry_after,
    retry_after,
)
from connectors.errors import Classifier, Hint, Refusal
from connectors.ga4.quota import HOURLY_QUOTA_WAIT, DailyQuotaExhausted
from connectors.google_auth import google_hints


class _BadRequest(ConnectorConfigError):
    """A 400: a mapping the property can't answer; ``fetch`` fails that mapping only."""


def _quota(refusal: Refusal) -> Exception | None:
    """A property's tokens for the day or the hour are used up: no retry within the run helps
    the first, the second waits for the hour."""
    pid, lowered = refusal.fields["pid"], refusal.said.lower()
    if "per day" in lowered:
        return DailyQuotaExhausted(
            f"GA4 property {pid} has used all its tokens for today ({refusal.said}): the run "
            "fails; the tokens return tomorrow, fewer or lighter mappings use fewer"
        )
    if "per hour" in lowered:
        return RateLimited(
            f"GA4 property {pid} has used its tokens for this hour ({refusal.said})",
            HOURLY_QUOTA_WAIT,
        )
    return None


_ERRORS = Classifier(
    "GA4",
    {
        **google_hints("GA4", "Google Analytics Data"),
        403: "the credentials have no access to GA4 property {pid} ({said}): in GA4 Admin > "
        "Property access management, give the service account's `client_email` (or the "
        "authorizing user) at least the Viewer role",
        404: "GA4 has no property {pid} ({said}): check `property_id` (Admin > Property "
        "details, the numeric ID)",
        429: _quota,
        "rate_limited": "GA4 asks to slow down ({said})",
        400: Hint("{said}", _BadRequest),
        # 409 ABORTED: Google says retry
        (409, "retriable"): Hint("GA4 is having trouble ({status} {said})", RetriableError),
        "config": "GA4 refused the request ({status} {said})",
    },
)


def _client_wait(response: httpx.Response) -> float | None:
    """What the engine's client waits before retrying: a 429 for exhausted property tokens
    won't clear within a retry (an hour, or tomorrow), so it goes straight to the connector."""
    if response.status_code == 429:
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        message = str(error.get("message", "")) if isinstance(error, dict) else ""
        if "per day" in message.lower() or "per hour" in message.lower():
            return math.inf
    return retry_after(response)


def _retry_after(exc: gexc.GoogleAPICallError) -> float | None:
    response = getattr(exc, "response", None)
    return parse_retry_after(response.headers.get("Retry-After")) if response is not None else None


def _unknown(kind: str, name: str, known: set[str], pid: str) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=3)
    hint = f"; did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
    return f"GA4 property {pid} has no {kind} `{name}`{hint}"
