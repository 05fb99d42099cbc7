"""Rendered progress reads, cached per process and keyed by the database's progress revision."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable

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
