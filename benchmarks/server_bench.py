"""registers.db against hand-written psycopg 3 / PyMySQL and its peers, on servers.

One command (from the repository root, after ``pip install -e ".[dev,bench]"``), against the
local servers or the URLs in ``REGISTERS_BENCH_POSTGRES_URL`` / ``REGISTERS_BENCH_MYSQL_URL``::

    python -m benchmarks.server_bench                 # PostgreSQL and MariaDB, 2,000 ops x 5 rounds
    python -m benchmarks.server_bench --quick         # smoke run: 300 ops x 3 rounds, ~1-2 minutes
    python -m benchmarks.server_bench --backends postgresql --ops 3000 --rounds 7
    python -m benchmarks.server_bench --contenders floor,sa_core,registers

Contenders, each on its own table of the same shape, in the same process, interleaved:
each round's ops of a workload run in slices (``harness.slices``: 40 calls for a single
statement, up to 10 slices for a row workload), the contenders taking turns slice by
slice (the order rotating), so machine noise hits them alike; the read workloads run on
one shared table that nothing writes, the writes on each contender's own:

* ``floor``      the driver by hand: one held autocommit connection, statements written
                 out, ``User.model_validate`` on every row in and out
* ``sa_core``    SQLAlchemy Core at its best: held connections (an AUTOCOMMIT one for single
                 statements, a transactional one for bulk/update_where/iterate), prebuilt
                 statements, rows validated into the same model
* ``sqlmodel``   SQLModel table model, ``Session(expire_on_commit=False)`` bound to those two
                 held connections (no pool checkout per commit)
* ``peewee``     Peewee (psycopg 3 / PyMySQL underneath), one connection held open,
                 autocommit outside ``atomic()``, ``.dicts()`` reads
* ``django``     Django ORM configured in-process (``settings.configure``, one alias per
                 server, ``CONN_MAX_AGE=None``: a persistent autocommit connection),
                 ``.values()`` reads
* ``registers``  ``registers.db.database_registry`` on the same server

Workloads (``--ops N``): get by key (N), single insert (N, committed, the model gets its
key), upsert of an existing row by key (N), count with a WHERE (N), filter returning ~100
rows (N/20 calls), bulk insert of 1,000 rows in one transaction, models get their keys (N/200
calls), update_where of ~100 rows re-read as models (N/20 calls), iterate over the whole
table in key order, 1,000 rows a page (three passes a round, taken in turns). Each table
starts with 10,000 rows. The reads run with the CPUs kept awake (``harness.AwakeCpus``);
the writes cannot, so every contender gets new connections at the start of every round
(untimed, then warmed up): a connection's round trip keeps one of two speeds for its life
on this VM, and new connections draw them again (``--held-connections``: one draw for
the whole run).

Printed: median ops/s (rows/s for filter, bulk, update_where, iterate); the ratio to the
floor per round as median (min-max); registers against each peer the same way; and the
issue-14 targets (>= 0.8x floor for get/insert/upsert/count, >= 0.9x for the row-volume
workloads, ahead of every peer). Wall clock: the server's time is part of the work. A
benchmark, not a test: nothing asserts on timings (results are sanity-checked).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from benchmarks.harness import (
    COLUMNS,
    PAGE,
    READ_WORKLOADS,
    ROW_WORKLOADS,
    SEED_ROWS,
    URLS,
    VALUES,
    AwakeCpus,
    User,
    by_id,
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

TARGETS = {"get by key": 0.8, "single insert": 0.8, "upsert": 0.8, "count": 0.8,
           "filter": 0.9, "bulk insert": 0.9, "update_where": 0.9, "iterate": 0.9}
WORKLOADS = list(TARGETS)


# --- contenders ---------------------------------------------------------------------
# Every contender: get, create, upsert, count, filter, bulk, update_where, iterate;
# each returns validated models (or a count).


class Floor:
    """The driver by hand: one held autocommit connection, and one held cursor on it for
    every statement but the PostgreSQL stream (a new psycopg cursor sets up its adapters
    again, about 10 us a statement)."""

    def __init__(self, backend: str, url: str, table: str) -> None:
        self.backend, self.table, self.url = backend, table, url
        self.sharers: list[Floor] = []  # readers on this connection (share)
        self.conn, self.cur = self._connect()
        cols = ", ".join(VALUES)
        self.insert = f"INSERT INTO {table} ({cols}) VALUES (%s, %s, %s, %s, %s)"
        self.select = f"SELECT {', '.join(COLUMNS)} FROM {table}"
        # the arrays in binary (%b): psycopg dumps a text array twice as fast that way
        self.bulk_sql = (f"INSERT INTO {table} ({cols}) SELECT * FROM unnest(%b::text[], "
                         "%b::text[], %b::bigint[], %b::bool[], %b::float8[]) RETURNING id")
        if backend == "postgresql":
            sets = ", ".join(f"{c} = excluded.{c}" for c in VALUES)
            self.upsert_sql = (f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES "
                               f"(%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET {sets}")
        else:
            sets = ", ".join(f"{c} = VALUES({c})" for c in VALUES)
            self.upsert_sql = (f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES "
                               f"(%s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE {sets}")

    def _connect(self) -> tuple[Any, Any]:
        p = url_parts(self.url)
        if self.backend == "postgresql":
            import psycopg

            conn: Any = psycopg.connect(
                host=p["host"], port=p["port"] or 5432, user=p["user"],
                password=p["password"] or None, dbname=p["database"], autocommit=True)
        else:
            import pymysql

            conn = pymysql.connect(host=p["host"], port=p["port"] or 3306, user=p["user"],
                                   password=p["password"], database=p["database"],
                                   autocommit=True)
        return conn, conn.cursor()

    def share(self, writer: Floor) -> None:
        """Read on ``writer``'s connection, as registers reads and writes on one
        connection per thread: on MariaDB a connection that has written serves reads
        slower than a fresh one (count: 0.61x the fresh connection's rate)."""
        self.conn.close()
        self.conn, self.cur = writer.conn, writer.cur
        writer.sharers.append(self)

    def reconnect(self) -> None:
        old = self.conn
        self.conn, self.cur = self._connect()
        for reader in self.sharers:
            reader.conn, reader.cur = self.conn, self.cur
        with contextlib.suppress(Exception):
            old.close()

    def get(self, key: int) -> User:
        cur = self.cur
        cur.execute(f"{self.select} WHERE id = %s", (key,))
        return to_model(cur.fetchone())

    def create(self, values: dict[str, Any]) -> User:
        params = validated(values)
        cur = self.cur
        if self.backend == "postgresql":
            cur.execute(self.insert + " RETURNING id", params)
            key = cur.fetchone()[0]
        else:
            cur.execute(self.insert, params)
            key = cur.lastrowid
        return User(id=key, **values)

    def upsert(self, key: int, values: dict[str, Any]) -> User:
        params = validated(values)
        self.cur.execute(self.upsert_sql, (key, *params))
        return User(id=key, **values)

    def count(self, age: int) -> int:
        cur = self.cur
        cur.execute(f"SELECT COUNT(*) FROM {self.table} WHERE age = %s", (age,))
        return int(cur.fetchone()[0])

    def filter(self, age: int) -> list[User]:
        cur = self.cur
        cur.execute(f"{self.select} WHERE age = %s", (age,))
        return [to_model(r) for r in cur.fetchall()]

    def bulk(self, rows: list[dict[str, Any]]) -> list[User]:
        params = [validated(v) for v in rows]
        cur = self.cur
        if self.backend == "postgresql":
            # one short statement, the columns as arrays: faster than a pipelined
            # executemany(returning=True) or a multi-row VALUES list
            with self.conn.transaction():
                cur.execute(self.bulk_sql, [list(c) for c in zip(*params)])
                keys = [r[0] for r in cur.fetchall()]
        else:
            # PyMySQL folds executemany into one multi-row INSERT: consecutive keys
            self.conn.begin()
            cur.executemany(self.insert, params)
            first = cur.lastrowid
            self.conn.commit()
            keys = list(range(first, first + len(params)))
        return [User(id=k, **v) for k, v in zip(keys, rows)]

    def update_where(self, age: int, score: float) -> list[User]:
        cur = self.cur
        if self.backend == "postgresql":
            cur.execute(f"UPDATE {self.table} SET score = %s WHERE age = %s "
                        f"RETURNING {', '.join(COLUMNS)}", (score, age))
            rows = cur.fetchall()
        else:  # no UPDATE ... RETURNING on MariaDB: update and re-read in one transaction
            self.conn.begin()
            cur.execute(f"UPDATE {self.table} SET score = %s WHERE age = %s", (score, age))
            cur.execute(f"{self.select} WHERE age = %s ORDER BY id", (age,))
            rows = cur.fetchall()
            self.conn.commit()
        return by_id([to_model(r) for r in rows])

    def iterate(self) -> Iterator[User]:
        """Streaming with flat memory: a server-side cursor on PostgreSQL (faster than
        keyset pages there), keyset pages on MariaDB (PyMySQL's unbuffered cursor is
        slower)."""
        if self.backend == "postgresql":
            with self.conn.transaction(), self.conn.cursor(name="iterate") as cur:
                cur.execute(f"{self.select} ORDER BY id")
                while rows := cur.fetchmany(PAGE):
                    for r in rows:
                        yield to_model(r)
            return
        sql = f"{self.select} WHERE id > %s ORDER BY id LIMIT {PAGE}"
        last = 0
        while True:
            cur = self.cur
            cur.execute(sql, (last,))
            rows = cur.fetchall()
            for r in rows:
                yield to_model(r)
            if len(rows) < PAGE:
                return
            last = rows[-1][0]


class SACore:
    """SQLAlchemy Core: held AUTOCOMMIT + transactional connections, prebuilt statements."""

    def __init__(self, backend: str, url: str, table: str) -> None:
        self.backend = backend
        self.engine = sa.create_engine(url)
        t = self.t = sa_table(table)
        self.ac = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.tx = self.engine.connect()
        cols = [t.c[c] for c in COLUMNS]
        self.get_stmt = sa.select(*cols).where(t.c.id == sa.bindparam("k"))
        self.count_stmt = sa.select(sa.func.count()).select_from(t).where(
            t.c.age == sa.bindparam("a"))
        self.filter_stmt = sa.select(*cols).where(t.c.age == sa.bindparam("a"))
        self.insert_stmt = t.insert()
        self.bulk_stmt = t.insert().returning(t.c.id, sort_by_parameter_order=True)
        self.update_stmt = sa.update(t).where(t.c.age == sa.bindparam("a")).values(
            score=sa.bindparam("s"))
        self.reread_stmt = sa.select(*cols).where(t.c.age == sa.bindparam("a")).order_by(t.c.id)
        self.iter_stmt = sa.select(*cols).order_by(t.c.id).execution_options(yield_per=PAGE)
        if backend == "postgresql":
            from sqlalchemy.dialects.postgresql import insert

            ins = insert(t)
            self.upsert_stmt: Any = ins.on_conflict_do_update(
                index_elements=[t.c.id], set_={c: ins.excluded[c] for c in VALUES})
        else:
            from sqlalchemy.dialects.mysql import insert as minsert

            mins = minsert(t)
            self.upsert_stmt = mins.on_duplicate_key_update(
                {c: mins.inserted[c] for c in VALUES})

    def get(self, key: int) -> User:
        return to_model(self.ac.execute(self.get_stmt, {"k": key}).one())

    def create(self, values: dict[str, Any]) -> User:
        User.model_validate(values)
        result = self.ac.execute(self.insert_stmt, values)
        return User(id=result.inserted_primary_key[0], **values)

    def upsert(self, key: int, values: dict[str, Any]) -> User:
        User.model_validate(values)
        self.ac.execute(self.upsert_stmt, {"id": key, **values})
        return User(id=key, **values)

    def count(self, age: int) -> int:
        return int(self.ac.execute(self.count_stmt, {"a": age}).scalar_one())

    def filter(self, age: int) -> list[User]:
        return [to_model(r) for r in self.ac.execute(self.filter_stmt, {"a": age})]

    def bulk(self, rows: list[dict[str, Any]]) -> list[User]:
        for v in rows:
            User.model_validate(v)
        with self.tx.begin():
            keys = self.tx.execute(self.bulk_stmt, rows).scalars().all()
        return [User(id=k, **v) for k, v in zip(keys, rows)]

    def update_where(self, age: int, score: float) -> list[User]:
        if self.backend == "postgresql":
            stmt = self.update_stmt.returning(*[self.t.c[c] for c in COLUMNS])
            return by_id([to_model(r) for r in self.ac.execute(stmt, {"a": age, "s": score})])
        with self.tx.begin():
            self.tx.execute(self.update_stmt, {"a": age, "s": score})
            rows = self.tx.execute(self.reread_stmt, {"a": age}).all()
        return [to_model(r) for r in rows]

    def iterate(self) -> Iterator[User]:
        with self.tx.begin(), self.tx.execute(self.iter_stmt) as result:
            for r in result:
                yield to_model(r)

    def reconnect(self) -> None:
        self.close()
        self.ac = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.tx = self.engine.connect()

    def close(self) -> None:
        self.ac.close()
        self.tx.close()
        self.engine.dispose()


class SQLModelPeer:
    """SQLModel: one Session per held connection, ``expire_on_commit=False``."""

    def __init__(self, backend: str, url: str, table: str) -> None:
        from sqlmodel import Field, Session, SQLModel, func, select

        # a fresh metadata per table: SQLModel's default one is global
        namespace: dict[str, Any] = {
            "__tablename__": table, "__annotations__": {
                "id": int | None, "name": str, "email": str, "age": int, "active": bool,
                "score": float},
            "id": Field(default=None, primary_key=True),
            "metadata": sa.MetaData()}
        self.T: Any = type(f"SM_{table}", (SQLModel,), namespace, table=True)
        self.select, self.func = select, func
        self.engine = sa.create_engine(url)
        self.Session = Session
        self._connect()

    def _connect(self) -> None:
        self.ac_conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.tx_conn = self.engine.connect()
        self.ac = self.Session(bind=self.ac_conn, expire_on_commit=False)
        self.tx = self.Session(bind=self.tx_conn, expire_on_commit=False)

    def reconnect(self) -> None:
        self.close()
        self._connect()

    @staticmethod
    def _out(obj: Any) -> User:
        return User.model_validate(obj, from_attributes=True)

    def reset(self) -> None:
        self.ac.expunge_all()
        self.tx.expunge_all()

    def get(self, key: int) -> User:
        return self._out(self.ac.get(self.T, key))

    def create(self, values: dict[str, Any]) -> User:
        obj = self.T.model_validate(values)
        self.ac.add(obj)
        self.ac.commit()
        return self._out(obj)

    def upsert(self, key: int, values: dict[str, Any]) -> User:
        obj = self.ac.merge(self.T.model_validate({"id": key, **values}))
        self.ac.commit()
        return self._out(obj)

    def count(self, age: int) -> int:
        T = self.T
        return int(self.ac.exec(
            self.select(self.func.count()).select_from(T).where(T.age == age)).one())

    def filter(self, age: int) -> list[User]:
        rows = self.ac.exec(self.select(self.T).where(self.T.age == age)).all()
        self.ac.commit()
        return [self._out(o) for o in rows]

    def bulk(self, rows: list[dict[str, Any]]) -> list[User]:
        objs = [self.T.model_validate(v) for v in rows]
        self.tx.add_all(objs)
        self.tx.commit()
        return [self._out(o) for o in objs]

    def update_where(self, age: int, score: float) -> list[User]:
        T = self.T
        self.tx.exec(sa.update(T).where(T.age == age).values(score=score))
        out = self.tx.exec(self.select(T).where(T.age == age).order_by(T.id)).all()
        self.tx.commit()
        return [self._out(o) for o in out]

    def iterate(self) -> Iterator[User]:
        T = self.T
        stmt = self.select(T).order_by(T.id).execution_options(yield_per=PAGE)
        for obj in self.tx.exec(stmt):
            yield self._out(obj)
        self.tx.commit()
        self.tx.expunge_all()

    def close(self) -> None:
        self.ac.close()
        self.tx.close()
        self.ac_conn.close()
        self.tx_conn.close()
        self.engine.dispose()


class PeeweePeer:
    """Peewee: one connection held open, autocommit outside ``atomic()``."""

    def __init__(self, backend: str, url: str, table: str) -> None:
        import peewee as pw

        self.backend = backend
        p = url_parts(url)
        if backend == "postgresql":
            self.db: Any = pw.PostgresqlDatabase(
                p["database"], host=p["host"], port=p["port"] or 5432, user=p["user"],
                password=p["password"] or None)
        else:
            self.db = pw.MySQLDatabase(p["database"], host=p["host"], port=p["port"] or 3306,
                                       user=p["user"], password=p["password"])
        meta = type("Meta", (), {"database": self.db, "table_name": table})
        self.P: Any = type(f"PW_{table}", (pw.Model,), {
            "id": pw.BigAutoField(), "name": pw.CharField(200), "email": pw.CharField(200),
            "age": pw.BigIntegerField(), "active": pw.BooleanField(),
            "score": pw.FloatField(), "Meta": meta, "__module__": __name__})
        self.preserve = [getattr(self.P, c) for c in VALUES]
        self.db.connect()

    def get(self, key: int) -> User:
        return User.model_validate(self.P.select().where(self.P.id == key).dicts().get())

    def create(self, values: dict[str, Any]) -> User:
        m = User.model_validate(values)
        m.id = self.P.insert(**values).execute()
        return m

    def upsert(self, key: int, values: dict[str, Any]) -> User:
        m = User.model_validate({"id": key, **values})
        target = [self.P.id] if self.backend == "postgresql" else None
        self.P.insert(id=key, **values).on_conflict(
            conflict_target=target, preserve=self.preserve).execute()
        return m

    def count(self, age: int) -> int:
        return int(self.P.select().where(self.P.age == age).count())

    def filter(self, age: int) -> list[User]:
        return [User.model_validate(d) for d in self.P.select().where(self.P.age == age).dicts()]

    def bulk(self, rows: list[dict[str, Any]]) -> list[User]:
        models = [User.model_validate(v) for v in rows]
        with self.db.atomic():
            if self.backend == "postgresql":
                keys = [r[0] for r in self.P.insert_many(rows).returning(self.P.id)
                        .tuples().execute()]
            else:  # MySQL: the first key of the one multi-row INSERT
                first = self.P.insert_many(rows).execute()
                keys = list(range(first, first + len(rows)))
        for m, k in zip(models, keys):
            m.id = k
        return models

    def update_where(self, age: int, score: float) -> list[User]:
        P = self.P
        with self.db.atomic():
            P.update(score=score).where(P.age == age).execute()
            out = list(P.select().where(P.age == age).order_by(P.id).dicts())
        return [User.model_validate(d) for d in out]

    def iterate(self) -> Iterator[User]:
        for d in self.P.select().order_by(self.P.id).dicts().iterator():
            yield User.model_validate(d)

    def reconnect(self) -> None:
        self.db.close()
        self.db.connect()

    def close(self) -> None:
        self.db.close()


_DJANGO_ALIASES: dict[str, str] = {}


def configure_django(backends: list[str]) -> None:
    """One ``settings.configure`` per process: an alias for each server."""
    import django
    from django.conf import settings

    databases: dict[str, Any] = {}
    for backend in backends:
        p = url_parts(URLS[backend])
        if backend == "postgresql":
            engine, port = "django.db.backends.postgresql", p["port"] or 5432
        else:
            import pymysql

            pymysql.install_as_MySQLdb()
            engine, port = "django.db.backends.mysql", p["port"] or 3306
        alias = "default" if not databases else backend
        databases[alias] = {"ENGINE": engine, "NAME": p["database"], "USER": p["user"],
                            "PASSWORD": p["password"], "HOST": p["host"], "PORT": port,
                            "CONN_MAX_AGE": None}
        _DJANGO_ALIASES[backend] = alias
    settings.configure(DEBUG=False, USE_TZ=False, INSTALLED_APPS=[], DATABASES=databases)
    django.setup()


class DjangoPeer:
    """Django ORM: a persistent autocommit connection per alias, ``.values()`` reads."""

    def __init__(self, backend: str, url: str, table: str) -> None:
        from django.db import models, transaction

        self.backend = backend
        self.alias = _DJANGO_ALIASES[backend]
        meta = type("Meta", (), {"app_label": "bench", "db_table": table})
        self.D: Any = type(f"DJ_{table}", (models.Model,), {
            "id": models.BigAutoField(primary_key=True),
            "name": models.CharField(max_length=200), "email": models.CharField(max_length=200),
            "age": models.BigIntegerField(), "active": models.BooleanField(),
            "score": models.FloatField(), "Meta": meta, "__module__": __name__})
        self.objects = self.D.objects.db_manager(self.alias)
        self.atomic = transaction.atomic

    def get(self, key: int) -> User:
        return User.model_validate(self.objects.values().get(pk=key))

    def create(self, values: dict[str, Any]) -> User:
        m = User.model_validate(values)
        m.id = self.objects.create(**values).pk
        return m

    def upsert(self, key: int, values: dict[str, Any]) -> User:
        m = User.model_validate({"id": key, **values})
        unique = ["id"] if self.backend == "postgresql" else None
        self.objects.bulk_create([self.D(id=key, **values)], update_conflicts=True,
                                 unique_fields=unique, update_fields=list(VALUES))
        return m

    def count(self, age: int) -> int:
        return int(self.objects.filter(age=age).count())

    def filter(self, age: int) -> list[User]:
        return [User.model_validate(d) for d in self.objects.filter(age=age).values()]

    def bulk(self, rows: list[dict[str, Any]]) -> list[User]:
        models = [User.model_validate(v) for v in rows]
        objs = self.objects.bulk_create([self.D(**v) for v in rows])
        for m, o in zip(models, objs):
            m.id = o.pk
        return models

    def update_where(self, age: int, score: float) -> list[User]:
        qs = self.objects.filter(age=age)
        with self.atomic(using=self.alias):
            qs.update(score=score)
            out = list(qs.order_by("id").values())
        return [User.model_validate(d) for d in out]

    def iterate(self) -> Iterator[User]:
        for d in self.objects.order_by("id").values().iterator(chunk_size=PAGE):
            yield User.model_validate(d)

    def reconnect(self) -> None:
        self.close()  # Django connects again on the next query

    def close(self) -> None:
        from django.db import connections

        connections[self.alias].close()


class Registers:
    def __init__(self, backend: str, url: str, table: str) -> None:
        from registers.db import database_registry

        @database_registry(url, table_name=table)
        class RUser(User):
            pass

        self.objects: Any = RUser.objects

    def get(self, key: int) -> Any:
        return self.objects.get(key)

    def create(self, values: dict[str, Any]) -> Any:
        return self.objects.create(**values)

    def upsert(self, key: int, values: dict[str, Any]) -> Any:
        return self.objects.upsert(id=key, **values)

    def count(self, age: int) -> int:
        return int(self.objects.count(age=age))

    def filter(self, age: int) -> list[Any]:
        return list(self.objects.filter(age=age))

    def bulk(self, rows: list[dict[str, Any]]) -> list[Any]:
        return list(self.objects.bulk_create(rows))

    def update_where(self, age: int, score: float) -> list[Any]:
        return list(self.objects.update_where({"age": age}, score=score))

    def iterate(self) -> Iterator[Any]:
        return self.objects.iterate(batch_size=PAGE)  # type: ignore[no-any-return]

    def reconnect(self) -> None:
        # the thread's connection (its reader's too: one Database for the URL); the next
        # statement opens a new one
        self.objects.database.close_connections()


CONTENDERS: dict[str, Callable[[str, str, str], Any]] = {
    "floor": Floor, "sa_core": SACore, "sqlmodel": SQLModelPeer, "peewee": PeeweePeer,
    "django": DjangoPeer, "registers": Registers}
PEERS = ["sa_core", "sqlmodel", "peewee", "django"]


# --- tables and workloads -------------------------------------------------------------


def measure(c: Any, workload: str, ops: int, seed: int) -> tuple[float, int]:
    """``(rate, result size)``: ops/s or rows/s, and what the calls returned (checked
    to be equal across contenders, so each provably does the same work)."""
    if hasattr(c, "reset"):
        c.reset()
    calls = max(1, ops // 20)
    size = 0
    start = time.perf_counter()
    if workload == "get by key":
        for i in range(ops):
            key = 1 + (i * 7919 + seed) % SEED_ROWS
            size += c.get(key).id == key
    elif workload == "single insert":
        for i in range(ops):
            size += c.create(row(seed * ops + i)).id > 0
    elif workload == "upsert":
        for i in range(ops):
            key = 1 + (i * 104729 + seed) % SEED_ROWS
            size += c.upsert(key, row(i)).id == key
    elif workload == "count":
        for i in range(ops):
            size += c.count((i + seed) % 100)
    elif workload == "filter":
        for i in range(calls):
            size += len(c.filter((i + seed) % 100))
    elif workload == "bulk insert":
        for i in range(max(1, ops // 200)):
            models = c.bulk([row(seed * 10**6 + i * 1000 + j) for j in range(1000)])
            expect(len({m.id for m in models}) == 1000 and models[0].id > 0, "bulk keys")
            size += len(models)
    elif workload == "update_where":
        for i in range(calls):
            models = c.update_where((i + seed) % 100, seed + i / 10)
            expect([m.id for m in models] == sorted(m.id for m in models), "update order")
            size += len(models)
    elif workload == "iterate":
        last = 0
        for m in c.iterate():
            expect(m.id > last, "iterate key order")
            last = m.id
            size += 1
    elapsed = time.perf_counter() - start
    units = size if workload in ROW_WORKLOADS else ops
    return units / elapsed, size


def run_backend(backend: str, url: str, names: list[str], ops: int, rounds: int,
                awake: AwakeCpus, reconnect: bool = True,
                workloads: list[str] | None = None) -> None:
    workloads = workloads or WORKLOADS
    suffix = uuid.uuid4().hex[:8]
    tables = {name: f"bench_{name}_{suffix}" for name in names}
    shared = f"bench_reads_{suffix}"  # the reads' table: seeded once, never written
    contenders: dict[str, Any] = {}
    readers: dict[str, Any] = {}
    try:
        for table in [*tables.values(), shared]:
            create_table(url, table)
        contenders = {name: CONTENDERS[name](backend, url, tables[name]) for name in names}
        # Reads run on one shared table, so every contender reads the same pages in the
        # same state (its own table's write history, page splits and purge backlog, moved
        # the server's time per read between contenders); writes on each one's own table.
        readers = {name: CONTENDERS[name](backend, url, shared) for name in names}
        for name, reader in readers.items():
            if hasattr(reader, "share"):  # the floor: one connection, as registers
                reader.share(contenders[name])
        for c in [*contenders.values(), *readers.values()]:  # untimed warm-up
            c.get(1)
            c.count(0)
        rates: dict[str, dict[str, list[float]]] = {w: {n: [] for n in names}
                                                     for w in workloads}
        for r in range(rounds):
            if r and reconnect:
                # The writes run without the CPUs kept awake, so a connection's round trip
                # is one of two speeds for its life (harness.AwakeCpus): new connections
                # every round draw the speeds again, and the median over the rounds is
                # no longer one draw's.
                for c in contenders.values():
                    c.reconnect()
                    c.get(1)  # untimed: the connections are opened and warm
                    c.count(0)
                    for _ in c.iterate():  # (registers' iterate has one of its own)
                        pass
            order = names[r % len(names):] + names[:r % len(names)]
            for workload in workloads:
                samples: dict[str, list[tuple[float, int]]] = {n: [] for n in names}
                with awake.around(workload):
                    for part, (slice_ops, seed) in enumerate(slices(workload, ops, r)):
                        turn = order[part % len(order):] + order[:part % len(order)]
                        for name in turn:
                            on = readers if workload in READ_WORKLOADS else contenders
                            samples[name].append(measure(on[name], workload, slice_ops,
                                                         seed))
                sizes = {n: sum(size for _, size in got) for n, got in samples.items()}
                expect(len(set(sizes.values())) == 1, f"{workload}: results differ {sizes}")
                for name, got in samples.items():
                    rates[workload][name].append(rate_of(got, workload, slice_ops))
            print(f"  {backend}: round {r + 1}/{rounds} done", file=sys.stderr)
        connections = "new connections every round" if reconnect else "held connections"
        report(f"{backend} ({url.split('@')[-1]}), {ops} ops x {rounds} rounds; "
               f"{awake.describe()}; {connections}", names,
               workloads, rates, ["floor"], PEERS, TARGETS)
    finally:
        for c in [*contenders.values(), *readers.values()]:
            if hasattr(c, "close"):
                c.close()
        from registers.db import dispose_all

        dispose_all()
        for table in [*tables.values(), shared]:
            drop_table(url, table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backends", default="postgresql,mysql",
                        help="comma-separated: postgresql, mysql")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"comma-separated subset of {','.join(CONTENDERS)}")
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help=f"comma-separated subset of: {', '.join(WORKLOADS)}")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 ops x 3 rounds")
    parser.add_argument("--ops", type=int, default=None, help="ops per workload (default 2000)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5)")
    parser.add_argument("--no-awake-cpus", action="store_true",
                        help="let the CPUs idle during the reads (see harness.AwakeCpus)")
    parser.add_argument("--held-connections", action="store_true",
                        help="keep every contender's connections for the whole run (default: "
                             "new ones every round)")
    args = parser.parse_args(argv)
    ops = args.ops or (300 if args.quick else 2000)
    rounds = args.rounds or (3 if args.quick else 5)
    backends = [b for b in args.backends.split(",") if b]
    names = [n for n in args.contenders.split(",") if n]
    workloads = [w for w in args.workloads.split(",") if w]
    bad = [b for b in backends if b not in URLS] + [n for n in names if n not in CONTENDERS]
    bad += [w for w in workloads if w not in WORKLOADS]
    if bad:
        parser.error(f"unknown backend, contender or workload: {', '.join(bad)}")
    if ops < 20 or rounds < 1:
        parser.error("--ops must be at least 20 and --rounds at least 1")
    if "django" in names:
        configure_django(backends)
    started = time.perf_counter()
    awake = AwakeCpus(not args.no_awake_cpus)
    try:
        for backend in backends:
            run_backend(backend, URLS[backend], names, ops, rounds, awake,
                        reconnect=not args.held_connections, workloads=workloads)
    finally:
        awake.close()
    print(f"\ntotal wall time {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
