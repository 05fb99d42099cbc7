"""A time limit on one connection of a blocking driver (a database's, a file server's) that has
no read timeout of its own, or whose server-side timeouts can't help when the server or the
network stalls: the worker thread running the driver would wait forever.

The connector hands the driver's connection to :meth:`Deadline.watch` as soon as it exists (a
connect hook) and runs its work inside :meth:`Deadline.running`; when the limit passes, the
connection's socket is shut down under the driver, whose next read fails as a lost connection.
:attr:`Deadline.expired` then tells the connector to report a temporary error, whatever the
driver said::

    deadline = Deadline(30)
    with deadline.running():
        conn = connect(on_connect=deadline.watch)
        ...
    if deadline.expired:
        raise RetriableError("the server did not answer within 30s")

The ``sql`` connector sets one over each database connection.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any


class Deadline:
    """A time limit on one connection, enforced by shutting its socket down under the driver.

    psycopg, for one, has no client-side read timeout, and a server's statement_timeout is no
    help when the server itself stalls (it accepts, then never answers) or the network drops
    every packet.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False  # the limit passed and the connection was cut
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True

    def watch(self, dbapi_connection: Any) -> None:
        """Hold the connection's socket; drivers without ``fileno()`` bound their own calls."""
        fileno = getattr(dbapi_connection, "fileno", None)
        if callable(fileno):
            with self._lock:
                # A duplicate descriptor: shutting it down reaches the driver's socket, and its
                # number can't be handed to another socket until this one is closed.
                self._socket = socket.socket(fileno=os.dup(fileno()))

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        self._timer.start()
        try:
            yield
        finally:
            self._timer.cancel()
            with self._lock:
                if self._socket is not None:
                    self._socket.close()
                    self._socket = None

    def _cut(self) -> None:
        with self._lock:
            if self._socket is not None:
                self.expired = True
                with contextlib.suppress(OSError):
                    self._socket.shutdown(socket.SHUT_RDWR)
