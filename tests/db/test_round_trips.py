"""One round trip per single statement on the servers (no ping, no BEGIN, no ROLLBACK).

PostgreSQL: libpq's own protocol trace of the thread's connection counts the messages
that end a round trip (``Sync`` of the extended protocol, ``Query`` of the simple one).
MariaDB: the server's per-session ``Questions`` counter counts every statement the
connection sent (the counter query itself is one of them).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from registers.db import database_registry


def _model(url: str) -> Any:
    @database_registry(url, table_name="trips", unique_fields=["code"])
    class Item(BaseModel):
        id: int | None = None
        code: str | None = None
        name: str

    return Item


OPERATIONS: dict[str, Callable[[Any], Any]] = {
    "get by key": lambda m: m.objects.get(1),
    "get by criteria": lambda m: m.objects.get(name="a"),
    "filter": lambda m: m.objects.filter(name__startswith="a"),
    "count": lambda m: m.objects.count(),
    "exists": lambda m: m.objects.exists(code="A"),
    "create": lambda m: m.objects.create(name="x"),
    "upsert existing key": lambda m: m.objects.upsert(id=1, name="a2", code="A"),
    "upsert by unique": lambda m: m.objects.upsert(code="B", name="b"),
    "update_where": lambda m: m.objects.update_where({"id": 1}, name="a3"),
    "delete": lambda m: m.objects.delete(999),
    "delete_where": lambda m: m.objects.delete_where(name="nobody"),
}
# MySQL has no UPDATE ... RETURNING: update_where locks, updates and re-reads in a
# transaction (BEGIN, SELECT ... FOR UPDATE, UPDATE, SELECT, COMMIT). Its ON DUPLICATE KEY
# UPDATE fires on any unique index, so an upsert by key on a table with another unique
# column locks the row and decides (BEGIN, SELECT ... FOR UPDATE, UPDATE, COMMIT) rather
# than risk updating the row that owns the other value.
MYSQL_TRIPS = {"update_where": 5, "upsert existing key": 4}


def _pg_round_trips(conn: Any, operation: Callable[[], Any]) -> int:
    with tempfile.TemporaryFile("w+") as trace:
        conn.pgconn.trace(trace.fileno())
        try:
            operation()
        finally:
            conn.pgconn.untrace()
        trace.seek(0)
        lines = [line.split("\t") for line in trace.read().splitlines()]
    return sum(1 for f in lines if len(f) > 3 and f[1] == "F" and f[3].strip() in ("Sync", "Query"))


def _mysql_statements(conn: Any, operation: Callable[[], Any]) -> int:
    def questions() -> int:
        cursor = conn.cursor()
        cursor.execute("SHOW SESSION STATUS LIKE 'Questions'")
        return int(cursor.fetchall()[0][1])

    before = questions()
    operation()
    return questions() - before - 1  # the second SHOW counts itself


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_a_single_statement_is_one_round_trip(database_url: str, name: str) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite has no round trips")
    Item = _model(database_url)
    Item.objects.create(name="a", code="A")  # opens the thread's connection
    conn = Item.objects.database.autocommit_connection()
    operation = OPERATIONS[name]
    operation(Item)  # warm: statement caches, sequences
    if database_url.startswith("postgresql"):
        assert _pg_round_trips(conn, lambda: operation(Item)) == 1
    else:
        assert _mysql_statements(conn, lambda: operation(Item)) == MYSQL_TRIPS.get(name, 1)


def test_the_thread_connection_is_replaced_after_the_server_dropped_it(database_url: str,
                                                                       raw: Any) -> None:
    """A killed connection: the next read reconnects and answers; nothing is lost."""
    if database_url.startswith("sqlite"):
        pytest.skip("no server connection to kill")
    Item = _model(database_url)
    Item.objects.create(name="a", code="A")
    conn = Item.objects.database.autocommit_connection()
    if database_url.startswith("postgresql"):
        pid = conn.info.backend_pid
        raw.execute(f"SELECT pg_terminate_backend({int(pid)})")
    else:
        raw.execute(f"KILL {int(conn.thread_id())}")
    assert Item.objects.get(1).name == "a"  # a read is sent again on a new connection
    assert Item.objects.database.autocommit_connection() is not conn
    assert Item.objects.create(name="b").id is not None


def test_explicit_keys_move_the_postgresql_sequence_only_when_they_overtake_it(
        database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL sequences")
    Item = _model(database_url)
    Item.objects.upsert(id=50, name="explicit")
    assert Item.objects.create(name="next").id == 51  # never collides with 50
    Item.objects.delete(51)
    assert Item.objects.create(name="again").id == 52  # a deleted key is not reused
    conn = Item.objects.database.autocommit_connection()
    assert _pg_round_trips(conn, lambda: Item.objects.upsert(id=10, name="below")) == 1
    assert _pg_round_trips(conn, lambda: Item.objects.upsert(id=90, name="above")) == 2
    assert Item.objects.create(name="after").id == 91


