"""How Pipedrive's answers become krsync's errors.

Pipedrive says little (``error``, ``error_info``, a status); what each status means for a run
(the token, the plan, a permission, one bad filter) is decided here, apart from the calls.
"""

from __future__ import annotations

from typing import Any

import httpx

from connectors.base import (
    ConnectorConfigError,
    Mask,
)
from connectors.errors import Classifier, Hint, Hints
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
    hints = None if uses_api_token else _OAUTH_REFUSED
    return _ERRORS(response, mask, hints=hints, path=response.request.url.path)


def _words(response: httpx.Response, body: Any) -> tuple[tuple[str, ...], str]:
    if not isinstance(body, dict):
        return (), ""
    return (), " ".join(str(body.get(k) or "") for k in ("error", "error_info")).strip()


def _wait(response: httpx.Response) -> float | None:
    wait = _number(response.headers.get("Retry-After"))
    return wait if wait is not None else _number(response.headers.get("x-ratelimit-reset"))


_ERRORS = Classifier(
    "Pipedrive",
    {
        401: API_TOKEN_REFUSED,
        429: "Pipedrive's rate limit is reached: {said}",
        402: "Pipedrive refused the call (402 Payment Required: {said}): the company's "
        "subscription has lapsed or its plan lacks API access",
        403: "Pipedrive refused access (403: {said}): the user needs permission to see deals "
        "(and the filter or pipeline given); an OAuth app needs the `deals:read` scope",
        (404, 410): "Pipedrive has nothing at {path} ({said}): check `company_domain`",
        "config": Hint(
            "Pipedrive refused the deals timeline ({status}: {said}): check `filter_id` and "
            "`pipeline_id`",
            TimelineRejected,
        ),
    },
    read=_words,
    wait=_wait,
)
_OAUTH_REFUSED: Hints = {401: OAUTH_REFUSED}
