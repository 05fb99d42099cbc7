"""Rendered progress reads, cached per process and keyed by the database's progress revision."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.core import fastread
from app.models.revision import current as current_revision

#: Staleness is a matter of the clock, not of writes: no entry outlives this.
TTL_SECONDS = 60.0
MAX_ENTRIES = 512

_entries: OrderedDict[Hashable, tuple[float, bytes]] = OrderedDict()
_lock = threading.Lock()


def get(key: Hashable) -> bytes | None:
    with _lock:
        hit = _entries.get(key)
        if hit is None:
            return None
        stored_at, body = hit
        if time.monotonic() - stored_at > TTL_SECONDS:
            del _entries[key]
            return None
        _entries.move_to_end(key)
        return body


def put(key: Hashable, body: bytes) -> None:
    with _lock:
        _entries[key] = (time.monotonic(), body)
        _entries.move_to_end(key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)


def clear() -> None:
    with _lock:
        _entries.clear()


def _cached(session: Session, key: tuple[object, ...], build: Callable[[], BaseModel]) -> bytes:
    """Progress reads are answered from the cache until a write bumps the revision."""
    full_key = (session.get_bind().engine.url, current_revision(session), *key)
    body = get(full_key)
    if body is None:
        body = build().model_dump_json(by_alias=True).encode()
        put(full_key, body)
    return body


async def read(session: Session, key: tuple[object, ...], build: Callable[[], BaseModel]) -> bytes:
    """A hit is answered on the event loop (one SELECT of the revision, no worker thread);
    a miss, or a database the fast read doesn't serve, computes in the thread pool."""
    url = session.get_bind().engine.url
    revision = await fastread.progress_revision(url)
    if revision is not None:
        body = get((url, revision, *key))
        if body is not None:
            return body
    return await run_in_threadpool(_cached, session, key, build)
