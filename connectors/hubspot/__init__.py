"""Daily counts and sums of HubSpot CRM records, through CRM v3 search.

HubSpot has no aggregate endpoint for CRM records: ``POST /crm/v3/objects/{object}/search``
answers a ``total`` and pages of records (200 at most a page, 10,000 at most a query). So:

- every mapping becomes one filter group, its filters next to a ``BETWEEN`` on the date
  property, whose bounds are the instants (epoch milliseconds) at which the window's first day
  starts and its last day ends in the source's timezone; records are put back into days in that
  timezone. A ``date`` (not ``datetime``) property is stored at midnight UTC, so its bounds and
  days are UTC ones;
- mappings asking the same object, date property and filters share their searches;
- a ``.count`` first asks the window's first page (limit 200, the date property alone), which
  gives its ``total``; then it either pages through the rest, or asks one search per day and
  reads each ``total`` (limit 1), whichever takes fewer calls. A ``.sum`` has to page, asking
  only the date property and the summed ones;
- a window holding more than the 10,000 records a search can page through is split in two, and
  again, until each part fits;
- a deal's ``amount`` is in the deal's own currency (``deal_currency_code``), so a sum of it
  also asks that property and, when the records summed are in more than one currency, warns on
  the run: ``amount_in_home_currency`` (Amount in company currency, calculated by HubSpot with
  the account's exchange rates) is the property to sum for one figure in one currency
  (https://knowledge.hubspot.com/properties/hubspots-default-deal-properties).

Searches are limited to 4 a second per source, HubSpot's own limit for search;
``X-HubSpot-RateLimit-*`` headers that say nothing is left hold every call of the source, those
already queued included, for the interval (the engine's client applies the connector's reader).
A 429 of the ``DAILY`` policy fails the run at once, since retrying can only burn more of the
next day's quota; any other 429 is a :class:`RateLimited` the engine waits out.
"""

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.errors import (
    MAX_HEADER_WAIT,
    ROLLING_WAIT,
    SEARCHES_PER_SECOND,
    MissingScope,
    SearchRefused,
)
from connectors.hubspot.models import (
    HUBSPOT_URL,
    OBJECTS,
    CountParams,
    HubSpotConfig,
    HubSpotCredentials,
    PropertyName,
    SumParams,
)
from connectors.hubspot.search import (
    CURRENCY_CODE,
    HOME_AMOUNT,
    MAX_FILTERS_PER_GROUP,
    PAGE_LIMIT,
    RESULT_CAP,
    Page,
    Plan,
    Search,
    currency_properties,
    paging_calls,
    tally,
)

__all__ = [
    "CURRENCY_CODE",
    "HOME_AMOUNT",
    "HUBSPOT_URL",
    "MAX_FILTERS_PER_GROUP",
    "MAX_HEADER_WAIT",
    "OBJECTS",
    "PAGE_LIMIT",
    "RESULT_CAP",
    "ROLLING_WAIT",
    "SEARCHES_PER_SECOND",
    "CountParams",
    "HubSpotConfig",
    "HubSpotConnector",
    "HubSpotCredentials",
    "MissingScope",
    "Page",
    "Plan",
    "PropertyName",
    "Search",
    "SearchRefused",
    "SumParams",
    "currency_properties",
    "paging_calls",
    "tally",
]
