"""Network faults: bounded waits, only ``RegistryError``s, no acknowledged write lost.

Each PostgreSQL / MariaDB test puts its own :class:`FaultProxy` on 127.0.0.1 in front of
the shared server (the server itself is never touched) and points a model at the proxy,
configured with short bounds (``configure_database``). Then it injects a fault and asserts,
for every sync read, write, ``transaction()`` commit and their async twins:

* the exception is the documented class (``DatabaseUnavailableError`` when the database
  cannot be reached), with the driver's error chained as ``__cause__``;
* the caller waited no longer than the configured bound plus ``SLACK`` (a bound on a hang,
  not a speed measurement: the slack absorbs a loaded 2-CPU CI machine);
* every acknowledged write is still there, read back through a direct connection, and a
  write that failed left nothing half-written.

Faults: ``refused`` (closed port), ``rejected`` (accepts and closes, as a server out of
connections), ``stalled`` (nothing forwarded; the server is alive but never answers),
``cut`` / ``stalled`` mid-result (part of a large result arrives), ``killed`` connections,
and pool exhaustion (every pooled connection in use).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from registers.db import (
    DatabaseError,
    DatabaseUnavailableError,
    RegistryError,
    UniqueConstraintError,
    configure_database,
    database_registry,
    dispose_engine,
)

from ._support import raw_rows
from .faultproxy import FaultProxy

Record = Callable[[str, object], None]

CONNECT_TIMEOUT = 2.0  # libpq's minimum
READ_TIMEOUT = 2.0
POOL_TIMEOUT = 1.0
SLACK = 4.0
# The worst single operation: the pooled connection's pre-ping stalls (read_timeout), then
# one reconnect stalls too (connect_timeout).
BOUND = READ_TIMEOUT + CONNECT_TIMEOUT
PAYLOAD = "x" * 1000
SEEDED = 200  # rows of PAYLOAD: a result of ~200 KB, far more than any cut budget

pytestmark = [pytest.mark.server, pytest.mark.slow]


class Item(BaseModel):
    id: int | None = None
    name: str
    payload: str = ""


@dataclass
class Server:
    direct: str  # the test's own schema / database, straight to the server
    url: str  # the same database through the proxy
    proxy: FaultProxy
    model: Any

    def names(self) -> set[str]:
        """Committed names, read through a connection that bypasses the proxy."""
        return {row[0] for row in raw_rows(self.direct, "SELECT name FROM items")}


@pytest.fixture
def server(backend: str, database_url: str) -> Iterator[Server]:
    if backend == "sqlite":
        pytest.skip("network faults need a server")
    url = sa.make_url(database_url)
    port = url.port or (5432 if backend == "postgresql" else 3306)
    proxy = FaultProxy(url.host or "127.0.0.1", port).start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    configure_database(proxied, connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                       pool_timeout=POOL_TIMEOUT, pool_size=2, max_overflow=0)
    model = database_registry(proxied, table_name="items")(
        type("Item", (Item,), {"__module__": __name__})
    )
    model.objects.bulk_create([{"name": f"seed{i}", "payload": PAYLOAD} for i in range(SEEDED)])
    try:
        yield Server(database_url, proxied, proxy, model)
    finally:
        proxy.close()  # the server sees every proxied client go, and rolls back
        dispose_engine(proxied)


SEED_NAMES = {f"seed{i}" for i in range(SEEDED)}

# --- the operations --------------------------------------------------------------------

READS: dict[str, Callable[[Any], Any]] = {
    "get": lambda M: M.objects.get(1),
    "filter": lambda M: M.objects.filter(name="seed1"),
    "count": lambda M: M.objects.count(),
    "exists": lambda M: M.objects.exists(name="seed1"),
    "all": lambda M: M.objects.all(),
    "first": lambda M: M.objects.first(),
    "iterate": lambda M: list(M.objects.iterate(batch_size=50)),
    "require": lambda M: M.objects.require(1),
}
AREADS: dict[str, Callable[[Any], Awaitable[Any]]] = {
    "aget": lambda M: M.objects.aget(1),
    "afilter": lambda M: M.objects.afilter(name="seed1"),
    "acount": lambda M: M.objects.acount(),
    "aexists": lambda M: M.objects.aexists(name="seed1"),
    "aall": lambda M: M.objects.aall(),
    "afirst": lambda M: M.objects.afirst(),
    "aiterate": lambda M: _alist(M.objects.aiterate(batch_size=50)),
    "arequire": lambda M: M.objects.arequire(1),
}
# each write would add or change the row named "lost" (which must then not exist)
WRITES: dict[str, Callable[[Any], Any]] = {
    "create": lambda M: M.objects.create(name="lost"),
    "bulk_create": lambda M: M.objects.bulk_create([{"name": "lost"}, {"name": "lost2"}]),
    "upsert": lambda M: M.objects.upsert(id=1, name="lost"),
    "update_where": lambda M: M.objects.update_where({"id": 1}, name="lost"),
    "delete": lambda M: M.objects.delete(1),
    "delete_where": lambda M: M.objects.delete_where(name="seed1"),
    "save": lambda M: M(id=2, name="lost").save(),
}
AWRITES: dict[str, Callable[[Any], Awaitable[Any]]] = {
    "acreate": lambda M: M.objects.acreate(name="lost"),
    "abulk_create": lambda M: M.objects.abulk_create([{"name": "lost"}, {"name": "lost2"}]),
    "aupsert": lambda M: M.objects.aupsert(id=1, name="lost"),
    "aupdate_where": lambda M: M.objects.aupdate_where({"id": 1}, name="lost"),
    "adelete": lambda M: M.objects.adelete(1),
    "adelete_where": lambda M: M.objects.adelete_where(name="seed1"),
    "asave": lambda M: M(id=2, name="lost").asave(),
}


async def _alist(items: Any) -> list[Any]:
    return [item async for item in items]


# --- the faults --------------------------------------------------------------------------


def _refused(proxy: FaultProxy) -> None:
    proxy.refuse()
    proxy.kill()


def _rejected(proxy: FaultProxy) -> None:
    proxy.reject()
    proxy.kill()


def _stalled(proxy: FaultProxy) -> None:
    proxy.stall()


FAULTS: dict[str, Callable[[FaultProxy], None]] = {
    "refused": _refused,
    "rejected": _rejected,
    "stalled": _stalled,
}


def _check_unavailable(exc: BaseException, elapsed: float, bound: float) -> None:
    assert isinstance(exc, DatabaseUnavailableError), repr(exc)
    assert exc.__cause__ is not None, "the driver's error must be chained"
    assert not isinstance(exc.__cause__, RegistryError)
    assert elapsed < bound + SLACK, f"waited {elapsed:.1f}s, bound {bound}s + {SLACK}s"


def _fail(call: Callable[[], Any]) -> tuple[BaseException, float]:
    started = time.monotonic()
    try:
        call()
    except Exception as exc:
        return exc, time.monotonic() - started
    raise AssertionError("the operation succeeded through a fault")


async def _afail(call: Callable[[], Awaitable[Any]]) -> tuple[BaseException, float]:
    started = time.monotonic()
    try:
        await call()
    except Exception as exc:
        return exc, time.monotonic() - started
    raise AssertionError("the operation succeeded through a fault")


def _warm(server: Server) -> None:
    """Acknowledged writes before the fault, and a pooled connection to break."""
    server.model.objects.create(name="acked-sync")
    assert server.model.objects.count() == SEEDED + 1


async def _awarm(server: Server) -> None:
    await server.model.objects.acreate(name="acked-async")
    assert await server.model.objects.acount() == SEEDED + 1


def _nothing_lost(server: Server, acked: str) -> None:
    """Every acknowledged row is there; the failed write changed nothing."""
    server.proxy.close()  # let the server see the abandoned sessions end
    names = server.names()
    assert acked in names, "an acknowledged write was lost"
    assert not names & {"lost", "lost2"}, "a failed write left rows behind"
    assert names >= SEED_NAMES, "a failed write changed or deleted rows"


# --- every operation under every fault ---------------------------------------------------


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("op", READS)
def test_sync_read_under_fault(server: Server, fault: str, op: str, figures: Record) -> None:
    _warm(server)
    FAULTS[fault](server.proxy)
    exc, elapsed = _fail(lambda: READS[op](server.model))
    _check_unavailable(exc, elapsed, BOUND)
    figures("waited s", round(elapsed, 2))
    _nothing_lost(server, "acked-sync")


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("op", WRITES)
def test_sync_write_under_fault(server: Server, fault: str, op: str, figures: Record) -> None:
    _warm(server)
    FAULTS[fault](server.proxy)
    exc, elapsed = _fail(lambda: WRITES[op](server.model))
    _check_unavailable(exc, elapsed, BOUND)
    figures("waited s", round(elapsed, 2))
    _nothing_lost(server, "acked-sync")


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("op", AREADS)
async def test_async_read_under_fault(server: Server, fault: str, op: str,
                                      figures: Record) -> None:
    await _awarm(server)
    FAULTS[fault](server.proxy)
    exc, elapsed = await _afail(lambda: AREADS[op](server.model))
    _check_unavailable(exc, elapsed, BOUND)
    figures("waited s", round(elapsed, 2))
    _nothing_lost(server, "acked-async")


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("op", AWRITES)
async def test_async_write_under_fault(server: Server, fault: str, op: str,
                                       figures: Record) -> None:
    await _awarm(server)
    FAULTS[fault](server.proxy)
    exc, elapsed = await _afail(lambda: AWRITES[op](server.model))
    _check_unavailable(exc, elapsed, BOUND)
    figures("waited s", round(elapsed, 2))
    _nothing_lost(server, "acked-async")


@pytest.mark.parametrize("fault", FAULTS)
def test_everything_works_again_once_the_fault_is_gone(server: Server, fault: str) -> None:
    _warm(server)
    FAULTS[fault](server.proxy)
    _fail(lambda: server.model.objects.get(1))
    _fail(lambda: server.model.objects.create(name="lost"))
    server.proxy.resume()
    assert server.model.objects.count() == SEEDED + 1
    server.model.objects.create(name="after")
    with server.model.objects.transaction():
        server.model.objects.create(name="after-block")
    assert {"after", "after-block"} <= server.names()


@pytest.mark.parametrize("fault", FAULTS)
async def test_everything_works_again_once_the_fault_is_gone_async(server: Server,
                                                                   fault: str) -> None:
    await _awarm(server)
    FAULTS[fault](server.proxy)
    await _afail(lambda: server.model.objects.aget(1))
    await _afail(lambda: server.model.objects.acreate(name="lost"))
    server.proxy.resume()
    assert await server.model.objects.acount() == SEEDED + 1
    await server.model.objects.acreate(name="after")
    async with server.model.objects.atransaction():
        await server.model.objects.acreate(name="after-block")
    assert {"after", "after-block"} <= server.names()


# --- faults in the middle of a result ----------------------------------------------------

MID_RESULT = {"cut": FaultProxy.cut_after, "stalled": FaultProxy.stall_after}
BIG_READS = ("all", "filter", "iterate")


@pytest.mark.parametrize("fault", MID_RESULT)
@pytest.mark.parametrize("op", BIG_READS)
def test_sync_read_broken_mid_result(server: Server, fault: str, op: str,
                                     figures: Record) -> None:
    _warm(server)
    MID_RESULT[fault](server.proxy, 16_384)  # ~16 KB of a ~200 KB result arrive
    read = {"all": lambda: server.model.objects.all(),
            "filter": lambda: server.model.objects.filter(payload=PAYLOAD),
            "iterate": lambda: list(server.model.objects.iterate(batch_size=150))}[op]
    exc, elapsed = _fail(read)
    _check_unavailable(exc, elapsed, READ_TIMEOUT)
    figures("waited s", round(elapsed, 2))
    _nothing_lost(server, "acked-sync")


@pytest.mark.parametrize("fault", MID_RESULT)
@pytest.mark.parametrize("op", BIG_READS)
async def test_async_read_broken_mid_result(server: Server, fault: str, op: str,
                                            figures: Record) -> None:
    await _awarm(server)
    MID_RESULT[fault](server.proxy, 16_384)
    read = {"all": lambda: server.model.objects.aall(),
            "filter": lambda: server.model.objects.afilter(payload=PAYLOAD),
            "iterate": lambda: _alist(server.model.objects.aiterate(batch_size=150))}[op]
    exc, elapsed = await _afail(read)
    _check_unavailable(exc, elapsed, READ_TIMEOUT)
    figures("waited s", round(elapsed, 2))
    _nothing_lost(server, "acked-async")


# --- killed connections --------------------------------------------------------------------


def test_a_killed_pooled_connection_is_replaced_transparently(server: Server) -> None:
    _warm(server)
    server.proxy.kill()
    assert server.model.objects.count() == SEEDED + 1  # pre-ping noticed, reconnected
    server.model.objects.create(name="after-kill")
    assert "after-kill" in server.names()


async def test_a_killed_async_pooled_connection_is_replaced_transparently(
    server: Server,
) -> None:
    await _awarm(server)
    server.proxy.kill()
    assert await server.model.objects.acount() == SEEDED + 1
    await server.model.objects.acreate(name="after-kill")
    assert "after-kill" in server.names()


async def test_naming_an_async_error_never_holds_up_the_event_loop(server: Server,
                                                                   backend: str) -> None:
    """A duplicate on a hand-made unique key, while new connections to the server hang:
    MySQL names the key's columns by asking the server on a new connection (up to
    connect_timeout); async code waits for that in a worker thread, so the other tasks
    of the loop run meanwhile. The error is still the documented one."""
    engine = sa.create_engine(server.direct, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:  # a key registers did not create (its name is MySQL's)
        conn.execute(sa.text("CREATE UNIQUE INDEX items_by_hand ON items (name)"))
    engine.dispose()
    await server.model.objects.acreate(name="taken")  # the direct connection is open
    server.proxy.hold_new()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.05)
    before = ticks
    try:
        exc, elapsed = await _afail(lambda: server.model.objects.acreate(name="taken"))
    finally:
        ticker.cancel()
        server.proxy.resume()
    assert isinstance(exc, UniqueConstraintError) and exc.__cause__ is not None
    assert elapsed < CONNECT_TIMEOUT + SLACK
    if backend == "mysql":  # it asked, and waited out connect_timeout
        assert elapsed >= CONNECT_TIMEOUT / 2
        # 10 ms ticks: a loop held up by the question would tick once at most meanwhile
        assert ticks - before >= 20, (ticks - before, elapsed)
    assert sorted(n for n in server.names() if n == "taken") == ["taken"]


@pytest.mark.parametrize("budget", [0, 5, 11, 40])
def test_a_transaction_cut_around_its_begin_changes_nothing(server: Server, backend: str,
                                                            budget: int) -> None:
    """MySQL/MariaDB: update_where is BEGIN + UPDATE (sent together), SELECT, COMMIT.
    The link is cut after ``budget`` bytes of answers: before BEGIN's answer is read
    (0, 5), between it and the UPDATE's (11), or later (40). The caller gets
    DatabaseUnavailableError, nothing was committed, and the next write works."""
    if backend != "mysql":
        pytest.skip("the BEGIN sent with the first statement is MySQL's (PyMySQL)")
    _warm(server)
    before = raw_rows(server.direct, "SELECT name FROM items WHERE id = 1")
    server.proxy.cut_after(budget)
    exc, elapsed = _fail(lambda: server.model.objects.update_where({"id": 1}, name="lost"))
    server.proxy.resume()
    assert isinstance(exc, DatabaseUnavailableError) and exc.__cause__ is not None
    assert elapsed < BOUND + SLACK
    assert raw_rows(server.direct, "SELECT name FROM items WHERE id = 1") == before
    assert server.model.objects.update_where({"id": 1}, name="after")[0].name == "after"


def test_iterate_carries_on_after_its_connection_is_killed(server: Server) -> None:
    # PostgreSQL reads the rows after the first page through a server-side cursor, MariaDB
    # page by page: either way a killed connection costs a resend from the last row read,
    # never a row twice or a row missed.
    _warm(server)
    expected = [row[0] for row in raw_rows(server.direct, "SELECT id FROM items ORDER BY id")]
    seen = []
    for item in server.model.objects.iterate(batch_size=50):
        seen.append(item.id)
        if len(seen) in (75, 160):
            server.proxy.kill()
    assert seen == expected


async def test_aiterate_carries_on_after_its_connection_is_killed(server: Server) -> None:
    await _awarm(server)
    expected = [row[0] for row in raw_rows(server.direct, "SELECT id FROM items ORDER BY id")]
    seen = []
    async for item in server.model.objects.aiterate(batch_size=50):
        seen.append(item.id)
        if len(seen) in (75, 160):
            server.proxy.kill()
    assert seen == expected


def test_a_connection_killed_inside_a_transaction(server: Server) -> None:
    _warm(server)
    M = server.model

    def block() -> None:
        with M.objects.transaction():
            M.objects.create(name="lost")
            server.proxy.kill()
            M.objects.create(name="lost2")

    exc, elapsed = _fail(block)
    _check_unavailable(exc, elapsed, READ_TIMEOUT)
    _nothing_lost(server, "acked-sync")


async def test_a_connection_killed_inside_an_async_transaction(server: Server) -> None:
    await _awarm(server)
    M = server.model

    async def block() -> None:
        async with M.objects.atransaction():
            await M.objects.acreate(name="lost")
            server.proxy.kill()
            await M.objects.acreate(name="lost2")

    exc, elapsed = await _afail(block)
    _check_unavailable(exc, elapsed, READ_TIMEOUT)
    _nothing_lost(server, "acked-async")


# --- COMMIT failing at the end of a transaction block --------------------------------------

COMMIT_FAULTS = {"killed": FaultProxy.kill, "stalled": FaultProxy.stall}


@pytest.mark.parametrize("fault", COMMIT_FAULTS)
def test_commit_failure_of_a_transaction_block(server: Server, fault: str,
                                               figures: Record) -> None:
    _warm(server)
    M = server.model

    def block() -> None:
        with M.objects.transaction():
            M.objects.create(name="lost")
            M.objects.bulk_create([{"name": "lost2"}])
            COMMIT_FAULTS[fault](server.proxy)

    exc, elapsed = _fail(block)
    _check_unavailable(exc, elapsed, READ_TIMEOUT)
    assert "commit" in str(exc)
    figures("waited s", round(elapsed, 2))
    _nothing_lost(server, "acked-sync")


@pytest.mark.parametrize("fault", COMMIT_FAULTS)
async def test_commit_failure_of_an_async_transaction_block(server: Server, fault: str,
                                                            figures: Record) -> None:
    await _awarm(server)
    M = server.model

    async def block() -> None:
        async with M.objects.atransaction():
            await M.objects.acreate(name="lost")
            await M.objects.abulk_create([{"name": "lost2"}])
            COMMIT_FAULTS[fault](server.proxy)

    exc, elapsed = await _afail(block)
    _check_unavailable(exc, elapsed, READ_TIMEOUT)
    assert "commit" in str(exc)
    figures("waited s", round(elapsed, 2))
    _nothing_lost(server, "acked-async")


@pytest.mark.parametrize("fault", FAULTS)
def test_entering_a_transaction_block_under_fault(server: Server, fault: str) -> None:
    _warm(server)
    FAULTS[fault](server.proxy)
    entered = []

    def block() -> None:
        with server.model.objects.transaction():
            entered.append(True)
            server.model.objects.create(name="lost")

    exc, elapsed = _fail(block)
    _check_unavailable(exc, elapsed, BOUND)
    _nothing_lost(server, "acked-sync")


# --- pool exhaustion (max_connections reached on our side) ---------------------------------


def test_pool_exhaustion_waits_pool_timeout_then_raises(server: Server,
                                                        figures: Record) -> None:
    configure_database(server.url, connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                       pool_timeout=POOL_TIMEOUT, pool_size=1, max_overflow=0)
    M = server.model
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with M.objects.transaction():
            M.objects.create(name="held")
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(30)
        for op in ("get", "count", "all"):
            exc, elapsed = _fail(lambda op=op: READS[op](M))
            _check_unavailable(exc, elapsed, POOL_TIMEOUT)
            assert "pool_timeout" in str(exc)
            figures(f"{op} waited s", round(elapsed, 2))
        exc, elapsed = _fail(lambda: M.objects.create(name="lost"))
        _check_unavailable(exc, elapsed, POOL_TIMEOUT)
    finally:
        release.set()
        holder.join(30)
    assert M.objects.count() == SEEDED + 1  # the pool serves again
    assert "held" in server.names()
    _nothing_lost(server, "held")


async def test_async_pool_exhaustion_waits_pool_timeout_then_raises(server: Server) -> None:
    configure_database(server.url, connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                       pool_timeout=POOL_TIMEOUT, pool_size=1, max_overflow=0)
    M = server.model
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with M.objects.atransaction():
            await M.objects.acreate(name="held")
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    try:
        await asyncio.wait_for(holding.wait(), 30)
        exc, elapsed = await _afail(lambda: M.objects.aget(1))
        _check_unavailable(exc, elapsed, POOL_TIMEOUT)
        exc, elapsed = await _afail(lambda: M.objects.acreate(name="lost"))
        _check_unavailable(exc, elapsed, POOL_TIMEOUT)
    finally:
        release.set()
        await holder
    assert await M.objects.acount() == SEEDED + 1
    _nothing_lost(server, "held")


# --- the server's own statement timeout ----------------------------------------------------


def _lock_table(backend: str, direct: str) -> tuple[Any, Any]:
    engine = sa.create_engine(direct, poolclass=sa.pool.NullPool)
    conn = engine.connect()
    if backend == "postgresql":
        conn.execute(sa.text("LOCK TABLE items IN ACCESS EXCLUSIVE MODE"))
    else:
        conn.execute(sa.text("LOCK TABLES items WRITE"))
    return engine, conn


def test_statement_timeout_cancels_a_waiting_statement(server: Server, backend: str,
                                                       figures: Record) -> None:
    configure_database(server.url, statement_timeout=0.5, read_timeout=30)
    engine, conn = _lock_table(backend, server.direct)
    try:
        exc, elapsed = _fail(lambda: server.model.objects.count())
    finally:
        conn.rollback()
        conn.close()
        engine.dispose()
    assert isinstance(exc, DatabaseError) and not isinstance(exc, DatabaseUnavailableError)
    assert exc.__cause__ is not None
    assert elapsed < 0.5 + SLACK
    figures("waited s", round(elapsed, 2))
    assert server.model.objects.count() == SEEDED  # the connection is fine afterwards


async def test_statement_timeout_cancels_a_waiting_async_statement(server: Server,
                                                                   backend: str) -> None:
    configure_database(server.url, statement_timeout=0.5, read_timeout=30)
    engine, conn = _lock_table(backend, server.direct)
    try:
        exc, elapsed = await _afail(lambda: server.model.objects.acount())
    finally:
        conn.rollback()
        conn.close()
        engine.dispose()
    assert isinstance(exc, DatabaseError) and not isinstance(exc, DatabaseUnavailableError)
    assert exc.__cause__ is not None
    assert elapsed < 0.5 + SLACK
    assert await server.model.objects.acount() == SEEDED


# --- configuration -------------------------------------------------------------------------


def test_a_url_that_cannot_be_reached_at_all() -> None:
    """A closed port, with the default options: refused at once, no raw driver error."""
    with FaultProxy("127.0.0.1", 9) as proxy:
        port = proxy.port
    url = f"postgresql+psycopg://nobody@127.0.0.1:{port}/none"
    # decorating never connects; the first use is refused
    model: Any = database_registry(url, table_name="t")(
        type("T", (BaseModel,), {"__annotations__": {"id": int}}))
    exc, elapsed = _fail(lambda: model.objects.count())
    assert isinstance(exc, DatabaseUnavailableError)
    assert elapsed < 10 + SLACK
    dispose_engine(url)
