"""GA4's refusals as the engine needs them: the 400 that fails one mapping only, how long the
engine's client may wait on a 429, and the message naming a metric or dimension a property
lacks."""

from __future__ import annotations

import difflib
import math

import httpx
from google.api_core import exceptions as gexc

from connectors.base import ConnectorConfigError, parse_retry_after, retry_after


class _BadRequest(ConnectorConfigError):
    """A 400: a mapping the property can't answer; ``fetch`` fails that mapping only."""


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
