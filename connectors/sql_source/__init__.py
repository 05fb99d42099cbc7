"""Daily figures from a read-only SQL query on any database SQLAlchemy can reach.

The query returns ``date, value[, group]`` rows and is bound to the window with ``:from`` and
``:to`` (real bind parameters, so exactly one statement runs). It always runs in a read-only
transaction of a read-only session with a statement timeout, and the transaction is rolled back
at the end: a query that writes is refused by the database itself (PostgreSQL
``default_transaction_read_only`` and ``SET TRANSACTION READ ONLY``, MySQL/MariaDB
``SET SESSION TRANSACTION READ ONLY`` and ``START TRANSACTION READ ONLY``, SQLite opened with
``mode=ro``, ``PRAGMA query_only`` and an authorizer that allows reads only), not by inspecting
its text. The connection may reach a private address only when the admin allows it, and SQLite
only files inside ``KRSYNC_FILES_DIR``. The driver is blocking, so the database work runs in a
worker thread.
"""

from connectors.netguard import ALLOW_PRIVATE_ENV
from connectors.sql_source.connector import (
    CONNECT_TIMEOUT_SECONDS,
    DEADLINE_MARGIN_SECONDS,
    MAX_ROWS,
    SqlConnector,
)
from connectors.sql_source.guards import WRITE_REFUSED, SqlGuards
from connectors.sql_source.models import (
    SqlConfig,
    SqlCredentials,
    SqlParams,
    check_binds,
    check_url,
    normalize_url,
)
from connectors.sql_source.rows import parse_rows

__all__ = [
    "ALLOW_PRIVATE_ENV",
    "CONNECT_TIMEOUT_SECONDS",
    "DEADLINE_MARGIN_SECONDS",
    "MAX_ROWS",
    "WRITE_REFUSED",
    "SqlConfig",
    "SqlConnector",
    "SqlCredentials",
    "SqlGuards",
    "SqlParams",
    "check_binds",
    "check_url",
    "normalize_url",
    "parse_rows",
]
