"""A thread's own DBAPI connection (:meth:`registers.db.database.Database.acquire`)."""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

__all__ = ["ConnectionHolder"]


class ConnectionHolder:
    """A thread's own connection; closed when the thread (and its locals) go away.

    A server connection's holder also keeps one cursor for every statement sent on it:
    a new psycopg cursor sets up its adapters and looks up a dumper per parameter type
    again, about 10 us a statement. Every caller reads a statement's cursor out before
    sending the next one (flows included: see :mod:`registers.db.flows`).
    """

    __slots__ = ("__weakref__", "connection", "cursor", "pid", "used")

    def __init__(self, connection: Any, cursor: Any = None) -> None:
        self.connection = connection
        self.cursor = cursor
        self.pid = os.getpid()
        self.used = time.monotonic()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()

    def __del__(self) -> None:
        if self.pid == os.getpid():  # never the parent's connection, in a forked child
            self.close()
