"""How Salesforce's answers become krsync's errors.

Salesforce names its errors (``errorCode``: ``INVALID_SESSION_ID``, ``REQUEST_LIMIT_EXCEEDED``,
``INVALID_FIELD`` ...): which of them fail the run, wait, or fail only one query is decided here,
apart from the calls that meet them.
"""

from __future__ import annotations

from typing import Any

import httpx

from connectors.base import (
    ConnectorAuthError,
    ConnectorConfigError,
    Mask,
    RateLimited,
)
from connectors.errors import Classifier, Hint, Hints, Refusal

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
    name = f"`{sobject}`" if sobject else "the object queried"
    hints: Hints | None = {404: _NO_OBJECT} if describing else None
    return _ERRORS(response, mask, hints=hints, name=name, api_version=api_version)


def _error_body(response: httpx.Response, body: Any) -> tuple[list[str], str]:
    """Salesforce's ``[{"message", "errorCode"}]`` (OAuth errors use ``error``): the code, and
    its family where the family decides (``INSUFFICIENT_ACCESS_*``)."""
    if body is None:
        return [], response.text
    first = body[0] if isinstance(body, list) and body else body
    if not isinstance(first, dict):
        return [], ""
    code = first.get("errorCode") or first.get("error") or ""
    code = code if isinstance(code, str) else ""  # an object is no code (another API's envelope)
    detail = str(first.get("message") or first.get("error_description") or "")
    family = ["INSUFFICIENT_ACCESS"] if code.startswith("INSUFFICIENT_ACCESS") else []
    return [code, *family], f"{code}: {detail}" if code else detail


def _limit(refusal: Refusal) -> Exception:
    daily = "TotalRequests" in refusal.said
    wait = refusal.retry_after or (DAILY_LIMIT_RETRY_AFTER if daily else None)
    what = "the org's daily API request limit" if daily else "a Salesforce request limit"
    return RateLimited(f"Salesforce refused the call: {what} is reached ({refusal.said})", wait)


def _too_many_groups(refusal: Refusal) -> Exception | None:
    if "queryMore" not in refusal.said:
        return None
    return QueryRejected(
        "Salesforce refused the query: a grouped (aggregate) answer can't be paged and "
        f"holds at most 2,000 groups, one a day here ({refusal.said}); sync a shorter window"
    )


_NO_OBJECT = Hint(
    "Salesforce has no object {name} this user can see ({said}): check the API name (custom "
    "objects end in `__c`) and give the integration user Read access to the object in its "
    "profile or a permission set",
    ObjectRefused,
)
_ERRORS = Classifier(
    "Salesforce",
    {
        401: SESSION_REFUSED,
        ("REQUEST_LIMIT_EXCEEDED", 429): _limit,
        ("API_DISABLED_FOR_ORG", "API_CURRENTLY_DISABLED"): Hint(API_DISABLED, ConnectorAuthError),
        "INVALID_TYPE": _NO_OBJECT,
        ("INSUFFICIENT_ACCESS", 403): Hint(
            "Salesforce refused access ({said}): give the integration user Read access to the "
            "object and its fields (profile or permission set) and `View All` or sharing rules "
            "for the records to count",
            ObjectRefused,
        ),
        404: "Salesforce has nothing at this address ({said}): check `instance_url` and that "
        "the org serves `api_version` {api_version}",
        "EXCEEDED_ID_LIMIT": _too_many_groups,
        "INVALID_FIELD": Hint(
            "Salesforce refused a field ({said}): check the API names in `date_field`, `field` "
            "and the filters, and the integration user's field-level security",
            QueryRejected,
        ),
        "config": Hint("Salesforce refused the query ({status} {said})", QueryRejected),
    },
    read=_error_body,
)
