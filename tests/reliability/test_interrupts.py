"""Interrupts: Ctrl-C (or SystemExit, or an exception a signal handler raises) landing in
the middle of a statement never leaves a connection that answers the next statement
with the interrupted one's result.

A server's answer to the cut statement may still be on the wire: a connection kept after
that hands the next caller someone else's rows (PyMySQL) or refuses every statement from
then on (psycopg: "another command is already in progress"). The interrupt is raised by a
SIGALRM handler, as Ctrl-C would be, while the driver waits for the server's answer.
"""

from __future__ import annotations

import gc
import logging
import random
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from registers.db import database_registry

from ._support import raw_rows

# The server sleeps once (in a derived table) before it answers with every row.
SLEEPS = {
    "sqlite": None,
    "postgresql": "SELECT i.id, i.name, i.email FROM interrupted i, (SELECT pg_sleep(%s)) w",
    "mysql": "SELECT i.id, i.name, i.email FROM interrupted i "
             "JOIN (SELECT SLEEP(%s) AS s) w ON w.s = 0",
}


class Alarm(Exception):
    """What a signal handler of the application's own raises (a timeout, say)."""


@pytest.fixture
def Item(database_url: str) -> Any:
    @database_registry(database_url, table_name="interrupted", unique_fields=["email"])
    class Item(BaseModel):
        id: int | None = None
        name: str
        email: str

    Item.objects.bulk_create([{"name": f"n{i}", "email": f"{i}@x.io"} for i in range(20)])
    return Item


@pytest.fixture
def alarm() -> Iterator[Callable[[float, type[BaseException]], None]]:
    """``alarm(seconds, exc)``: raise ``exc`` in the main thread after ``seconds``."""
    raised: list[type[BaseException]] = [KeyboardInterrupt]

    def handler(signum: int, frame: Any) -> None:
        raise raised[0]

    def arm(seconds: float, exc: type[BaseException] = KeyboardInterrupt) -> None:
        raised[0] = exc
        signal.setitimer(signal.ITIMER_REAL, seconds)

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        yield arm
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _answers_truly(Item: Any, url: str) -> None:
    """Every kind of statement gets its own answer afterwards."""
    stored = raw_rows(url, "SELECT id, name, email FROM interrupted ORDER BY id")
    assert Item.objects.count() == len(stored)
    assert [(i.id, i.name, i.email) for i in Item.objects.all()] == [tuple(r) for r in stored]
    first = stored[0]
    assert Item.objects.get(first[0]).name == first[1]
    assert len(list(Item.objects.iterate(batch_size=3))) == len(stored)
    made = Item.objects.create(name="after", email=f"after{len(stored)}@x.io")
    assert Item.objects.get(made.id) == made


@pytest.mark.parametrize("raised", [KeyboardInterrupt, SystemExit, Alarm])
def test_an_interrupt_while_the_server_answers_a_read(
        Item: Any, backend: str, database_url: str, alarm: Any,
        raised: type[BaseException]) -> None:
    if SLEEPS[backend] is None:
        pytest.skip("SQLite runs statements in-process: an interrupt lands between them")
    Item.objects.count()  # the thread's connection is open: the interrupt hits the read
    alarm(0.05, raised)
    with pytest.raises(raised):
        Item.objects.raw(SLEEPS[backend], [0.5])

    _answers_truly(Item, database_url)


def test_an_interrupt_inside_a_transaction_block_rolls_it_back(
        Item: Any, backend: str, database_url: str, alarm: Any) -> None:
    if SLEEPS[backend] is None:
        pytest.skip("SQLite runs statements in-process: an interrupt lands between them")
    before = raw_rows(database_url, "SELECT id, name, email FROM interrupted ORDER BY id")
    with pytest.raises(KeyboardInterrupt), Item.objects.transaction():
        Item.objects.create(name="in block", email="block@x.io")
        alarm(0.05)
        Item.objects.raw(SLEEPS[backend], [0.5])

    assert raw_rows(database_url, "SELECT id, name, email FROM interrupted ORDER BY id") \
        == before
    with Item.objects.transaction():  # the pool hands out a sound connection
        assert Item.objects.count() == len(before)
    _answers_truly(Item, database_url)


# An interrupt that lands in a driver object's finalizer is printed and ignored by Python
# ("Exception ignored in: MySQLResult.__del__"): the drivers', not a registers behaviour;
# so are SQLAlchemy's complaints about a connection an interrupt left to the collector.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_interrupts_at_random_moments_never_mix_up_answers(
        Item: Any, database_url: str, alarm: Any, request: pytest.FixtureRequest) -> None:
    # SQLAlchemy's pool logs what an interrupt cut short with its traceback; pytest keeps
    # the records until the test's teardown, and with them the frames of connections the
    # interrupt left to the collector (SQLAlchemy 2.0.0's finalizer then raises there).
    pool_log = logging.getLogger("sqlalchemy.pool")
    request.addfinalizer(lambda level=pool_log.level: pool_log.setLevel(level))
    pool_log.setLevel(logging.CRITICAL + 1)
    rnd = random.Random(20261206)
    first = Item.objects.first(order_by="id")
    interrupted = 0
    for trial in range(150):
        try:
            alarm(rnd.random() * 0.003)
            for _ in range(12):
                op = rnd.randrange(5)
                if op == 0:
                    Item.objects.upsert(name="u", email=f"u{rnd.randrange(30)}@x.io")
                elif op == 1:
                    assert Item.objects.count() >= 20
                elif op == 2:
                    assert len(list(Item.objects.iterate(batch_size=7))) >= 20
                elif op == 3:
                    with Item.objects.transaction():
                        Item.objects.create(name="t", email=f"t{trial}-{rnd.random()}@x.io")
                else:
                    assert Item.objects.get(first.id) == first
            alarm(0)
        except BaseException as exc:
            alarm(0)
            if not _caused_by_the_interrupt(exc):
                raise
            interrupted += 1
        # wherever it landed (a driver's wait, a transaction block's exit, SQLAlchemy's
        # pool), every statement after it gets its own answer, outside any block
        assert Item.objects.database.current_transaction() is None
        assert Item.objects.get(first.id) == first
        assert Item.objects.count() == len(Item.objects.all())

    assert interrupted > 20  # the interrupts really landed mid-operation
    _answers_truly(Item, database_url)
    # An interrupt inside SQLAlchemy's pool can leave a checked-out connection to the
    # garbage collector; collected here, where its finalizer's complaint is ignored
    # (SQLAlchemy 2.0.0's raises AttributeError), not in whichever test runs next.
    gc.collect()


def _caused_by_the_interrupt(exc: BaseException | None) -> bool:
    """Whether ``exc`` is the KeyboardInterrupt, or an error raised while handling it (an
    interrupt inside SQLAlchemy's commit can surface as its internal AssertionError)."""
    while exc is not None:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__context__
    return False
