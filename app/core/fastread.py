"""Reads that answer from the event loop: the progress revision and an API key, on PostgreSQL.

A cached dashboard or key-result read needs two facts from the database: that the key is valid
and which progress revision is current. Through the ORM each costs a trip to the worker-thread
pool plus a transaction (BEGIN, SELECT, COMMIT); dashboards polling all day pay it on every
request. Here each is one autocommit SELECT on an asyncio psycopg connection: exact (it sees
every committed write, from any replica or process) and with no thread in the way.

Anything unusual answers None and the caller takes the ordinary path: SQLite (in-process, no
network to save), a connection that fails, a key whose ``last_used_at`` is due for an update.
Connections belong to the event loop that opened them, so they are kept per loop and closed by
the app's lifespan (:func:`close`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy.engine import URL

log = logging.getLogger("krsync.fastread")

#: Idle connections kept per loop and database: enough for the concurrent readers of a busy
#: worker, since opening one costs more than the reads it serves.
MAX_IDLE = 16
CONNECT_TIMEOUT = 2
#: After a failure the ordinary path serves alone for a while, so an unreachable database
#: doesn't add a connection attempt to every request.
RETRY_AFTER_FAILURE = 5.0

_idle: dict[tuple[int, str], list[psycopg.AsyncConnection[Any]]] = {}
_failed_at: dict[str, float] = {}


def _conninfo(url: URL) -> str | None:
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _query(url: URL, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | bool | None:
    """The first row (None when there is none), or False when the query could not run."""
    conninfo = _conninfo(url)
    if conninfo is None:
        return False
    if time.monotonic() - _failed_at.get(conninfo, -RETRY_AFTER_FAILURE) < RETRY_AFTER_FAILURE:
        return False
    slot = (id(asyncio.get_running_loop()), conninfo)
    idle = _idle.setdefault(slot, [])
    try:
        conn = idle.pop() if idle else None
        if conn is None or conn.closed:
            conn = await psycopg.AsyncConnection.connect(
                conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT
            )
        cursor = await conn.execute(sql, params, prepare=True)
        row = await cursor.fetchone()
    except psycopg.Error as exc:
        _failed_at[conninfo] = time.monotonic()
        log.info("fast read unavailable, using the ordinary path: %s", type(exc).__name__)
        return False
    if len(idle) < MAX_IDLE:
        idle.append(conn)
    else:
        await conn.close()
    return row


async def progress_revision(url: URL) -> int | None:
    """The current progress revision (``app.models.revision``), or None: take the slow path."""
    row = await _query(url, "SELECT value FROM revisions WHERE name = %s", ("progress",))
    if row is False:
        return None
    return int(row[0]) if isinstance(row, tuple) else 0


async def api_key(url: URL, key_hash: str, fresh_after: datetime) -> tuple[int, str, str] | None:
    """(id, name, role) of a live key last used after ``fresh_after``, or None: slow path.

    A revoked or unknown key, and one whose ``last_used_at`` is due for an update, also answer
    None, so the ordinary path refuses or records it exactly as it always does.
    """
    row = await _query(
        url,
        "SELECT id, name, role, revoked_at, last_used_at FROM api_keys WHERE key_hash = %s",
        (key_hash,),
    )
    if not isinstance(row, tuple):
        return None
    key_id, name, role, revoked_at, last_used_at = row
    if revoked_at is not None or last_used_at is None:
        return None
    if last_used_at.tzinfo is None:
        last_used_at = last_used_at.replace(tzinfo=UTC)
    if last_used_at <= fresh_after:
        return None
    return int(key_id), str(name), str(role)


async def close() -> None:
    """Close this loop's connections (the app's shutdown)."""
    loop = id(asyncio.get_running_loop())
    for slot in [s for s in _idle if s[0] == loop]:
        for conn in _idle.pop(slot):
            await conn.close()
