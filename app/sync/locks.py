"""One sync of a source at a time: PostgreSQL advisory locks across replicas, a mutex on SQLite."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import Engine, func, select

#: Advisory-lock namespace of krsync ("kr"), so our locks never collide with another app's.
NAMESPACE = 0x6B72
SCHEDULER_LOCK = 0  # source ids start at 1, so 0 is free for the scheduler's leadership
#: How long a run someone asked for waits for a busy source before giving up.
LOCK_WAIT_SECONDS = 600.0
#: A run queued for its source's lock longer than any run waits was left by a process that died.
QUEUED_TOO_LONG = timedelta(seconds=LOCK_WAIT_SECONDS + 60)

_local_locks: dict[tuple[str, int], threading.Lock] = {}
_guard = threading.Lock()


def _local(engine: Engine, key: int) -> threading.Lock:
    with _guard:
        return _local_locks.setdefault((str(engine.url), key), threading.Lock())


class SourceLock:
    """The same lock, taken and released in explicit steps so async code can run each step
    in a worker thread instead of blocking the event loop on a database round trip."""

    def __init__(self, engine: Engine, key: int) -> None:
        self._cm = advisory_lock(engine, key)
        self.taken = False

    def acquire(self) -> bool:
        self.taken = self._cm.__enter__()
        if not self.taken:
            self._cm.__exit__(None, None, None)
        return self.taken

    def release(self) -> None:
        if self.taken:
            self.taken = False
            self._cm.__exit__(None, None, None)


@contextmanager
def advisory_lock(engine: Engine, key: int) -> Iterator[bool]:
    """Yields whether the lock was taken; never waits, so a busy source is skipped, not queued."""
    if engine.dialect.name != "postgresql":
        lock = _local(engine, key)
        taken = lock.acquire(blocking=False)
        try:
            yield taken
        finally:
            if taken:
                lock.release()
        return
    # A session-level lock, held by the connection whatever its transactions do: autocommit
    # spares each step its BEGIN and COMMIT (a database round trip each).
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        taken = bool(conn.scalar(select(func.pg_try_advisory_lock(NAMESPACE, key))))
        try:
            yield taken
        finally:
            if taken:
                conn.scalar(select(func.pg_advisory_unlock(NAMESPACE, key)))
    finally:
        conn.close()
