"""Graph API calls: one GET, Meta's usage headers read after it, and its error codes classified.

The connector's base class, so the usage seen (``_usage``, for the run) and the redacted,
classified errors are in one place; the connector calls ``_get`` and ``_details``.
What the usage headers ask of the next calls is :func:`_pace`'s, applied by the engine's client.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from connectors.base import (
    Connector,
    ConnectorAuthError,
    ConnectorConfigError,
    Hold,
    RateLimited,
    RetriableError,
)
from connectors.errors import Classifier, Hint, Refusal
from connectors.meta.models import (
    INVALID_METRIC,
    NO_SUCH_OBJECT_SUBCODE,
    PERMISSIONS,
    RATE_LIMIT_CODES,
    USAGE_PAUSE_SECONDS,
    USAGE_SLOWDOWN,
    MetaConfig,
    MetaCredentials,
    Scope,
    _number,
)


class _InvalidMetric(ConnectorConfigError):
    """Meta refused a metric list (error 100): one of its metrics is unknown or retired."""


def _usage(response: httpx.Response) -> tuple[float, float | None] | None:
    """The highest quota share (percent) in ``X-App-Usage`` and ``X-Business-Use-Case-Usage``,
    and the most minutes to regain access they state; None when neither header is there."""
    shares: list[float] = []
    regain: list[float] = []
    for header in ("X-App-Usage", "X-Business-Use-Case-Usage"):
        try:
            parsed = json.loads(response.headers.get(header, "") or "null")
        except ValueError:
            continue
        entries: list[Any] = [parsed] if header == "X-App-Usage" else []
        if header != "X-App-Usage" and isinstance(parsed, dict):
            for listed in parsed.values():
                entries += listed if isinstance(listed, list) else []
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            for key in ("call_count", "total_cputime", "total_time"):
                number = _number(entry.get(key))
                if number is not None:
                    shares.append(number)
            minutes = _number(entry.get("estimated_time_to_regain_access"))
            if minutes:
                regain.append(minutes)
    if not shares and not regain:
        return None
    return max(shares, default=0.0), max(regain, default=None)


def _pace(response: httpx.Response) -> Hold | None:
    """Above :data:`USAGE_SLOWDOWN` percent of a quota, or throttled already, the source's next
    calls wait (``estimated_time_to_regain_access``, else a minute) rather than get the app
    blocked."""
    share, regain = _usage(response) or (0.0, None)
    if not regain and share < USAGE_SLOWDOWN:
        return None
    seconds = regain * 60 if regain else USAGE_PAUSE_SECONDS
    return Hold(seconds, f"Meta reports {share:.0f} % of the API quota used")


#: What Meta's error codes mean here (its "Handling Errors" page): the keys of the hints.
_MEANINGS = {
    **dict.fromkeys([*RATE_LIMIT_CODES, *range(80000, 81000)], "rate_limit"),
    **dict.fromkeys([10, *range(200, 300)], "denied"),
    190: "token",
    INVALID_METRIC: "invalid_metric",
    1: "transient",
    2: "transient",
}


def _codes(response: httpx.Response, body: Any) -> tuple[list[str], str]:
    """Meta's ``{"error": {"code", "error_subcode", "message"}}``: the code as Meta numbers it
    (``None`` when it gives none), then what it means here."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    meaning = _MEANINGS.get(code, "") if code is not None else ""
    if meaning == "invalid_metric" and error.get("error_subcode") == NO_SUCH_OBJECT_SUBCODE:
        meaning = "no_object"
    return [str(code), meaning], str(error.get("message") or "") or response.reason_phrase


def _slow_down(refusal: Refusal) -> Exception:
    which = f" (code {refusal.code})" if refusal.code != "None" else ""
    return RateLimited(f"Meta asks to slow down{which}: {refusal.said}", refusal.retry_after)


_IDS = {"page": "`page_id`", "instagram": "`instagram_user_id`"}
_ERRORS = Classifier(
    "Meta",
    {
        ("rate_limit", 429): _slow_down,
        ("token", 401): Hint(
            "Meta refused the access token (code 190: expired, revoked or invalid): generate a "
            "new Page access token with {permissions} and store it as `access_token`; Meta "
            "said: {said}",
            ConnectorAuthError,
        ),
        "denied": Hint(
            "Meta denied the permission (code {code}): the access token needs {permissions}; "
            "Meta said: {said}",
            ConnectorAuthError,
        ),
        "no_object": "Meta has no object this token can read at {ids}: check it and the "
        "token's permissions; Meta said: {said}",
        "invalid_metric": Hint("{said}", _InvalidMetric),
        ("transient", "retriable"): Hint(
            "Meta is having trouble ({status}, code {code}): {said}", RetriableError
        ),
        (403, "config"): Hint(
            "Meta refused the request ({status}, code {code}): {said}", ConnectorConfigError
        ),
    },
    read=_codes,
)


class MetaGraphBase(Connector[MetaConfig, MetaCredentials]):
    """The Graph API calls of :class:`~connectors.meta.MetaConnector`, throttled and classified."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._usage: dict[str, float] = {}

    async def _get(self, path: str, params: dict[str, str], *, surface: Scope) -> Any:
        response = await self.http.get(path, params=params)
        share, regain = _usage(response) or (None, None)
        if share is not None:
            self._usage["usage_percent"] = max(share, self._usage.get("usage_percent", 0.0))
        if regain:
            self._usage["regain_access_minutes"] = regain
        return _ERRORS.json(
            response,
            self.http.redact,
            wait=regain * 60 if regain else None,
            permissions=PERMISSIONS[surface],
            ids=_IDS.get(surface, "`page_id` or `instagram_user_id`"),
        )

    def _details(self) -> dict[str, Any]:
        return {"api_version": self.config.api_version, **self._usage}
