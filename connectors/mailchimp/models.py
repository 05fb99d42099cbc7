"""Where a Mailchimp source points and how it signs in: the config and credentials models, the
API root they give (``base_url``, or the data centre of the key or token), and the limits
Mailchimp sets on pages and connections."""

from __future__ import annotations

import re

from pydantic import Field, model_validator

from connectors.base import BaseUrl, ConnectorConfigError, FilterOp, MetricSpec
from connectors.models import Strict, root_field

ROOT = "https://{dc}.api.mailchimp.com/3.0"
#: Mailchimp's largest ``count``.
MAX_COUNT = 1000
#: Pages one endpoint may take before paging is called broken.
MAX_PAGES = 200
#: Connections Mailchimp allows one account at once; the client caps each source at this.
MAX_CONNECTIONS = 10
_DATA_CENTER = r"^[a-z]{2,4}\d{1,3}$"
_DC_SUFFIX = re.compile(r"-([a-z]{2,4}\d{1,3})$")
_TEXT_OPS: frozenset[FilterOp] = frozenset({"eq", "neq", "in", "not_in", "contains"})
_SET_OPS: frozenset[FilterOp] = frozenset({"eq", "neq", "in", "not_in"})


class MailchimpConfig(Strict):
    list_id: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z0-9]+$",
        description="The audience id (Audience > Settings > Audience name and defaults).",
    )
    data_center: str | None = Field(
        None,
        pattern=_DATA_CENTER,
        description="The data centre (`us21`) of an OAuth access token; an API key names its own.",
    )
    base_url: BaseUrl | None = root_field(ROOT, unset=True)
    page_size: int = Field(
        MAX_COUNT,
        ge=1,
        le=MAX_COUNT,
        description="Records asked per page (`count`); lower it only for a proxy that caps pages.",
    )


class MailchimpCredentials(Strict):
    """An API key (Basic auth), or an OAuth access token (Bearer) and its data centre."""

    api_key: str | None = Field(
        None, description="An API key (Profile > Extras > API keys), e.g. `0123…cdef-us21`."
    )
    access_token: str | None = Field(None, description="An OAuth2 access token.")
    data_center: str | None = Field(
        None,
        pattern=_DATA_CENTER,
        description="The `dc` of the OAuth metadata endpoint (`us21`), with `access_token`.",
    )

    @model_validator(mode="after")
    def _one_way_in(self) -> MailchimpCredentials:
        if (self.api_key is None) == (self.access_token is None):
            raise ValueError("give `api_key`, or an OAuth `access_token` with its `data_center`")
        return self


def api_root(config: MailchimpConfig, credentials: MailchimpCredentials) -> str:
    """The root every path hangs from: ``base_url``, else the key's or the token's data centre."""
    if config.base_url:
        return config.base_url.rstrip("/")
    suffix = _DC_SUFFIX.search(credentials.api_key or "")
    dc = suffix.group(1) if suffix else credentials.data_center or config.data_center
    if dc is None:
        if credentials.api_key is not None:
            raise ConnectorConfigError(
                "the Mailchimp API key doesn't end in its data centre (`-us21`): copy the whole "
                "key from Profile > Extras > API keys, or set `data_center`"
            )
        raise ConnectorConfigError(
            "an OAuth access token needs its `data_center` (the `dc` the OAuth metadata "
            "endpoint gave, e.g. `us21`)"
        )
    return ROOT.format(dc=dc)


def _metric(name: str, description: str, unit: str, *, campaign: bool = False) -> MetricSpec:
    filters = {"campaign_title": _TEXT_OPS, "campaign_type": _SET_OPS} if campaign else {}
    return MetricSpec(name=name, description=description, unit=unit, filters=filters)
