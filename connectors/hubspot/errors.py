"""How HubSpot's answers become krsync's errors, and what its rate-limit headers ask.

HubSpot says what went wrong in a JSON body (``category``, ``policyName``, the scopes missing)
and what is left of its quotas in ``X-HubSpot-RateLimit-*`` headers; reading both is apart from
the connector so the rules for a 403 or a 429 can be read in one place.
"""

from __future__ import annotations

import math
from typing import Any

import httpx

from connectors.base import (
    ConnectorAuthError,
    ConnectorConfigError,
    Hold,
    Mask,
    RateLimited,
    RetriableError,
    retry_after,
)
from connectors.errors import Classifier, Hint, Hints, Refusal

SEARCHES_PER_SECOND = 4.0
#: Longest wait the rate-limit headers may impose between two calls.
MAX_HEADER_WAIT = 10.0
#: Wait for a rolling-window 429 that says neither Retry-After nor its interval.
ROLLING_WAIT = 10.0
_READ_SCOPES = {
    "contacts": "crm.objects.contacts.read",
    "companies": "crm.objects.companies.read",
    "deals": "crm.objects.deals.read",
    "tickets": "tickets",
}


class MissingScope(ConnectorAuthError):
    """The token can't read one object: only that object's mappings are lost."""


class SearchRefused(ConnectorConfigError):
    """HubSpot refused one search (an unknown property, a bad value): only its mappings fail."""


_LIMIT_HEADERS = {
    "max": "X-HubSpot-RateLimit-Max",
    "remaining": "X-HubSpot-RateLimit-Remaining",
    "interval_ms": "X-HubSpot-RateLimit-Interval-Milliseconds",
    "secondly_remaining": "X-HubSpot-RateLimit-Secondly-Remaining",
    "daily": "X-HubSpot-RateLimit-Daily",
    "daily_remaining": "X-HubSpot-RateLimit-Daily-Remaining",
}


def _limits(response: httpx.Response) -> dict[str, int]:
    """The quota figures of ``X-HubSpot-RateLimit-*`` an answer carries, kept on the run."""
    seen: dict[str, int] = {}
    for key, header in _LIMIT_HEADERS.items():
        raw = response.headers.get(header, "").strip()
        if raw.isdigit():
            seen[key] = int(raw)
    return seen


def _pace(response: httpx.Response) -> Hold | None:
    """Nothing left in the rolling window: hold for its interval; nothing left this second:
    for a second. The daily quota is not held for: its 429 fails the run (see ``_error``)."""
    seen = _limits(response)
    pause = 0.0
    if seen.get("remaining") == 0:
        pause = seen.get("interval_ms", 10_000) / 1000
    if seen.get("secondly_remaining") == 0:
        pause = max(pause, 1.0)
    if not pause:
        return None
    return Hold(min(pause, MAX_HEADER_WAIT), "HubSpot says no call is left in its rate window")


def _error(
    response: httpx.Response, obj: str | None, *, uses_oauth: bool, mask: Mask | None
) -> Exception:
    return _ERRORS(response, mask, hints=_OAUTH_REFUSED if uses_oauth else None, obj=obj)


def _words(response: httpx.Response, body: Any) -> tuple[tuple[str, ...], str]:
    """HubSpot's ``message`` (else the body), after the status, as its errors quote it."""
    message = body.get("message") if isinstance(body, dict) else None
    text = str(message) if message else response.text
    return (), f"{response.status_code}: {text}" if text.strip() else str(response.status_code)


def _forbidden(refusal: Refusal) -> Exception:
    body = refusal.body if isinstance(refusal.body, dict) else {}
    obj = refusal.fields.get("obj")
    scopes: list[str] = []
    for error in body.get("errors") or []:
        context = error.get("context") if isinstance(error, dict) else None
        for key in ("requiredGranularScopes", "requiredScopes"):
            found = context.get(key) if isinstance(context, dict) else None
            scopes += [str(s) for s in found or [] if str(s) not in scopes]
    if not scopes and obj in _READ_SCOPES:
        scopes = [_READ_SCOPES[obj]]
    if body.get("category") == "MISSING_SCOPES" or scopes:
        what = f"read HubSpot {obj}" if obj else "make this call"
        needed = " or ".join(f"`{s}`" for s in scopes) or "the scope this call needs"
        return MissingScope(
            f"the HubSpot token lacks the scope {needed} to {what}: add it under the "
            "private app's Scopes (Settings > Integrations > Private apps), or reinstall the "
            "OAuth app with it, then sync again"
        )
    return ConnectorAuthError(f"HubSpot refused access ({refusal.said}): check the token's scopes")


def _slow_down(refusal: Refusal) -> Exception:
    body = refusal.body if isinstance(refusal.body, dict) else {}
    policy = refusal.quote(str(body.get("policyName") or ""))
    if "DAILY" in policy.upper():
        return RetriableError(
            f"HubSpot's daily API limit for this account is used up ({policy}): it "
            "resets at midnight in the account's timezone, and every app of the account "
            "shares it; the next run tries again"
        )
    what = policy or "rate limit"
    return RateLimited(f"HubSpot asks to slow down ({what}): {refusal.said}", refusal.retry_after)


def _client_wait(response: httpx.Response) -> float | None:
    """What the engine's client waits before retrying: never, for the ``DAILY`` policy (each
    retry would only burn tomorrow's quota); otherwise HubSpot's own interval."""
    if response.status_code != 429:
        return retry_after(response)
    try:
        body = response.json()
    except ValueError:
        body = None
    policy = str(body.get("policyName") or "") if isinstance(body, dict) else ""
    return math.inf if "DAILY" in policy.upper() else _retry_after(response)


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` when sent, else the rate-limit interval, else a rolling window's length."""
    asked = retry_after(response)
    if asked is not None:
        return asked
    interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds", "").strip()
    return int(interval) / 1000 if interval.isdigit() else ROLLING_WAIT


_ERRORS = Classifier(
    "HubSpot",
    {
        401: "HubSpot refused the private app's access token ({said}): check `access_token`, "
        "or copy a new one from Settings > Integrations > Private apps",
        403: _forbidden,
        429: _slow_down,
        (400, 422): Hint("HubSpot refused the request ({said})", SearchRefused),
        404: Hint("HubSpot has nothing at that address ({said}): check `base_url`", SearchRefused),
        "retriable": "HubSpot is having trouble ({said})",
        "config": "HubSpot refused the request ({said})",
    },
    read=_words,
    wait=_retry_after,
)
_OAUTH_REFUSED: Hints = {
    401: "HubSpot refused the OAuth access token even after a refresh ({said}): reconnect the "
    "HubSpot app to get a new `refresh_token`"
}
