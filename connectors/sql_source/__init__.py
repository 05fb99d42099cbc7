"""Daily figures from a read-only SQL query on any database SQLAlchemy can reach.

The query returns ``date, value[, group]`` rows and is bound to the window with ``:from`` and
``:to`` (real bind parameters, so exactly one statement runs). It always runs in a read-only
transaction of a read-only session with a statement timeout, and the transaction is rolled back
at the end: a query that writes is refused by the database itself (PostgreSQL
``default_transaction_read_only`` and ``SET TRANSACTION READ ONLY``, MySQL/MariaDB
``SET SESSION TRANSACTION READ ONLY`` and ``START TRANSACTION READ ONLY``, SQLite opened with
``mode=ro``, ``PRAGMA query_only`` and an authorizer that allows reads only), not by inspecting
its text. The connection may reach a private address only when the admin allows it, and SQLite
only files inside ``KRSYNC_FILES_DIR``, never krsync's own database. The driver is blocking, so
the database work runs in a worker thread.
"""

from connectors.sql_source.connector import WRITE_REFUSED as WRITE_REFUSED
from connectors.sql_source.connector import SqlConnector as SqlConnector
from connectors.sql_source.models import SqlConfig as SqlConfig
from connectors.sql_source.models import SqlCredentials as SqlCredentials
from connectors.sql_source.models import SqlParams as SqlParams
from connectors.sql_source.models import normalize_url as normalize_url
