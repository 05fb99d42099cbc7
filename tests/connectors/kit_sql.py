"""The SQL connector's contract kit: a read-only SQLite file in its own files dir, no HTTP.

The query makes one row per day of any window with a recursive CTE, valued by the day of the
month, so every window asked has figures without a table to keep in step.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from connectors.sql_source.connector import SqlConnector
from connectors.testing import Kit, Query


def _database() -> Path:
    path = Path(tempfile.mkdtemp(prefix="krsync-sql-kit-")) / "kit.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS marker (id INTEGER)")
    return path


PATH = _database()
URL = f"sqlite:///{PATH}"

DAYS = """
WITH RECURSIVE d(day) AS (
    SELECT date(:from) UNION ALL SELECT date(day, '+1 day') FROM d WHERE day < date(:to)
)
SELECT day, CAST(strftime('%d', day) AS INTEGER) FROM d
"""
NOTHING = (
    "SELECT day, value FROM (SELECT '1999-01-01' AS day, 1 AS value)"
    " WHERE day BETWEEN :from AND :to"
)

KIT = Kit(
    connector=SqlConnector,
    config={"url": URL, "statement_timeout_seconds": 10},
    credentials={},
    query=Query("value", params={"query": DAYS}),
    wrong_type={"url": URL, "statement_timeout_seconds": "thirty"},
    http=False,
    empty_query=Query("value", params={"query": NOTHING}),
    # SQLite files are read only from KRSYNC_FILES_DIR.
    env={"KRSYNC_FILES_DIR": str(PATH.parent)},
)
