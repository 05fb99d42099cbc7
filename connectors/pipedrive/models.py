"""What a Pipedrive source and its mappings are: config, credentials, params and metrics.

Apart from the HTTP code so the timeline reading and the connector share them without importing
each other.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from connectors.base import BaseUrl
from connectors.models import OAuthCredentials, Params, Strict, catalogue, http_root, root_field


class PipedriveConfig(Strict):
    company_domain: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$",
        description="The company's subdomain: `acme` for https://acme.pipedrive.com.",
    )
    base_url: BaseUrl | None = root_field("https://{company_domain}.pipedrive.com", unset=True)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and http_root(value) is None:
            raise ValueError("`base_url` must be an http:// or https:// address, with no query")
        return value

    @model_validator(mode="after")
    def _somewhere(self) -> PipedriveConfig:
        if self.company_domain is None and self.base_url is None:
            raise ValueError("give `company_domain` (acme for https://acme.pipedrive.com)")
        return self

    @property
    def root(self) -> str:
        return self.base_url or f"https://{self.company_domain}.pipedrive.com"


class _ApiToken(Strict):
    """A base of its own so that ``api_token``, the usual way in, comes first in the form."""

    api_token: str | None = Field(None, description="Personal preferences > API in Pipedrive.")


class PipedriveCredentials(OAuthCredentials, _ApiToken):
    """A personal API token, or an OAuth app's tokens."""

    @model_validator(mode="after")
    def _one_way_in(self) -> PipedriveCredentials:
        oauth = self.access_token is not None or self.refresh_token is not None
        if (self.api_token is None) == (not oauth):
            raise ValueError("give `api_token`, or OAuth's `access_token` / `refresh_token`")
        return self


class DealsParams(Params):
    date_field: Literal["add_time", "won_time", "close_time"] = Field(
        "add_time", description="The date that puts a deal on a day (the timeline's `field_key`)."
    )
    status: Literal["open", "won"] | None = Field(
        None, description="Only open or only won deals; both when unset (lost deals never count)."
    )
    filter_id: int | None = Field(None, ge=1, description="A saved Pipedrive deal filter.")
    pipeline_id: int | None = Field(None, ge=1, description="Only deals in this pipeline.")


_METRICS = catalogue(
    {
        "deals.count": (
            "Open and won deals per day of `date_field` (one `status` with that param)",
            "deals",
        ),
        "deals.value": (
            "The value of those deals per day, converted into the company's currency",
            "currency",
        ),
    },
    params_model=DealsParams,
)
