"""How Salesforce's answers become krsync's errors.

Salesforce names its errors (``errorCode``: ``INVALID_SESSION_ID``, ``REQUEST_LIMIT_EXCEEDED``,
``INVALID_FIELD`` ...): which of them fail the run, wait, or fail only one query is decided here,
apart from the calls that meet them.
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
    retry_after,
)

#: REQUEST_LIMIT_EXCEEDED for the org's 24-hour request total: no point waiting within a run.
DAILY_LIMIT_RETRY_AFTER = 3600.0

SESSION_REFUSED = (
    "Salesforce refused the session even after refreshing it (INVALID_SESSION_ID): reconnect the "
    "source and store a new `refresh_token`; the connected app needs the `api` and "
    "`refresh_token` OAuth scopes"
)
REFRESH_REFUSED = (
    "Salesforce refused to refresh the access token: the `refresh_token` is revoked or expired, "
    "or `client_id`/`client_secret` don't belong to the connected app that issued it; reconnect "
    "the source to get a new `refresh_token`"
)
API_DISABLED = (
    "Salesforce refused API access ({code}): the integration user's profile or a permission set "
    "needs the `API Enabled` permission, and the org's edition must include API access"
)


class ObjectRefused(ConnectorAuthError):
    """The user can't see an object or field: this query fails, the others go on."""


class QueryRejected(ConnectorConfigError):
    """Salesforce refused one statement (a field that isn't there, a bad filter value)."""


def _error(
    response: httpx.Response,
    sobject: str | None,
    describing: bool,
    *,
    api_version: str,
    mask: Mask | None,
) -> Exception:
    status = response.status_code
    code, detail = _error_body(response)
    code, detail = excerpt(code, mask, 80), excerpt(detail, mask)
    said = f"{code}: {detail}" if code else detail or f"HTTP {status}"
    if status == 401:
        return ConnectorAuthError(SESSION_REFUSED)
    if code == "REQUEST_LIMIT_EXCEEDED" or status == 429:
        daily = "TotalRequests" in detail
        wait = retry_after(response) or (DAILY_LIMIT_RETRY_AFTER if daily else None)
        what = "the org's daily API request limit" if daily else "a Salesforce request limit"
        return RateLimited(f"Salesforce refused the call: {what} is reached ({said})", wait)
    if code in ("API_DISABLED_FOR_ORG", "API_CURRENTLY_DISABLED"):
        return ConnectorAuthError(API_DISABLED.format(code=code))
    if status >= 500 or status == 408:
        return RetriableError(f"Salesforce is having trouble ({status}): {said}")
    if code == "INVALID_TYPE" or (describing and status == 404):
        name = f"`{sobject}`" if sobject else "the object queried"
        return ObjectRefused(
            f"Salesforce has no object {name} this user can see ({said}): check the API name "
            "(custom objects end in `__c`) and give the integration user Read access to the "
            "object in its profile or a permission set"
        )
    if status == 403 or code.startswith("INSUFFICIENT_ACCESS"):
        return ObjectRefused(
            f"Salesforce refused access ({said}): give the integration user Read access to "
            "the object and its fields (profile or permission set) and `View All` or sharing "
            "rules for the records to count"
        )
    if status == 404:
        return ConnectorConfigError(
            f"Salesforce has nothing at this address ({said}): check `instance_url` and that "
            f"the org serves `api_version` {api_version}"
        )
    if code == "EXCEEDED_ID_LIMIT" and "queryMore" in detail:
        return QueryRejected(
            "Salesforce refused the query: a grouped (aggregate) answer can't be paged and "
            f"holds at most 2,000 groups, one a day here ({said}); sync a shorter window"
        )
    if code == "INVALID_FIELD":
        return QueryRejected(
            f"Salesforce refused a field ({said}): check the API names in `date_field`, "
            "`field` and the filters, and the integration user's field-level security"
        )
    return QueryRejected(f"Salesforce refused the query ({status} {said})")


def _error_body(response: httpx.Response) -> tuple[str, str]:
    """Salesforce's ``[{"message", "errorCode"}]`` (OAuth errors use ``error``)."""
    try:
        body = response.json()
    except ValueError:
        return "", response.text
    first = body[0] if isinstance(body, list) and body else body
    if not isinstance(first, dict):
        return "", ""
    code = first.get("errorCode") or first.get("error") or ""
    code = code if isinstance(code, str) else ""  # an object is no code (another API's envelope)
    detail = str(first.get("message") or first.get("error_description") or "")
    return code, detail
