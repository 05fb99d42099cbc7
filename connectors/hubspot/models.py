"""What a HubSpot source and its mappings are: config, credentials, params and the catalogue;
the searches that read them are in :mod:`connectors.hubspot.connector`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from connectors.base import ANY_FIELD, FILTER_OPS, BaseUrl, MetricSpec
from connectors.models import Entry, OAuthCredentials, Params, Strict, catalogue, root_field

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


def _metrics() -> tuple[MetricSpec, ...]:
    table: dict[str, Entry] = {}
    for obj in OBJECTS:
        count = f"HubSpot {obj} whose `date_property` falls on the day"
        table[f"{obj}.count"] = (count, obj, {"params_model": CountParams})
        total = f"The sum of a number `property` of the {obj} dated that day"
        table[f"{obj}.sum"] = (total, "value", {"params_model": SumParams})
    return catalogue(table, filters={ANY_FIELD: frozenset(FILTER_OPS)})
