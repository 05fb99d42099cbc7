"""Daily figures from any JSON endpoint: records found by JSONPath, summed per (day, group).

The request is ``config.method`` ``config.url`` with ``config.query`` and (for POST)
``config.body``; ``{from}`` and ``{to}`` in the URL, the query values and the body's string values
become the window's ISO dates. Authentication is a bearer ``token``, ``username`` + ``password``
(basic) or ``header_value`` sent in the header named by ``config.auth_header``; all of it rides
on the engine's client, which retries, rate-limits, redacts and refuses private addresses (on
every redirect hop too). The credentials go to the origin of ``config.url`` only: a redirect or
a ``Link`` to another origin is refused, or followed without them when
``config.follow_other_origins`` says so (the engine's client checks every hop).

Pages are followed with the shared paginators of :mod:`connectors.paginate` (dlt's
``update_request`` / ``update_state``): cursor, page number, offset or the ``Link: rel="next"``
header. Paging stops on an empty page, a missing cursor or next link, or a page shorter than the
size asked; a cursor or link seen twice, or more than :data:`connectors.paginate.MAX_PAGES` pages,
stops it too, with a warning.

Every query of a fetch asks the same request, so the pages are fetched once and each query's
params (JSONPaths: ``records`` from the body, ``date``, ``value`` and ``group`` from a record) are
applied to them. A record whose date or value can't be read is reported by index in the warnings.
"""

from connectors.rest_json.connector import RestJsonConnector
from connectors.rest_json.models import RestJsonParams

__all__ = ["RestJsonConnector", "RestJsonParams"]
