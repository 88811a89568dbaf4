"""Sync/async parity: every public operation, run sync and async on the same data.

Two identical tables (``sync_items`` and ``async_items``) receive the same sequence of
operations, one through the sync manager, the other through the async twins. After each
step the results (or the exception class and message) and the SQL statements sent must be
identical once the table name is normalised. This is what keeps the two sides from
drifting apart: there is one implementation of each operation, and this test proves it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from registers.db import Avg, Count, F, Max, Sum, aio, database_registry, get_engine

_SAVEPOINT = re.compile(r"registers_a?w\d+")


def _models(url: str) -> tuple[Any, Any]:
    made = []
    for table in ("sync_items", "async_items"):

        @database_registry(url, table_name=table, unique_fields=["code"])
        class Item(BaseModel):
            id: int | None = None
            code: str | None = None
            name: str
            qty: int = 0

        made.append(Item)
    return made[0], made[1]


class Recorder:
    """Statements sent by one side, with the table name normalised."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.statements: list[tuple[str, Any]] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, parameters: Any,
                 context: Any, many: bool) -> None:
        if self.table not in statement and "SAVEPOINT" not in statement:
            return  # connection set-up, not the operation's own SQL
        sql = _SAVEPOINT.sub("registers_sp", statement.replace(self.table, "<table>"))
        if many and len(parameters) == 1:  # SQLAlchemy sends a one-row batch as one row
            many, parameters = False, parameters[0]
        params = [self._names(p) for p in parameters] if many else self._names(parameters or ())
        self.statements.append((sql, params))

    def _names(self, params: Any) -> list[Any]:
        return [p.replace(self.table, "<table>") if isinstance(p, str) else p for p in params]

    def take(self) -> list[tuple[str, Any]]:
        taken, self.statements = self.statements, []
        return taken


@contextmanager
def _listening(engine: sa.Engine, recorder: Recorder) -> Iterator[None]:
    sa.event.listen(engine, "before_cursor_execute", recorder)
    try:
        yield
    finally:
        sa.event.remove(engine, "before_cursor_execute", recorder)


def _shown(value: Any, table: str) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, list):
        return [_shown(v, table) for v in value]
    if isinstance(value, tuple):
        return tuple(_shown(v, table) for v in value)
    if isinstance(value, dict):
        return {k: _shown(v, table) for k, v in value.items()}
    if isinstance(value, BaseException):
        return (type(value).__name__, str(value).replace(table, "<table>"))
    return value


# Each step: (sync call, async call). ``m`` is the model class, ``s`` a dict of
# instances kept between steps (same positions on both sides).
Step = tuple[str, Callable[[Any, dict[str, Any]], Any], Callable[[Any, dict[str, Any]], Any]]


async def _alist(iterator: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in iterator]


def _keep(s: dict[str, Any], name: str, value: Any) -> Any:
    s[name] = value
    return value


STEPS: list[Step] = [
    ("create", lambda m, s: _keep(s, "a", m.objects.create(name="a", code="A", qty=1)),
     lambda m, s: m.objects.acreate(name="a", code="A", qty=1)),
    ("strict_create", lambda m, s: m.objects.strict_create(name="b", code="B", qty=2),
     lambda m, s: m.objects.astrict_create(name="b", code="B", qty=2)),
    ("create duplicate unique", lambda m, s: m.objects.create(name="dup", code="A"),
     lambda m, s: m.objects.acreate(name="dup", code="A")),
    ("create with managed key", lambda m, s: m.objects.create(id=5, name="x"),
     lambda m, s: m.objects.acreate(id=5, name="x")),
    ("create invalid", lambda m, s: m.objects.create(name="x", qty="many"),
     lambda m, s: m.objects.acreate(name="x", qty="many")),
    ("upsert by unique (update)", lambda m, s: m.objects.upsert(code="A", name="a2", qty=3),
     lambda m, s: m.objects.aupsert(code="A", name="a2", qty=3)),
    ("upsert by unique (insert)", lambda m, s: m.objects.upsert(code="C", name="c", qty=4),
     lambda m, s: m.objects.aupsert(code="C", name="c", qty=4)),
    ("upsert by key", lambda m, s: m.objects.upsert(id=2, code="B", name="b2", qty=5),
     lambda m, s: m.objects.aupsert(id=2, code="B", name="b2", qty=5)),
    ("upsert by new key", lambda m, s: m.objects.upsert(id=40, name="k", qty=6),
     lambda m, s: m.objects.aupsert(id=40, name="k", qty=6)),
    ("upsert without key or unique", lambda m, s: m.objects.upsert(name="plain"),
     lambda m, s: m.objects.aupsert(name="plain")),
    ("upsert instance", lambda m, s: m.objects.upsert(m(id=1, code="A", name="a3")),
     lambda m, s: m.objects.aupsert(m(id=1, code="A", name="a3"))),
    ("upsert unique clash", lambda m, s: m.objects.upsert(id=2, code="C", name="clash"),
     lambda m, s: m.objects.aupsert(id=2, code="C", name="clash")),
    ("bulk_create", lambda m, s: m.objects.bulk_create(
        [{"name": f"n{i}", "qty": i % 3} for i in range(7)]),
     lambda m, s: m.objects.abulk_create([{"name": f"n{i}", "qty": i % 3} for i in range(7)])),
    ("bulk_create empty", lambda m, s: m.objects.bulk_create([]),
     lambda m, s: m.objects.abulk_create([])),
    ("bulk_create duplicate", lambda m, s: m.objects.bulk_create(
        [{"name": "d1", "code": "D"}, {"name": "d2", "code": "D"}]),
     lambda m, s: m.objects.abulk_create([{"name": "d1", "code": "D"},
                                          {"name": "d2", "code": "D"}])),
    ("bulk_upsert", lambda m, s: m.objects.bulk_upsert(
        [{"code": "A", "name": "bu-a"}, {"code": "E", "name": "bu-e"}, {"id": 3, "name": "bu3"},
         {"id": 60, "name": "bu60"}, {"name": "bu-plain"}]),
     lambda m, s: m.objects.abulk_upsert(
        [{"code": "A", "name": "bu-a"}, {"code": "E", "name": "bu-e"}, {"id": 3, "name": "bu3"},
         {"id": 60, "name": "bu60"}, {"name": "bu-plain"}])),
    ("get by key", lambda m, s: m.objects.get(1), lambda m, s: m.objects.aget(1)),
    ("get missing", lambda m, s: m.objects.get(999), lambda m, s: m.objects.aget(999)),
    ("get by criteria", lambda m, s: m.objects.get(code="C"),
     lambda m, s: m.objects.aget(code="C")),
    ("get bad key", lambda m, s: m.objects.get("nope"), lambda m, s: m.objects.aget("nope")),
    ("require", lambda m, s: m.objects.require(code="E"),
     lambda m, s: m.objects.arequire(code="E")),
    ("require missing", lambda m, s: m.objects.require(code="zz"),
     lambda m, s: m.objects.arequire(code="zz")),
    ("filter", lambda m, s: m.objects.filter(qty__gte=1, order_by=["-qty", "id"], limit=4,
                                             offset=1),
     lambda m, s: m.objects.afilter(qty__gte=1, order_by=["-qty", "id"], limit=4, offset=1)),
    ("filter unknown field", lambda m, s: m.objects.filter(nope=1),
     lambda m, s: m.objects.afilter(nope=1)),
    ("all", lambda m, s: m.objects.all(), lambda m, s: m.objects.aall()),
    ("get_all", lambda m, s: m.objects.get_all(), lambda m, s: m.objects.aget_all()),
    ("first", lambda m, s: m.objects.first(qty=0), lambda m, s: m.objects.afirst(qty=0)),
    ("last", lambda m, s: m.objects.last(order_by="name"),
     lambda m, s: m.objects.alast(order_by="name")),
    ("exists", lambda m, s: m.objects.exists(code="B"), lambda m, s: m.objects.aexists(code="B")),
    ("exists not", lambda m, s: m.objects.exists(code="Q"),
     lambda m, s: m.objects.aexists(code="Q")),
    ("count", lambda m, s: m.objects.count(qty__lt=2), lambda m, s: m.objects.acount(qty__lt=2)),
    ("aggregate", lambda m, s: m.objects.where(qty__lt=5).aggregate(
        n=Count("id"), total=Sum("qty"), mean=Avg("qty"), top=Max("name")),
     lambda m, s: m.objects.where(qty__lt=5).aaggregate(
        n=Count("id"), total=Sum("qty"), mean=Avg("qty"), top=Max("name"))),
    ("aggregate bad field", lambda m, s: m.objects.aggregate(s=Sum("name")),
     lambda m, s: m.objects.aaggregate(s=Sum("name"))),
    ("grouped annotate", lambda m, s: m.objects.values("qty").annotate(n=Count("id")).where(
        n__gte=1).order_by("-n").all(),
     lambda m, s: m.objects.values("qty").annotate(n=Count("id")).where(
        n__gte=1).order_by("-n").aall()),
    ("iterate", lambda m, s: list(m.objects.iterate(batch_size=3)),
     lambda m, s: _alist(m.objects.aiterate(batch_size=3))),
    ("iterate ordered", lambda m, s: list(m.objects.iterate(batch_size=2, order_by="qty")),
     lambda m, s: _alist(m.objects.aiterate(batch_size=2, order_by="qty"))),
    ("iterate bad batch", lambda m, s: list(m.objects.iterate(batch_size=0)),
     lambda m, s: _alist(m.objects.aiterate(batch_size=0))),
    ("update_where", lambda m, s: m.objects.update_where({"qty__lte": 1}, qty=F("qty") + 10),
     lambda m, s: m.objects.aupdate_where({"qty__lte": 1}, qty=F("qty") + 10)),
    ("update_where constant", lambda m, s: m.objects.update_where({"qty__gte": 10}, name="u"),
     lambda m, s: m.objects.aupdate_where({"qty__gte": 10}, name="u")),
    ("update_where constant on the WHERE's field",
     lambda m, s: m.objects.update_where({"name": "u"}, name="v"),
     lambda m, s: m.objects.aupdate_where({"name": "u"}, name="v")),
    ("update_where no criteria", lambda m, s: m.objects.update_where({}, qty=1),
     lambda m, s: m.objects.aupdate_where({}, qty=1)),
    ("update_where key", lambda m, s: m.objects.update_where({"id": 1}, id=9),
     lambda m, s: m.objects.aupdate_where({"id": 1}, id=9)),
    ("delete", lambda m, s: m.objects.delete(3), lambda m, s: m.objects.adelete(3)),
    ("delete missing", lambda m, s: m.objects.delete(3), lambda m, s: m.objects.adelete(3)),
    ("delete_where", lambda m, s: m.objects.delete_where(qty=11),
     lambda m, s: m.objects.adelete_where(qty=11)),
    ("delete_where no criteria", lambda m, s: m.objects.delete_where(),
     lambda m, s: m.objects.adelete_where()),
    ("save new", lambda m, s: _keep(s, "n", m(name="saved", qty=7)).save(),
     lambda m, s: _keep(s, "n", m(name="saved", qty=7)).asave()),
    ("save changed", lambda m, s: (setattr(s["n"], "qty", 8), s["n"].save())[1],
     lambda m, s: (setattr(s["n"], "qty", 8), s["n"].asave())[1]),
    ("refresh", lambda m, s: s["n"].refresh(), lambda m, s: s["n"].arefresh()),
    ("save immutable key", lambda m, s: (setattr(s["n"], "id", 777), s["n"].save())[1],
     lambda m, s: (setattr(s["n"], "id", 777), s["n"].asave())[1]),
    ("delete instance", lambda m, s: m.objects.get(1).delete(),
     lambda m, s: _adelete_first(m)),
    ("refresh deleted", lambda m, s: m(id=1, name="gone").refresh(),
     lambda m, s: m(id=1, name="gone").arefresh()),
    ("final state", lambda m, s: m.objects.all(), lambda m, s: m.objects.aall()),
]


async def _adelete_first(m: Any) -> Any:
    found = await m.objects.aget(1)
    return await found.adelete()


def _run_sync(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:
        return exc


async def _run_async(call: Callable[[], Any]) -> Any:
    try:
        return await call()
    except Exception as exc:
        return exc


@asynccontextmanager
async def _async_listening(url: str, recorder: Recorder) -> AsyncIterator[None]:
    engine = aio.get_async_engine(url)
    with _listening(engine.sync_engine, recorder):
        yield


def _sync_listening(url: str, recorder: Recorder) -> AbstractContextManager[None]:
    return _listening(get_engine(url), recorder)


async def test_every_operation_sends_the_same_sql_and_returns_the_same(database_url: str) -> None:
    SyncItem, AsyncItem = _models(database_url)
    sync_rec, async_rec = Recorder("sync_items"), Recorder("async_items")
    sync_state: dict[str, Any] = {}
    async_state: dict[str, Any] = {}
    try:
        with _sync_listening(database_url, sync_rec):
            async with _async_listening(database_url, async_rec):
                for name, sync_call, async_call in STEPS:
                    sync_result = _run_sync(functools.partial(sync_call, SyncItem, sync_state))
                    async_result = await _run_async(
                        functools.partial(async_call, AsyncItem, async_state))
                    assert _shown(async_result, "async_items") == _shown(
                        sync_result, "sync_items"), name
                    assert async_rec.take() == sync_rec.take(), name
    finally:
        await aio.adispose_all()


async def test_transactions_send_the_same_sql(database_url: str) -> None:
    SyncItem, AsyncItem = _models(database_url)
    sync_rec, async_rec = Recorder("sync_items"), Recorder("async_items")
    try:
        with _sync_listening(database_url, sync_rec):
            async with _async_listening(database_url, async_rec):
                with SyncItem.objects.transaction():
                    SyncItem.objects.create(name="t1", code="T")
                    SyncItem.objects.upsert(code="T", name="t2")
                    SyncItem.objects.bulk_create([{"name": "t3"}, {"name": "t4"}])
                    with SyncItem.objects.transaction():
                        SyncItem.objects.update_where({"code": "T"}, qty=F("qty") + 1)
                        SyncItem.objects.update_where({"code": "T"}, name="t5")
                async with AsyncItem.objects.atransaction():
                    await AsyncItem.objects.acreate(name="t1", code="T")
                    await AsyncItem.objects.aupsert(code="T", name="t2")
                    await AsyncItem.objects.abulk_create([{"name": "t3"}, {"name": "t4"}])
                    async with AsyncItem.objects.atransaction():
                        await AsyncItem.objects.aupdate_where({"code": "T"}, qty=F("qty") + 1)
                        await AsyncItem.objects.aupdate_where({"code": "T"}, name="t5")
                assert async_rec.take() == sync_rec.take()
                assert _shown(await AsyncItem.objects.aall(), "") == _shown(
                    SyncItem.objects.all(), "")
    finally:
        await aio.adispose_all()


@pytest.mark.parametrize("method", ["get", "filter", "count", "create", "upsert", "iterate",
                                    "aggregate"])
def test_every_sync_operation_has_an_async_twin(method: str) -> None:
    from registers.db import DatabaseRegistry

    assert hasattr(DatabaseRegistry, f"a{method}")
