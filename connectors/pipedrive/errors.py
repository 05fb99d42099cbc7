"""How Pipedrive's answers become krsync's errors.

Pipedrive says little (``error``, ``error_info``, a status); what each status means for a run
(the token, the plan, a permission, one bad filter) is decided here, apart from the calls.
"""

from __future__ import annotations

import httpx

from connectors.base import (
    ConnectorAuthError,
    ConnectorConfigError,
    Mask,
    RateLimited,
    RetriableError,
    excerpt,
)
from connectors.pipedrive.timeline import _number

API_TOKEN_REFUSED = (
    "Pipedrive refused the API token: copy `api_token` again from Personal preferences > API in "
    "the company at `company_domain` (each company has its own token, and a regenerated one "
    "replaces the old)"
)
OAUTH_REFUSED = (
    "Pipedrive refused the OAuth access token (even after a refresh, where a `refresh_token` is "
    "stored): reconnect the app to get new tokens"
)
REFRESH_REFUSED = (
    "Pipedrive refused to refresh the OAuth token: the `refresh_token` is revoked or expired, or "
    "`client_id`/`client_secret` belong to another app; reconnect the app"
)


class TimelineRejected(ConnectorConfigError):
    """Pipedrive refused one timeline request (an unknown filter or pipeline)."""


def _error(response: httpx.Response, *, uses_api_token: bool, mask: Mask | None) -> Exception:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    said = ""
    if isinstance(body, dict):
        said = " ".join(str(body.get(k) or "") for k in ("error", "error_info")).strip()
    said = excerpt(said, mask) or f"HTTP {status}"
    if status == 401:
        return ConnectorAuthError(API_TOKEN_REFUSED if uses_api_token else OAUTH_REFUSED)
    if status == 429:
        wait = _number(response.headers.get("Retry-After"))
        if wait is None:
            wait = _number(response.headers.get("x-ratelimit-reset"))
        return RateLimited(f"Pipedrive's rate limit is reached: {said}", wait)
    if status >= 500 or status == 408:
        return RetriableError(f"Pipedrive is having trouble ({status}): {said}")
    if status == 402:
        return ConnectorConfigError(
            f"Pipedrive refused the call (402 Payment Required: {said}): the company's "
            "subscription has lapsed or its plan lacks API access"
        )
    if status == 403:
        return ConnectorAuthError(
            f"Pipedrive refused access (403: {said}): the user needs permission to see "
            "deals (and the filter or pipeline given); an OAuth app needs the `deals:read` "
            "scope"
        )
    if status in (404, 410):
        return ConnectorConfigError(
            f"Pipedrive has nothing at {response.request.url.path} ({said}): check `company_domain`"
        )
    return TimelineRejected(
        f"Pipedrive refused the deals timeline ({status}: {said}): check `filter_id` and "
        "`pipeline_id`"
    )
