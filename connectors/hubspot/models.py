"""What a HubSpot source and its mappings are: config, credentials, params and the catalogue.

Apart from the HTTP code, so the search planning and the connector read the same models
without importing each other.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from connectors.base import ANY_FIELD, FILTER_OPS, BaseUrl, MetricSpec

HUBSPOT_URL = "https://api.hubapi.com"
OBJECTS = ("contacts", "companies", "deals", "tickets")

PropertyName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=100)]


# --- config, credentials, params -----------------------------------------------------------------


class HubSpotConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: BaseUrl = Field(
        HUBSPOT_URL, description="The API root; a proxy or a local test server replaces it."
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"(?i)^https?://[^/\s]+", value.strip()):
            raise ValueError("`base_url` must be an http:// or https:// address")
        return value.strip().rstrip("/")


class HubSpotCredentials(BaseModel):
    """A private app's access token, or an OAuth app's client with its refresh token."""

    model_config = ConfigDict(extra="forbid")

    access_token: str | None = Field(
        None, description="A private app's token (pat-...), or the OAuth access token in use."
    )
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    expires_at: float | None = Field(None, description="When the OAuth access token expires.")

    @model_validator(mode="after")
    def _one_way_in(self) -> HubSpotCredentials:
        oauth = [self.client_id, self.client_secret, self.refresh_token]
        if any(oauth) and not all(oauth):
            raise ValueError("OAuth needs `client_id`, `client_secret` and `refresh_token`")
        if not self.access_token and not all(oauth):
            raise ValueError(
                "give a private app's `access_token`, or `client_id`, `client_secret` and "
                "`refresh_token`"
            )
        return self

    @property
    def uses_oauth(self) -> bool:
        return bool(self.refresh_token)


class CountParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    date_property: PropertyName = Field(
        "createdate",
        description="The date or datetime property that dates a record: `createdate` for new "
        "records, `closedate` for deals won.",
    )


class SumParams(CountParams):
    property: PropertyName = Field(description="The number property summed, e.g. `amount`.")


def _metrics() -> tuple[MetricSpec, ...]:
    anything = {ANY_FIELD: frozenset(FILTER_OPS)}
    specs: list[MetricSpec] = []
    for obj in OBJECTS:
        specs.append(
            MetricSpec(
                name=f"{obj}.count",
                description=f"HubSpot {obj} whose `date_property` falls on the day",
                unit=obj,
                params_model=CountParams,
                filters=anything,
            )
        )
        specs.append(
            MetricSpec(
                name=f"{obj}.sum",
                description=f"The sum of a number `property` of the {obj} dated that day",
                unit="value",
                params_model=SumParams,
                filters=anything,
            )
        )
    return tuple(specs)
