"""The contract kit of ``push`` (connectors/push.py): no HTTP, and nothing to fetch.

Figures reach a push source through ``POST /api/v1/push/{id}`` (tests/push), so a fetch of any
window, for any query, gives no values.
"""

from __future__ import annotations

from connectors.push import PushConnector
from connectors.testing import Kit, Query

KIT = Kit(
    connector=PushConnector,
    fetches=False,
    config={},
    credentials={"secret": "kit-push-secret-0123456789"},
    query=Query("signups", filters=[{"field": "group", "op": "eq", "value": "Email"}]),
    wrong_type={"secret": 12},
    http=False,
    empty_query=Query("signups"),
)
