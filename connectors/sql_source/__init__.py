"""Daily figures from a read-only SQL query on any database SQLAlchemy can reach.

The query returns ``date, value[, group]`` rows and is bound to the window with ``:from`` and
``:to``. It always runs in a read-only transaction with a statement timeout, and the transaction
is rolled back at the end: a query that writes is refused by the database itself (PostgreSQL
``SET TRANSACTION READ ONLY``, MySQL/MariaDB ``START TRANSACTION READ ONLY``, SQLite opened with
``mode=ro`` and ``PRAGMA query_only``), not by inspecting its text. The driver is blocking, so the
database work runs in a worker thread.
"""

from connectors.sql_source.connector import CONNECT_TIMEOUT_SECONDS, MAX_ROWS, SqlConnector
from connectors.sql_source.guards import ALLOW_PRIVATE_ENV, WRITE_REFUSED, SqlGuards
from connectors.sql_source.models import SqlConfig, SqlCredentials, SqlParams, normalize_url
from connectors.sql_source.rows import parse_rows

__all__ = [
    "ALLOW_PRIVATE_ENV",
    "CONNECT_TIMEOUT_SECONDS",
    "MAX_ROWS",
    "WRITE_REFUSED",
    "SqlConfig",
    "SqlConnector",
    "SqlCredentials",
    "SqlGuards",
    "SqlParams",
    "normalize_url",
    "parse_rows",
]
