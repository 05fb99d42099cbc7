"""Graph API calls: one GET, Meta's usage headers read after it, and its error codes classified.

The connector's base class, so the usage seen (``_usage``, for the run) and the redacted,
classified errors are in one place; the insights and the hooks call ``_get`` and ``_details``.
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
    excerpt,
    json_body,
    mask_of,
    retry_after,
)
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


class MetaGraphBase(Connector[MetaConfig, MetaCredentials]):
    """The Graph API calls of :class:`~connectors.meta.MetaConnector`, throttled and classified."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._usage: dict[str, float] = {}

    # --- HTTP ------------------------------------------------------------------------------------

    async def _get(self, path: str, params: dict[str, str], *, surface: Scope) -> Any:
        response = await self.http.get(path, params=params)
        share, regain = _usage(response) or (None, None)
        if share is not None:
            self._usage["usage_percent"] = max(share, self._usage.get("usage_percent", 0.0))
        if regain:
            self._usage["regain_access_minutes"] = regain
        if not response.is_success:
            raise self._error(response, surface, regain)
        return json_body(response, "Meta")

    def _details(self) -> dict[str, Any]:
        return {"api_version": self.config.api_version, **self._usage}

    def _error(
        self, response: httpx.Response, surface: Scope, regain: float | None = None
    ) -> Exception:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = {}
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        code = error.get("code") if isinstance(error.get("code"), int) else None
        subcode = error.get("error_subcode")
        said = excerpt(str(error.get("message") or ""), mask_of(self.http))
        said = said or response.reason_phrase or f"HTTP {status}"
        if status == 429 or code in RATE_LIMIT_CODES or (code and 80000 <= code < 81000):
            wait = regain * 60 if regain else retry_after(response)
            which = f" (code {code})" if code is not None else ""
            return RateLimited(f"Meta asks to slow down{which}: {said}", wait)
        if code == 190 or status == 401:
            return ConnectorAuthError(
                "Meta refused the access token (code 190: expired, revoked or invalid): "
                f"generate a new Page access token with {PERMISSIONS[surface]} and store it as "
                f"`access_token`; Meta said: {said}"
            )
        if code == 10 or (code is not None and 200 <= code <= 299):
            return ConnectorAuthError(
                f"Meta denied the permission (code {code}): the access token needs "
                f"{PERMISSIONS[surface]}; Meta said: {said}"
            )
        if code == INVALID_METRIC and subcode == NO_SUCH_OBJECT_SUBCODE:
            field = {"page": "`page_id`", "instagram": "`instagram_user_id`"}.get(
                surface, "`page_id` or `instagram_user_id`"
            )
            return ConnectorConfigError(
                f"Meta has no object this token can read at {field}: check it and the "
                f"token's permissions; Meta said: {said}"
            )
        if code == INVALID_METRIC:
            return _InvalidMetric(said)
        if status >= 500 or code in (1, 2):
            return RetriableError(f"Meta is having trouble ({status}, code {code}): {said}")
        return ConnectorConfigError(f"Meta refused the request ({status}, code {code}): {said}")
