"""Google Analytics 4 through the official ``google-analytics-data`` client (Data API v1beta, REST).

The plan asks for as few calls as the API allows: the mappings of a fetch that share filters (and
``split_by``) share one report of up to 10 metrics, each report has the ``date`` dimension over
the window, and reports go five at a time through ``batchRunReports``. A report pages with
``offset`` until its ``rowCount`` is reached; the follow-up pages of several reports are batched
together too. A ``400`` caused by one mapping (a metric the property doesn't have) fails that
mapping only: the others are asked again without it.

Every request, the token exchange included, goes out through the engine's client via
:class:`~connectors.google_auth.GoogleBridge`, so the engine's retries on 429/5xx, its rate limit,
its private-network guard (``base_url`` and the key's ``token_uri`` alike), its call count for
``SyncRun.api_calls`` and its redaction apply to the official client as to any connector.

Quotas: every report asks for ``returnPropertyQuota``; the tokens consumed and left are kept in
``FetchResult.details["quota"]``. When the property's hourly or daily tokens run low the fetch
pauses between calls (dashboards share the same tokens); when fewer are left than the next call
costs, it stops before being refused. A ``429`` for hourly tokens becomes ``RateLimited`` (Google
says they return within the hour), one for daily tokens a non-retriable
:class:`DailyQuotaExhausted`.

Honesty: days are the property's reporting timezone (``metadata.timeZone``, which ``check()``
returns); sampled, thresholded or "(other)"-rolled reports come back with warnings.
"""

from connectors.ga4.connector import GA4Connector as GA4Connector
from connectors.ga4.models import GA4Params as GA4Params
from connectors.ga4.quota import DailyQuotaExhausted as DailyQuotaExhausted
