"""MySQL/MariaDB on PyMySQL: statements sent before the answer to the one before is read.

Two uses: ``iterate()``'s keyset pages, each page's query sent before the page before it
is handed out; and a write transaction's BEGIN, sent together with its first statement
(:func:`send_begin_with`: BEGIN, UPDATE, SELECT, COMMIT is three round trips, not four).

``iterate()`` reads keyset pages, each a complete ``SELECT ... LIMIT n`` of its own. Read
one after the other, the server waits while the client hands a page out (a model per row),
and the client then waits while the server runs the next page and sends it. Here, once a
page is read, the next page's query is sent before the page is handed out: the server
runs it meanwhile, as it would feed a streaming cursor (about 10% faster over 10,000 rows
on a 2-CPU machine), without holding one open query for the whole iteration.

What that costs: the next page's statement ends when its rows are in the socket's
buffers. A page larger than those (wide rows, a big ``batch_size``) keeps its statement,
and with it the table's shared metadata lock (an ``ALTER TABLE`` waits for it), open
until the consumer has finished the page before; no longer than one page.

The pages run on a connection of their own, a *stream connection*, never on the thread's
own connection: the loop body may send statements on that one while a page is in flight.
Stream connections are autocommit PyMySQL connections made through the engine (its
connect hooks and options apply) and kept idle per database between streams, the most
recently used first, checked with a ping after sitting idle. PyMySQL has no public call
to send a query and read its result later; :func:`send` and :func:`receive` use its
``Connection._execute_command`` and ``_read_query_result`` (the two halves of
``Connection.query``, unchanged since PyMySQL 0.7), so they are used only on PyMySQL
connections, outside ``transaction()`` (whose pages must see the block's writes, on its
connection), and never when a connection cannot be had (the pages then go on as before).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from registers.db.database import IDLE_CHECK_SECONDS, detached_connection

if TYPE_CHECKING:
    from registers.db.engine import Database

__all__ = ["BeginFailed", "StreamConnections", "on_pymysql", "receive", "send", "send_begin_with",
           "stream_connections"]

def stream_connections(database: Database) -> StreamConnections | None:
    """The database's stream connections when the current statement may use them: a
    PyMySQL URL, outside ``transaction()``; else None (plain keyset pages)."""
    if not on_pymysql(database) or database.current_transaction() is not None:
        return None
    streams: StreamConnections | None = database.stream_connections
    if streams is None:
        with _making:  # one per database, whichever thread streams first
            streams = database.stream_connections
            if streams is None:
                streams = database.stream_connections = StreamConnections(database)
    return streams


_making = threading.Lock()


class StreamConnections:
    """A database's idle stream connections, for any thread (most recently used last)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._idle: list[tuple[Any, float]] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def take(self) -> Any | None:
        """An idle stream connection that answers, or a new one; None if none can be
        opened (the caller reads its pages on the thread's connection instead)."""
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's, never used here
                self._idle, self._pid = [], os.getpid()
            idle = self._idle.pop() if self._idle else None
        while idle is not None:
            conn, used = idle
            if time.monotonic() - used <= IDLE_CHECK_SECONDS or self.database.answers(conn):
                return conn
            _close(conn)
            with self._lock:
                idle = self._idle.pop() if self._idle else None
        try:
            return detached_connection(self.database)
        except Exception:
            return None

    def give(self, conn: Any, pending: bool) -> None:
        """Take ``conn`` back once a stream is done with it; ``pending``: the result of a
        page sent ahead was never read (the stream was closed early), so it is read and
        dropped first. A connection that fails that, or one too many, is closed."""
        if pending:
            try:
                receive(conn, conn.cursor())
            except Exception:
                _close(conn)
                return
        limit = max(1, self.database.options.pool_size)
        with self._lock:
            if self._pid == os.getpid() and len(self._idle) < limit:
                self._idle.append((conn, time.monotonic()))
                return
        _close(conn)

    def discard(self, conn: Any) -> None:
        """A stream connection that failed: close it, never use it again."""
        _close(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            if self._pid != os.getpid():
                return  # a forked child: the parent's connections, never closed here
        for conn, _ in idle:
            _close(conn)


def on_pymysql(database: Database) -> bool:
    """Whether ``database`` is MySQL/MariaDB on PyMySQL, where this module applies: a
    write transaction on its own connections sends BEGIN with its first statement
    (:func:`send_begin_with`), and ``iterate()`` streams (:func:`stream_connections`)."""
    known = _ON_PYMYSQL.get(database.key)
    if known is None:
        known = _ON_PYMYSQL[database.key] = database.family == "mysql" and \
            database.url.get_driver_name() == "pymysql"
    return known


_ON_PYMYSQL: dict[str, bool] = {}


def send_begin_with(conn: Any, cursor: Any, sql: str, params: Sequence[Any],
                    listeners: Iterable[Any] = ()) -> None:
    """BEGIN and ``sql`` in one round trip: both sent, then BEGIN's answer and ``sql``'s
    result read (as ``cursor.execute`` leaves it). A connection in autocommit otherwise
    pays a round trip for BEGIN alone, where one that is not (SQLAlchemy's) begins
    implicitly.

    Raises:
        BeginFailed: BEGIN's answer could not be read: ``sql``'s result is still unread,
            so the caller must not use the connection again (close it).
    """
    _send_raw(conn, "BEGIN")
    send(conn, cursor, sql, params, listeners)
    try:
        conn._read_query_result()
    except Exception as exc:
        raise BeginFailed(exc) from exc
    # Each command's answer is numbered from 1; PyMySQL expects the numbering to go on
    # from BEGIN's answer, as it would for packets of the same answer.
    conn._next_seq_id = 1
    _read_result(conn, cursor)


class BeginFailed(Exception):
    """BEGIN sent ahead failed: the connection's protocol state is unknown."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _send_raw(conn: Any, sql: str) -> None:
    conn._execute_command(_COM_QUERY, sql)


def send(conn: Any, cursor: Any, sql: str, params: Sequence[Any],
         listeners: Iterable[Any] = ()) -> None:
    """Send ``sql`` without reading its result (statement listeners see it first)."""
    for listener in listeners:
        listener(conn, cursor, sql, params, None, False)
    query = cursor.mogrify(sql, params)
    cursor._executed = query  # what PyMySQL's execute() records (fetchall() checks it)
    conn._execute_command(_COM_QUERY, query)


def receive(conn: Any, cursor: Any) -> tuple[Any, ...]:
    """The rows of the query :func:`send` sent on ``conn`` (read on ``cursor``)."""
    _read_result(conn, cursor)
    rows: tuple[Any, ...] = cursor.fetchall()
    return rows


def _read_result(conn: Any, cursor: Any) -> None:
    """Read the next answer on ``conn`` into ``cursor``, as ``cursor.execute`` does."""
    cursor._clear_result()
    conn._affected_rows = conn._read_query_result(unbuffered=False)
    cursor._do_get_result()


def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):
        conn.close()


_COM_QUERY = 0x03  # pymysql.constants.COMMAND.COM_QUERY
