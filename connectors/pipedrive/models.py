"""What a Pipedrive source and its mappings are: config, credentials, params and metrics.

Apart from the HTTP code so the timeline reading and the connector share them without importing
each other.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.base import BaseUrl, MetricSpec

_URL = re.compile(r"(?i)^https?://[^/\s?#]+(?:/[^\s?#]*)?$")


class PipedriveConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    company_domain: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$",
        description="The company's subdomain: `acme` for https://acme.pipedrive.com.",
    )
    base_url: BaseUrl | None = Field(
        None, description="Replaces https://{company_domain}.pipedrive.com (a proxy, a test host)."
    )

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if not _URL.match(value):
            raise ValueError("`base_url` must be an http:// or https:// address")
        return value

    @model_validator(mode="after")
    def _somewhere(self) -> PipedriveConfig:
        if self.company_domain is None and self.base_url is None:
            raise ValueError("give `company_domain` (acme for https://acme.pipedrive.com)")
        return self

    @property
    def root(self) -> str:
        return self.base_url or f"https://{self.company_domain}.pipedrive.com"


class PipedriveCredentials(BaseModel):
    """A personal API token, or an OAuth app's tokens."""

    model_config = ConfigDict(extra="forbid")

    api_token: str | None = Field(None, description="Personal preferences > API in Pipedrive.")
    access_token: str | None = Field(None, description="An OAuth access token.")
    refresh_token: str | None = Field(None, description="Lets krsync refresh the access token.")
    client_id: str | None = Field(None, description="The OAuth app's client id (for refresh).")
    client_secret: str | None = Field(None, description="The OAuth app's client secret.")
    expires_at: float | None = Field(None, description="Kept by krsync after each refresh.")

    @model_validator(mode="after")
    def _one_way_in(self) -> PipedriveCredentials:
        oauth = self.access_token is not None or self.refresh_token is not None
        if (self.api_token is None) == (not oauth):
            raise ValueError("give `api_token`, or OAuth's `access_token` / `refresh_token`")
        if self.refresh_token is not None and not (self.client_id and self.client_secret):
            raise ValueError("refreshing needs the app's `client_id` and `client_secret`")
        return self


class DealsParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    date_field: Literal["add_time", "won_time", "close_time"] = Field(
        "add_time", description="The date that puts a deal on a day (the timeline's `field_key`)."
    )
    status: Literal["open", "won"] | None = Field(
        None, description="Only open or only won deals; both when unset (lost deals never count)."
    )
    filter_id: int | None = Field(None, ge=1, description="A saved Pipedrive deal filter.")
    pipeline_id: int | None = Field(None, ge=1, description="Only deals in this pipeline.")


_METRICS = (
    MetricSpec(
        name="deals.count",
        description="Open and won deals per day of `date_field` (one `status` with that param)",
        unit="deals",
        params_model=DealsParams,
    ),
    MetricSpec(
        name="deals.value",
        description="The value of those deals per day, converted into the company's currency",
        unit="currency",
        params_model=DealsParams,
    ),
)
