"""registers.db's async API against hand-written async drivers and async peers.

One command (from the repository root, after ``pip install -e ".[dev,bench]"``)::

    python -m benchmarks.async_bench                  # SQLite, PostgreSQL, MariaDB; 1,000 ops x 5
    python -m benchmarks.async_bench --quick          # smoke run: 200 ops x 3 rounds, ~1-2 minutes
    python -m benchmarks.async_bench --backends postgresql --ops 2000 --rounds 7
    python -m benchmarks.async_bench --backends postgresql --profile /tmp/prof

Each backend runs in its own subprocess (Tortoise ORM keeps global state), one event
loop, every contender on its own table of the same shape (SQLite: its own file, WAL,
``synchronous=NORMAL``), the contenders taking turns slice by slice within each round (40
calls a turn for single statements, up to 10 slices of a row workload's ops,
``harness.slices``; the order rotating). Calls are awaited
one after the other (latency, not concurrency).

Contenders:

* ``floor``        the async driver by hand, one held autocommit connection, every row
                   validated with ``User.model_validate``: aiosqlite (SQLite), asyncpg
                   (PostgreSQL), aiomysql (MariaDB)
* ``psycopg``      PostgreSQL only: psycopg 3's ``AsyncConnection`` by hand, the same way
                   (the second floor, so asyncpg vs psycopg async is decided by measurement)
* ``sa_async``     SQLAlchemy async Core at its best: held ``AsyncConnection`` s (AUTOCOMMIT
                   for single statements), prebuilt statements; asyncpg on PostgreSQL
* ``sqlmodel``     SQLModel's ``AsyncSession(expire_on_commit=False)`` bound to held
                   connections (asyncpg on PostgreSQL)
* ``tortoise``     Tortoise ORM (``.values()`` reads, ``bulk_create``, keyset pages for
                   iterate; asyncpg on PostgreSQL, aiomysql on MariaDB)
* ``registers``    ``aget``, ``acreate``, ``aupsert``, ``acount``, ``afilter``,
                   ``abulk_create``, ``aiterate`` on the backend's registers URL

Workloads (``--ops N``): get by key (N), single insert (N, committed, model gets its key),
upsert of an existing row by key (N), count with a WHERE (N), filter of ~100 rows (N/20
calls), bulk insert of 1,000 rows in one transaction (N/200 calls; every contender but
Tortoise returns the generated keys: Tortoise's ``bulk_create`` does not fetch them),
iterate over the table in key order (three passes a round, taken in turns). Tables start
with 10,000 rows.

Printed: median ops/s (rows/s for filter, bulk, iterate), per-round ratios to each floor
and of registers to each peer as median (min-max), and the issue-14 async targets (>= 0.6x
of the floor, ahead of every async peer). ``--profile DIR`` also writes a pyinstrument
profile (text) of registers' workloads. A benchmark, not a test: nothing asserts on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from benchmarks.harness import (
    COLUMNS,
    PAGE,
    ROW_WORKLOADS,
    SEED_ROWS,
    URLS,
    VALUES,
    AwakeCpus,
    User,
    create_table,
    drop_table,
    expect,
    rate_of,
    report,
    row,
    sa_table,
    slices,
    to_model,
    url_parts,
    validated,
)

WORKLOADS = ["get by key", "single insert", "upsert", "count", "filter", "bulk insert",
             "iterate"]
TARGETS = dict.fromkeys(WORKLOADS, 0.6)
PEERS = ["sa_async", "sqlmodel", "tortoise"]
BACKENDS = ["sqlite", "postgresql", "mysql"]


class Target:
    """Where one contender's table lives: a sync URL (set-up), the table name."""

    def __init__(self, backend: str, url: str, table: str) -> None:
        self.backend, self.url, self.table = backend, url, table
        self.path = (sa.make_url(url).database or "") if backend == "sqlite" else ""


def _marks(backend: str, n: int) -> str:
    if backend == "postgresql":
        return ", ".join(f"${i}" for i in range(1, n + 1))
    return ", ".join(["?" if backend == "sqlite" else "%s"] * n)


# --- floors ---------------------------------------------------------------------------


class Floor:
    """aiosqlite / asyncpg / aiomysql by hand, one held autocommit connection (aiomysql:
    and one held cursor on it)."""

    bulk_keys = True

    def __init__(self, t: Target) -> None:
        self.b, self.table = t.backend, t.table
        self.t = t
        mark = "?" if self.b == "sqlite" else "%s"
        n = "$1" if self.b == "postgresql" else mark
        cols = ", ".join(VALUES)
        self.select = f"SELECT {', '.join(COLUMNS)} FROM {t.table}"
        self.get_sql = f"{self.select} WHERE id = {n}"
        self.count_sql = f"SELECT COUNT(*) FROM {t.table} WHERE age = {n}"
        self.filter_sql = f"{self.select} WHERE age = {n}"
        self.insert = f"INSERT INTO {t.table} ({cols}) VALUES ({_marks(self.b, 5)})"
        every = f"INSERT INTO {t.table} ({', '.join(COLUMNS)}) VALUES ({_marks(self.b, 6)})"
        if self.b == "mysql":
            sets = ", ".join(f"{c} = VALUES({c})" for c in VALUES)
            self.upsert_sql = f"{every} ON DUPLICATE KEY UPDATE {sets}"
        else:
            sets = ", ".join(f"{c} = excluded.{c}" for c in VALUES)
            self.upsert_sql = f"{every} ON CONFLICT (id) DO UPDATE SET {sets}"

    async def open(self) -> None:
        p = url_parts(self.t.url)
        if self.b == "sqlite":
            import aiosqlite

            self.conn: Any = await aiosqlite.connect(self.t.path, isolation_level=None)
            await self.conn.execute("PRAGMA synchronous=NORMAL")
        elif self.b == "postgresql":
            import asyncpg

            self.conn = await asyncpg.connect(host=p["host"], port=p["port"] or 5432,
                                              user=p["user"], password=p["password"] or None,
                                              database=p["database"])
        else:
            import aiomysql

            self.conn = await aiomysql.connect(host=p["host"], port=p["port"] or 3306,
                                               user=p["user"], password=p["password"],
                                               db=p["database"], autocommit=True)
            self.cur = await self.conn.cursor()

    async def close(self) -> None:
        result = self.conn.close()
        if asyncio.iscoroutine(result):
            await result

    async def _fetch(self, sql: str, *params: Any) -> list[Any]:
        if self.b == "sqlite":
            return list(await self.conn.execute_fetchall(sql, params))
        if self.b == "postgresql":
            return list(await self.conn.fetch(sql, *params))
        await self.cur.execute(sql, params)
        return list(await self.cur.fetchall())

    async def get(self, key: int) -> User:
        return to_model((await self._fetch(self.get_sql, key))[0])

    async def create(self, values: dict[str, Any]) -> User:
        params = validated(values)
        if self.b == "postgresql":
            key = await self.conn.fetchval(self.insert + " RETURNING id", *params)
        elif self.b == "sqlite":
            cur = await self.conn.execute(self.insert, params)
            key = cur.lastrowid
            await cur.close()
        else:
            await self.cur.execute(self.insert, params)
            key = self.cur.lastrowid
        return User(id=key, **values)

    async def upsert(self, key: int, values: dict[str, Any]) -> User:
        params = (key, *validated(values))
        if self.b == "postgresql":
            await self.conn.execute(self.upsert_sql, *params)
        elif self.b == "sqlite":
            await self.conn.execute(self.upsert_sql, params)
        else:
            await self.cur.execute(self.upsert_sql, params)
        return User(id=key, **values)

    async def count(self, age: int) -> int:
        return int((await self._fetch(self.count_sql, age))[0][0])

    async def filter(self, age: int) -> list[User]:
        return [to_model(r) for r in await self._fetch(self.filter_sql, age)]

    async def bulk(self, rows: list[dict[str, Any]]) -> list[User]:
        params = [validated(v) for v in rows]
        if self.b == "postgresql":
            # one statement: the columns as arrays, unnest()ed, keys returned in order
            cols = list(zip(*params))
            sql = (f"INSERT INTO {self.table} ({', '.join(VALUES)}) SELECT * FROM "
                   "unnest($1::text[], $2::text[], $3::bigint[], $4::bool[], $5::float8[]) "
                   "RETURNING id")
            async with self.conn.transaction():
                keys = [r[0] for r in await self.conn.fetch(sql, *cols)]
        elif self.b == "sqlite":
            await self.conn.execute("BEGIN IMMEDIATE")
            await self.conn.executemany(self.insert, params)
            last = (await self.conn.execute_fetchall("SELECT last_insert_rowid()"))[0][0]
            await self.conn.execute("COMMIT")
            keys = list(range(last - len(params) + 1, last + 1))
        else:
            await self.conn.begin()
            await self.cur.executemany(self.insert, params)  # one multi-row INSERT
            first = self.cur.lastrowid
            await self.conn.commit()
            keys = list(range(first, first + len(params)))
        return [User(id=k, **v) for k, v in zip(keys, rows)]

    async def iterate(self) -> AsyncIterator[User]:
        sql = self.select + " ORDER BY id"
        if self.b == "postgresql":
            async with self.conn.transaction():
                async for r in self.conn.cursor(sql, prefetch=PAGE):
                    yield to_model(r)
        elif self.b == "sqlite":
            async with self.conn.execute(sql) as cur:
                while rows := await cur.fetchmany(PAGE):
                    for r in rows:
                        yield to_model(r)
        else:  # keyset pages (aiomysql's unbuffered cursor is slower)
            last = 0
            page = f"{self.select} WHERE id > %s ORDER BY id LIMIT {PAGE}"
            while True:
                rows = await self._fetch(page, last)
                for r in rows:
                    yield to_model(r)
                if len(rows) < PAGE:
                    return
                last = rows[-1][0]


class PsycopgFloor(Floor):
    """psycopg 3's AsyncConnection by hand (PostgreSQL), autocommit, one held cursor."""

    def __init__(self, t: Target) -> None:
        super().__init__(Target("mysql", t.url, t.table))  # %s placeholders
        self.b, self.t = "psycopg", t

    async def open(self) -> None:
        import psycopg

        p = url_parts(self.t.url)
        self.conn = await psycopg.AsyncConnection.connect(
            host=p["host"], port=p["port"] or 5432, user=p["user"],
            password=p["password"] or None, dbname=p["database"], autocommit=True)
        self.cur = self.conn.cursor()
        self.upsert_sql = self.upsert_sql.split(" ON DUPLICATE")[0] + (
            " ON CONFLICT (id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in VALUES))

    async def _fetch(self, sql: str, *params: Any) -> list[Any]:
        await self.cur.execute(sql, params)
        return list(await self.cur.fetchall())

    async def create(self, values: dict[str, Any]) -> User:
        await self.cur.execute(self.insert + " RETURNING id", validated(values))
        key = (await self.cur.fetchone())[0]
        return User(id=key, **values)

    async def upsert(self, key: int, values: dict[str, Any]) -> User:
        await self.cur.execute(self.upsert_sql, (key, *validated(values)))
        return User(id=key, **values)

    async def bulk(self, rows: list[dict[str, Any]]) -> list[User]:
        params = [validated(v) for v in rows]
        sql = (f"INSERT INTO {self.table} ({', '.join(VALUES)}) SELECT * FROM unnest("  # binary
               "%b::text[], %b::text[], %b::bigint[], %b::bool[], %b::float8[]) RETURNING id")
        async with self.conn.transaction():
            await self.cur.execute(sql, [list(c) for c in zip(*params)])
            keys = [r[0] for r in await self.cur.fetchall()]
        return [User(id=k, **v) for k, v in zip(keys, rows)]

    async def iterate(self) -> AsyncIterator[User]:
        async with self.conn.transaction(), self.conn.cursor(name="it") as cur:
            await cur.execute(self.select + " ORDER BY id")
            while rows := await cur.fetchmany(PAGE):
                for r in rows:
                    yield to_model(r)


# --- peers ----------------------------------------------------------------------------


def async_url(t: Target) -> str:
    u = sa.make_url(t.url)
    driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg",
              "mysql": "mysql+aiomysql"}[t.backend]
    return u.set(drivername=driver).render_as_string(hide_password=False)


def _async_engine(t: Target) -> Any:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(async_url(t))
    if t.backend == "sqlite":
        @sa.event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
    return engine


class SAAsync:
    """SQLAlchemy async Core: held AUTOCOMMIT + transactional connections."""

    bulk_keys = True

    def __init__(self, t: Target) -> None:
        self.t = t
        tab = self.tab = sa_table(t.table)
        cols = [tab.c[c] for c in COLUMNS]
        self.get_stmt = sa.select(*cols).where(tab.c.id == sa.bindparam("k"))
        self.count_stmt = sa.select(sa.func.count()).select_from(tab).where(
            tab.c.age == sa.bindparam("a"))
        self.filter_stmt = sa.select(*cols).where(tab.c.age == sa.bindparam("a"))
        self.insert_stmt = tab.insert()
        self.bulk_stmt = tab.insert().returning(tab.c.id, sort_by_parameter_order=True)
        self.iter_stmt = sa.select(*cols).order_by(tab.c.id).execution_options(yield_per=PAGE)
        if t.backend == "mysql":
            from sqlalchemy.dialects.mysql import insert as minsert

            mins = minsert(tab)
            self.upsert_stmt: Any = mins.on_duplicate_key_update(
                {c: mins.inserted[c] for c in VALUES})
        else:
            from sqlalchemy.dialects.postgresql import insert as pinsert
            from sqlalchemy.dialects.sqlite import insert as sinsert

            ins = (pinsert if t.backend == "postgresql" else sinsert)(tab)
            self.upsert_stmt = ins.on_conflict_do_update(
                index_elements=[tab.c.id], set_={c: ins.excluded[c] for c in VALUES})

    async def open(self) -> None:
        self.engine = _async_engine(self.t)
        self.ac = await (await self.engine.connect()).execution_options(
            isolation_level="AUTOCOMMIT")
        self.tx = await self.engine.connect()

    async def close(self) -> None:
        await self.ac.close()
        await self.tx.close()
        await self.engine.dispose()

    async def get(self, key: int) -> User:
        return to_model((await self.ac.execute(self.get_stmt, {"k": key})).one())

    async def create(self, values: dict[str, Any]) -> User:
        User.model_validate(values)
        result = await self.ac.execute(self.insert_stmt, values)
        return User(id=result.inserted_primary_key[0], **values)

    async def upsert(self, key: int, values: dict[str, Any]) -> User:
        User.model_validate(values)
        await self.ac.execute(self.upsert_stmt, {"id": key, **values})
        return User(id=key, **values)

    async def count(self, age: int) -> int:
        return int((await self.ac.execute(self.count_stmt, {"a": age})).scalar_one())

    async def filter(self, age: int) -> list[User]:
        return [to_model(r) for r in await self.ac.execute(self.filter_stmt, {"a": age})]

    async def bulk(self, rows: list[dict[str, Any]]) -> list[User]:
        for v in rows:
            User.model_validate(v)
        async with self.tx.begin():
            keys = (await self.tx.execute(self.bulk_stmt, rows)).scalars().all()
        return [User(id=k, **v) for k, v in zip(keys, rows)]

    async def iterate(self) -> AsyncIterator[User]:
        async with self.tx.begin():
            result = await self.tx.stream(self.iter_stmt)
            async for r in result:
                yield to_model(r)


class SQLModelAsync(SAAsync):
    """SQLModel ``AsyncSession`` s bound to held connections, ``expire_on_commit=False``."""

    def __init__(self, t: Target) -> None:
        from sqlmodel import Field, SQLModel, func, select

        super().__init__(t)
        namespace: dict[str, Any] = {
            "__tablename__": t.table, "__annotations__": {
                "id": int | None, "name": str, "email": str, "age": int, "active": bool,
                "score": float},
            "id": Field(default=None, primary_key=True), "metadata": sa.MetaData()}
        self.T: Any = type(f"ASM_{t.table}", (SQLModel,), namespace, table=True)
        self.select, self.func = select, func

    async def open(self) -> None:
        from sqlmodel.ext.asyncio.session import AsyncSession

        await super().open()
        self.s_ac = AsyncSession(bind=self.ac, expire_on_commit=False)
        self.s_tx = AsyncSession(bind=self.tx, expire_on_commit=False)

    async def close(self) -> None:
        await self.s_ac.close()
        await self.s_tx.close()
        await super().close()

    def reset(self) -> None:
        self.s_ac.expunge_all()
        self.s_tx.expunge_all()

    @staticmethod
    def _out(obj: Any) -> User:
        return User.model_validate(obj, from_attributes=True)

    async def get(self, key: int) -> User:
        return self._out(await self.s_ac.get(self.T, key))

    async def create(self, values: dict[str, Any]) -> User:
        obj = self.T.model_validate(values)
        self.s_ac.add(obj)
        await self.s_ac.commit()
        return self._out(obj)

    async def upsert(self, key: int, values: dict[str, Any]) -> User:
        obj = await self.s_ac.merge(self.T.model_validate({"id": key, **values}))
        await self.s_ac.commit()
        return self._out(obj)

    async def count(self, age: int) -> int:
        T = self.T
        stmt = self.select(self.func.count()).select_from(T).where(T.age == age)
        return int((await self.s_ac.exec(stmt)).one())

    async def filter(self, age: int) -> list[User]:
        rows = (await self.s_ac.exec(self.select(self.T).where(self.T.age == age))).all()
        await self.s_ac.commit()
        return [self._out(o) for o in rows]

    async def bulk(self, rows: list[dict[str, Any]]) -> list[User]:
        objs = [self.T.model_validate(v) for v in rows]
        self.s_tx.add_all(objs)
        await self.s_tx.commit()
        return [self._out(o) for o in objs]

    async def iterate(self) -> AsyncIterator[User]:
        T = self.T
        stmt = self.select(T).order_by(T.id).execution_options(yield_per=PAGE)
        async for obj in await self.s_tx.stream_scalars(stmt):
            yield self._out(obj)
        await self.s_tx.commit()
        self.s_tx.expunge_all()


class TortoisePeer:
    """Tortoise ORM: its own connection per backend, ``.values()`` reads."""

    bulk_keys = False  # Tortoise's bulk_create does not fetch generated keys

    def __init__(self, t: Target) -> None:
        from tortoise import fields, models

        self.t = t
        module = types.ModuleType(f"bench_tortoise_{t.table}")
        meta = type("Meta", (), {"table": t.table})
        self.T: Any = type("TUser", (models.Model,), {
            "id": fields.BigIntField(primary_key=True), "name": fields.CharField(200),
            "email": fields.CharField(200), "age": fields.BigIntField(),
            "active": fields.BooleanField(), "score": fields.FloatField(), "Meta": meta,
            "__module__": module.__name__})
        module.TUser = self.T  # type: ignore[attr-defined]
        sys.modules[module.__name__] = module
        self.module = module.__name__

    async def open(self) -> None:
        from tortoise import Tortoise

        p = url_parts(self.t.url)
        if self.t.backend == "sqlite":
            conn: Any = {"engine": "tortoise.backends.sqlite", "credentials": {
                "file_path": self.t.path, "journal_mode": "WAL", "synchronous": "NORMAL"}}
        else:
            engine = ("tortoise.backends.asyncpg" if self.t.backend == "postgresql"
                      else "tortoise.backends.mysql")
            conn = {"engine": engine, "credentials": {
                "host": p["host"], "port": p["port"] or (5432 if engine.endswith("pg")
                                                        else 3306),
                "user": p["user"], "password": p["password"], "database": p["database"]}}
        await Tortoise.init(config={"connections": {"default": conn}, "apps": {
            "bench": {"models": [self.module], "default_connection": "default"}}})

    async def close(self) -> None:
        from tortoise import Tortoise

        await Tortoise.close_connections()

    async def get(self, key: int) -> User:
        return User.model_validate(await self.T.get(id=key).values(*COLUMNS))

    async def create(self, values: dict[str, Any]) -> User:
        m = User.model_validate(values)
        m.id = (await self.T.create(**values)).id
        return m

    async def upsert(self, key: int, values: dict[str, Any]) -> User:
        m = User.model_validate({"id": key, **values})
        if self.t.backend == "mysql":  # its ON DUPLICATE KEY ... AS alias is MySQL 8 only
            await self.T.update_or_create(defaults=values, id=key)
        else:
            await self.T.bulk_create([self.T(id=key, **values)], on_conflict=["id"],
                                     update_fields=list(VALUES))
        return m

    async def count(self, age: int) -> int:
        return int(await self.T.filter(age=age).count())

    async def filter(self, age: int) -> list[User]:
        return [User.model_validate(d)
                for d in await self.T.filter(age=age).values(*COLUMNS)]

    async def bulk(self, rows: list[dict[str, Any]]) -> list[User]:
        models = [User.model_validate(v) for v in rows]
        await self.T.bulk_create([self.T(**v) for v in rows])
        return models

    async def iterate(self) -> AsyncIterator[User]:
        last = 0
        while True:  # keyset pages: Tortoise has no streaming iterator
            page = await self.T.filter(id__gt=last).order_by("id").limit(PAGE).values(*COLUMNS)
            for d in page:
                yield User.model_validate(d)
            if len(page) < PAGE:
                return
            last = page[-1]["id"]


class RegistersAsync:
    bulk_keys = True

    def __init__(self, t: Target) -> None:
        from registers.db import database_registry

        self.t = t
        url = t.path if t.backend == "sqlite" else t.url

        @database_registry(url, table_name=t.table)
        class RUser(User):
            pass

        self.objects: Any = RUser.objects

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        await self.objects.adispose()

    async def get(self, key: int) -> Any:
        return await self.objects.aget(key)

    async def create(self, values: dict[str, Any]) -> Any:
        return await self.objects.acreate(**values)

    async def upsert(self, key: int, values: dict[str, Any]) -> Any:
        return await self.objects.aupsert(id=key, **values)

    async def count(self, age: int) -> int:
        return int(await self.objects.acount(age=age))

    async def filter(self, age: int) -> list[Any]:
        return list(await self.objects.afilter(age=age))

    async def bulk(self, rows: list[dict[str, Any]]) -> list[Any]:
        return list(await self.objects.abulk_create(rows))

    def iterate(self) -> AsyncIterator[Any]:
        return self.objects.aiterate(batch_size=PAGE)  # type: ignore[no-any-return]


CONTENDERS: dict[str, Callable[[Target], Any]] = {
    "floor": Floor, "psycopg": PsycopgFloor, "sa_async": SAAsync, "sqlmodel": SQLModelAsync,
    "tortoise": TortoisePeer, "registers": RegistersAsync}


# --- measuring ------------------------------------------------------------------------


async def measure(c: Any, workload: str, ops: int, seed: int) -> tuple[float, int]:
    """``(rate, result size)``; sizes are checked equal across contenders."""
    if hasattr(c, "reset"):
        c.reset()
    size = 0
    start = time.perf_counter()
    if workload == "get by key":
        for i in range(ops):
            key = 1 + (i * 7919 + seed) % SEED_ROWS
            size += (await c.get(key)).id == key
    elif workload == "single insert":
        for i in range(ops):
            size += (await c.create(row(seed * ops + i))).id > 0
    elif workload == "upsert":
        for i in range(ops):
            key = 1 + (i * 104729 + seed) % SEED_ROWS
            size += (await c.upsert(key, row(i))).id == key
    elif workload == "count":
        for i in range(ops):
            size += await c.count((i + seed) % 100)
    elif workload == "filter":
        for i in range(max(1, ops // 20)):
            size += len(await c.filter((i + seed) % 100))
    elif workload == "bulk insert":
        for i in range(max(1, ops // 200)):
            models = await c.bulk([row(seed * 10**6 + i * 1000 + j) for j in range(1000)])
            if c.bulk_keys:
                expect(len({m.id for m in models}) == 1000 and models[0].id > 0, "bulk keys")
            size += len(models)
    elif workload == "iterate":
        last = 0
        async for m in c.iterate():
            expect(m.id > last, "iterate key order")
            last = m.id
            size += 1
    elapsed = time.perf_counter() - start
    return (size if workload in ROW_WORKLOADS else ops) / elapsed, size


def available(name: str, backend: str) -> bool:
    return name != "psycopg" or backend == "postgresql"


async def run_backend(backend: str, names: list[str], ops: int, rounds: int,
                      profile: Path | None, awake: AwakeCpus,
                      workloads: list[str] | None = None) -> None:
    names = [n for n in names if available(n, backend)]
    workloads = workloads or WORKLOADS
    suffix = uuid.uuid4().hex[:8]
    tmp = tempfile.TemporaryDirectory(prefix="registers-async-bench-")
    targets: dict[str, Target] = {}
    for name in names:
        table = f"abench_{name}_{suffix}"
        url = (f"sqlite:///{Path(tmp.name) / (name + '.db')}" if backend == "sqlite"
               else URLS[backend])
        targets[name] = Target(backend, url, table)
    contenders: dict[str, Any] = {}
    try:
        for t in targets.values():
            create_table(t.url, t.table)
        for name in names:
            contenders[name] = CONTENDERS[name](targets[name])
            await contenders[name].open()
            await contenders[name].get(1)  # untimed warm-up: connections, caches
            await contenders[name].count(0)
        rates: dict[str, dict[str, list[float]]] = {w: {n: [] for n in names}
                                                     for w in workloads}
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for workload in workloads:
                samples: dict[str, list[tuple[float, int]]] = {n: [] for n in names}
                with awake.around(workload):
                    for part, (slice_ops, seed) in enumerate(slices(workload, ops, r)):
                        turn = order[part % len(order):] + order[:part % len(order)]
                        for name in turn:
                            samples[name].append(await measure(contenders[name], workload,
                                                               slice_ops, seed))
                sizes = {n: sum(size for _, size in got) for n, got in samples.items()}
                expect(len(set(sizes.values())) == 1, f"{workload}: results differ {sizes}")
                for name, got in samples.items():
                    rates[workload][name].append(rate_of(got, workload, slice_ops))
            print(f"  {backend}: round {r + 1}/{rounds} done", file=sys.stderr)
        floors = ["floor", "psycopg"] if backend == "postgresql" else ["floor"]
        report(f"async {backend}, {ops} ops x {rounds} rounds; {awake.describe()}", names,
               workloads, rates, floors, PEERS, TARGETS)
        if profile is not None and "registers" in contenders:
            await profile_registers(contenders["registers"], backend, ops, profile)
    finally:
        for c in contenders.values():
            await c.close()
        if backend != "sqlite":
            for t in targets.values():
                drop_table(t.url, t.table)
        tmp.cleanup()


async def profile_registers(c: Any, backend: str, ops: int, directory: Path) -> None:
    """A pyinstrument profile (text, async-aware) of each registers workload."""
    from pyinstrument import Profiler

    directory.mkdir(parents=True, exist_ok=True)
    for workload in WORKLOADS:
        profiler = Profiler(async_mode="enabled")
        profiler.start()
        await measure(c, workload, ops, 99)
        profiler.stop()
        path = directory / f"async-{backend}-{workload.replace(' ', '_')}.txt"
        path.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    print(f"pyinstrument profiles of registers written to {directory}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="comma-separated: sqlite, postgresql, mysql")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"comma-separated subset of {','.join(CONTENDERS)}")
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help=f"comma-separated subset of: {', '.join(WORKLOADS)}")
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 ops x 3 rounds")
    parser.add_argument("--ops", type=int, default=None, help="ops per workload (default 1000)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5)")
    parser.add_argument("--profile", default=None, metavar="DIR",
                        help="after the run, pyinstrument profiles of registers' workloads")
    parser.add_argument("--no-awake-cpus", action="store_true",
                        help="let the CPUs idle during the reads (see harness.AwakeCpus)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    ops = args.ops or (200 if args.quick else 1000)
    rounds = args.rounds or (3 if args.quick else 5)
    backends = [b for b in args.backends.split(",") if b]
    names = [n for n in args.contenders.split(",") if n]
    workloads = [w for w in args.workloads.split(",") if w]
    bad = [b for b in backends if b not in BACKENDS] + [n for n in names if n not in CONTENDERS]
    bad += [w for w in workloads if w not in WORKLOADS]
    if bad:
        parser.error(f"unknown backend, contender or workload: {', '.join(bad)}")
    if ops < 20 or rounds < 1:
        parser.error("--ops must be at least 20 and --rounds at least 1")
    profile = Path(args.profile).resolve() if args.profile else None
    if args.worker:
        awake = AwakeCpus(not args.no_awake_cpus)
        try:
            asyncio.run(run_backend(args.worker, names, ops, rounds, profile, awake,
                                    workloads))
        finally:
            awake.close()
        return 0
    started = time.perf_counter()
    for backend in backends:  # a process per backend: Tortoise's state is global
        cmd = [sys.executable, "-m", "benchmarks.async_bench", "--worker", backend,
               "--contenders", ",".join(names), "--ops", str(ops), "--rounds", str(rounds),
               "--workloads", ",".join(workloads)]
        if profile is not None:
            cmd += ["--profile", str(profile)]
        if args.no_awake_cpus:
            cmd.append("--no-awake-cpus")
        code = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": _root_path()}).returncode
        if code:
            print(f"async {backend}: FAILED (exit {code})", file=sys.stderr)
            return code
    print(f"\ntotal wall time {time.perf_counter() - started:.0f}s")
    return 0


def _root_path() -> str:
    root = str(Path(__file__).resolve().parent.parent)
    rest = os.environ.get("PYTHONPATH")
    return root if not rest else f"{root}{os.pathsep}{rest}"


if __name__ == "__main__":
    raise SystemExit(main())
