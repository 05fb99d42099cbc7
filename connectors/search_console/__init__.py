"""Google Search Console: daily clicks, impressions, CTR and position (``searchAnalytics.query``).

``POST {base}/webmasters/v3/sites/{siteUrl}/searchAnalytics/query`` (the path documented at
developers.google.com/webmaster-tools/v1/searchanalytics/query) with the ``date`` dimension,
``dataState: "final"`` and the mapping's filters as one ``and`` group. Every row carries all four
metrics, so the mappings of a fetch that share filters and search type share one request. Rows
come sorted by clicks, not by date, so paging (``startRow``) goes on until a page comes back
shorter than ``rowLimit``.

google-auth obtains the access token from the credentials (a service account's signed JWT, or an
OAuth refresh token); that token call, like the API calls, goes over the engine's client (through
:class:`~connectors.google_auth.GoogleBridge`), so it is counted, guarded against private
addresses, retried and redacted like the rest, and tests see it where they see the API.

Search Console dates are Pacific Time whatever the site's audience, so ``check()`` reports
``America/Los_Angeles``; final data lags two to three days, hence a lookback of four.
"""

from connectors.search_console.connector import SearchConsoleConnector
from connectors.search_console.models import PACIFIC, SearchConsoleConfig

__all__ = ["PACIFIC", "SearchConsoleConfig", "SearchConsoleConnector"]
