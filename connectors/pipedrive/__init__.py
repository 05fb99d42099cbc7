"""Pipedrive: deals per day and their value, from the deals timeline.

One ``GET /api/v1/deals/timeline`` answers a whole window: ``interval=day`` and ``amount`` (the
number of days) give a period a day, each with ``totals`` (counts, values by deal currency) and,
with ``totals_convert_currency=default_currency``, ``totals_converted`` (values in the company's
currency); ``exclude_deals=1`` leaves the deals themselves out. Queries that share the date field
(``field_key``), ``filter_id`` and ``pipeline_id`` share the call; ``status`` only picks which
totals to read (all, ``open_*`` or ``won_*``: the timeline holds open and won deals, never lost).
The answer covers every day asked, so the fetch is complete: a day that no longer has deals (its
only one lost or deleted) loses its stored figure rather than keeping the old one.

The timeline takes no field filters, so the catalogue offers none: a mapping narrows deals with a
saved Pipedrive filter (``filter_id``) or a pipeline instead.

Authentication is the ``x-api-token`` header (Pipedrive's recommended way for an API token) or an
OAuth bearer token, refreshed at ``https://oauth.pipedrive.com/oauth/token`` by the engine when a
refresh token is stored. Burst limits are per 2-second window: when ``x-ratelimit-remaining``
reaches 0 every call of the source, those already queued included, waits ``x-ratelimit-reset``
seconds (the engine's client applies the connector's reader), and a 429 is retried by the
engine's client, then surfaces as ``RateLimited``.
"""

from connectors.pipedrive.connector import PipedriveConnector
from connectors.pipedrive.timeline import MAX_DAYS

__all__ = ["MAX_DAYS", "PipedriveConnector"]
