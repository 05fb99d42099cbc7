"""What a Salesforce source and its mappings are: config, credentials, params and metrics (every
object's ``.count`` and ``.sum``, so the catalogue is built from a name on demand)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from connectors.base import BaseUrl
from connectors.models import OAuthClient, Params, Strict, http_root, matching, root_field
from connectors.objects import ObjectMetrics

DEFAULT_LOGIN_URL = "https://login.salesforce.com"
DEFAULT_VERSION = "v60.0"
#: Platform API versions Salesforce has retired or announced to retire, by the Summer release
#: that removes them (their REST calls then answer 410 GONE): 7.0-20.0 in Summer '22, 21.0-30.0
#: in Summer '25 (https://help.salesforce.com/s/articleView?id=000354473), 31.0-40.0 in
#: Summer '28 (https://help.salesforce.com/s/articleView?id=005321531). Salesforce names a
#: release, not a day; a Summer release reaches orgs from May (sandboxes first, production in
#: waves into June), so the first of May stands for it and a notice ahead of it comes early.
RETIREMENTS: tuple[tuple[int, int, date], ...] = (
    (7, 20, date(2022, 5, 1)),
    (21, 30, date(2025, 5, 1)),
    (31, 40, date(2028, 5, 1)),
)
_VERSION = re.compile(r"v([1-9]\d{0,2})\.0")

_IDENT = r"[A-Za-z](?:[A-Za-z0-9_]{0,78}[A-Za-z0-9])?"
IDENTIFIER = re.compile(_IDENT)
FIELD_PATH = re.compile(rf"{_IDENT}(?:\.{_IDENT}){{0,4}}")


def _check_url(value: str) -> str:
    root = http_root(value)
    if root is None:
        raise ValueError("give an http:// or https:// address, e.g. https://acme.my.salesforce.com")
    return root


def version_retired(version: str) -> date | None:
    """The day Salesforce retires ``version`` (see :data:`RETIREMENTS`), None when unannounced."""
    match = _VERSION.fullmatch(version)
    if match is None:
        return None
    number = int(match.group(1))
    return next((day for low, high, day in RETIREMENTS if low <= number <= high), None)


def _check_identifier(value: str) -> str:
    if not IDENTIFIER.fullmatch(value):
        raise ValueError(
            f"`{value[:60]}` is not a Salesforce API name (letters, digits and underscores, "
            "starting with a letter, e.g. `CloseDate`, `Amount`, `Revenue__c`)"
        )
    return value


# --- config, credentials, params -----------------------------------------------------------------

_Url = Annotated[str, AfterValidator(_check_url)]
_ApiName = Annotated[str, AfterValidator(_check_identifier)]
_Version = Annotated[
    str,
    matching(
        _VERSION,
        f"`api_version` is a Salesforce API version such as {DEFAULT_VERSION} "
        "(`v`, the release number, `.0`)",
    ),
]


class SalesforceConfig(Strict):
    instance_url: _Url | None = Field(
        None,
        description="The org's address, e.g. https://acme.my.salesforce.com (its My Domain URL). "
        "Optional: the token endpoint names it, and krsync keeps and uses the address it gives.",
    )
    api_version: _Version = Field(
        DEFAULT_VERSION, description="The REST API version in every path, e.g. v60.0."
    )
    login_url: _Url = Field(
        DEFAULT_LOGIN_URL,
        description="Where tokens are refreshed: https://test.salesforce.com for a sandbox.",
    )
    base_url: Annotated[BaseUrl, AfterValidator(_check_url)] | None = root_field(
        "`instance_url` as the root of API calls", unset=True
    )


class SalesforceCredentials(OAuthClient):
    """A connected app and a refresh token; krsync stores the access token it gets back."""

    client_id: str = Field(min_length=1, description="The connected app's consumer key.")
    client_secret: str = Field(min_length=1, description="The connected app's consumer secret.")
    refresh_token: str = Field(min_length=1, description="From the web-server OAuth flow.")
    instance_url: str | None = Field(
        None,
        description="The org's address as the token endpoint last reported it; API calls go "
        "there, ahead of the config's `instance_url`.",
    )


class SalesforceCountParams(Params):
    date_field: _ApiName = Field(
        "CreatedDate",
        description="The date or datetime field that dates a record, e.g. `CloseDate`.",
    )
    date_type: Literal["date", "datetime"] | None = Field(
        None,
        description="Whether `date_field` is a date or a datetime; read from the object's "
        "describe when not given.",
    )


class SalesforceSumParams(SalesforceCountParams):
    field: _ApiName = Field(description="The numeric field summed per day, e.g. `Amount`.")


#: Every object's ``.count`` and ``.sum``, named by its API name.
METRICS = ObjectMetrics(
    IDENTIFIER,
    "{} records per day of `date_field`",
    "The sum of `field` over the {} records of each day of `date_field` (currency fields in the "
    "org's corporate currency)",
    SalesforceCountParams,
    SalesforceSumParams,
    summed="field",
)
