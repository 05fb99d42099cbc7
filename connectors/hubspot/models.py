"""What a HubSpot source and its mappings are: config, credentials, params and the catalogue;
the searches that read them are in :mod:`connectors.hubspot.connector`."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from connectors.base import BaseUrl
from connectors.models import OAuthCredentials, Params, Strict, root_field
from connectors.objects import ObjectMetrics

HUBSPOT_URL = "https://api.hubapi.com"
OBJECTS = ("contacts", "companies", "deals", "tickets")

PropertyName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=100)]


# --- config, credentials, params -----------------------------------------------------------------


class HubSpotConfig(Strict):
    base_url: BaseUrl = root_field(HUBSPOT_URL)


class HubSpotCredentials(OAuthCredentials):
    """A private app's access token, or an OAuth app's client with its refresh token."""

    access_token: str | None = Field(
        None, description="A private app's token (pat-...), or the OAuth access token in use."
    )

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


class CountParams(Params):
    date_property: PropertyName = Field(
        "createdate",
        description="The date or datetime property that dates a record: `createdate` for new "
        "records, `closedate` for deals won.",
    )


class SumParams(CountParams):
    property: PropertyName = Field(description="The number property summed, e.g. `amount`.")


#: Each object's ``.count`` and ``.sum``: HubSpot's four standard CRM objects.
METRICS = ObjectMetrics(
    re.compile("|".join(OBJECTS)),
    "HubSpot {} whose `date_property` falls on the day",
    "The sum of a number `property` of the {} dated that day",
    CountParams,
    SumParams,
    summed="property",
    count_unit="{}",
)
