"""registers.db against hand-written psycopg 3 / PyMySQL and SQLAlchemy Core, on servers.

Run from the repository root (after ``pip install -e ".[dev]"``), against the local
servers (or any URL you pass)::

    python -m benchmarks.server_bench                      # PostgreSQL and MariaDB
    python -m benchmarks.server_bench --backends postgresql --ops 3000 --rounds 5

Contenders, each on its own table of the same shape, in the same process, interleaved
round by round so machine noise hits them alike:

* ``floor``      the driver by hand: one held autocommit connection, statements written
                 out, ``User.model_validate`` on every row in and out
* ``sa_core``    SQLAlchemy Core at its best: one held AUTOCOMMIT connection, prebuilt
                 statements, rows validated into the same model
* ``registers``  ``registers.db.database_registry`` on the same server

Workloads: get by key, single insert (committed, the model gets its key), upsert of an
existing row by key, count with a WHERE, filter returning ~100 rows, bulk insert of 1,000
rows in one transaction. The table printed is ops/s (rows/s for filter and bulk) and the
ratio to the floor; the spread is the min..max ratio over the rounds. A benchmark, not a
test: nothing asserts on timings.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel

COLUMNS = ("id", "name", "email", "age", "active", "score")
URLS = {
    "postgresql": os.environ.get("REGISTERS_BENCH_POSTGRES_URL",
                                 "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("REGISTERS_BENCH_MYSQL_URL",
                            "mysql+pymysql://root@127.0.0.1:3306/test"),
}
WORKLOADS = ["get by key", "single insert", "upsert", "count", "filter", "bulk insert"]
ROWS_PER_OP = {"filter": 100, "bulk insert": 1000}


class User(BaseModel):
    id: int | None = None
    name: str
    email: str
    age: int
    active: bool
    score: float


def row(i: int) -> dict[str, Any]:
    return {"name": f"user{i}", "email": f"u{i}@example.com", "age": i % 100,
            "active": i % 2 == 0, "score": i / 7}


def validated(values: dict[str, Any]) -> tuple[Any, ...]:
    u = User.model_validate(values).__dict__
    return (u["name"], u["email"], u["age"], u["active"], u["score"])


def to_model(r: Any) -> User:
    return User.model_validate(dict(zip(COLUMNS, r)))


# --- contenders ---------------------------------------------------------------------


class Floor:
    """The driver by hand."""

    def __init__(self, backend: str, url: str, table: str) -> None:
        self.backend, self.table = backend, table
        u = sa.make_url(url)
        if backend == "postgresql":
            import psycopg

            self.conn: Any = psycopg.connect(
                host=u.host, port=u.port or 5432, user=u.username, dbname=u.database,
                autocommit=True)
        else:
            import pymysql

            self.conn = pymysql.connect(host=u.host, port=u.port or 3306, user=u.username,
                                        password=u.password or "", database=u.database,
                                        autocommit=True)
        cols = ", ".join(COLUMNS[1:])
        self.insert = f"INSERT INTO {table} ({cols}) VALUES (%s, %s, %s, %s, %s)"
        self.select = f"SELECT {', '.join(COLUMNS)} FROM {table}"
        sets = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
        if backend == "postgresql":
            self.upsert_sql = (f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES "
                               f"(%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET {sets}")
        else:
            sets = ", ".join(f"{c} = VALUES({c})" for c in COLUMNS[1:])
            self.upsert_sql = (f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES "
                               f"(%s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE {sets}")

    def get(self, key: int) -> User:
        cur = self.conn.cursor()
        cur.execute(f"{self.select} WHERE id = %s", (key,))
        return to_model(cur.fetchone())

    def create(self, values: dict[str, Any]) -> User:
        params = validated(values)
        cur = self.conn.cursor()
        if self.backend == "postgresql":
            cur.execute(self.insert + " RETURNING id", params)
            key = cur.fetchone()[0]
        else:
            cur.execute(self.insert, params)
            key = cur.lastrowid
        return User(id=key, **values)

    def upsert(self, key: int, values: dict[str, Any]) -> User:
        params = validated(values)
        self.conn.cursor().execute(self.upsert_sql, (key, *params))
        return User(id=key, **values)

    def count(self, age: int) -> int:
        cur = self.conn.cursor()
        cur.execute(f"SELECT COUNT(*) FROM {self.table} WHERE age = %s", (age,))
        return int(cur.fetchone()[0])

    def filter(self, age: int) -> list[User]:
        cur = self.conn.cursor()
        cur.execute(f"{self.select} WHERE age = %s", (age,))
        return [to_model(r) for r in cur.fetchall()]

    def bulk(self, rows: list[dict[str, Any]]) -> int:
        params = [validated(v) for v in rows]
        cur = self.conn.cursor()
        if self.backend == "postgresql":
            with self.conn.transaction():
                cur.executemany(self.insert, params)
        else:
            self.conn.begin()
            cur.executemany(self.insert, params)
            self.conn.commit()
        return len(params)


class SACore:
    """SQLAlchemy Core with a held AUTOCOMMIT connection and prebuilt statements."""

    def __init__(self, backend: str, url: str, table: str) -> None:
        self.engine = sa.create_engine(url)
        meta = sa.MetaData()
        self.t = sa.Table(table, meta, autoload_with=self.engine)
        self.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        t = self.t
        self.get_stmt = sa.select(*[t.c[c] for c in COLUMNS]).where(t.c.id == sa.bindparam("k"))
        self.count_stmt = sa.select(sa.func.count()).select_from(t).where(
            t.c.age == sa.bindparam("a"))
        self.filter_stmt = sa.select(*[t.c[c] for c in COLUMNS]).where(
            t.c.age == sa.bindparam("a"))
        self.insert_stmt = t.insert()
        if backend == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
            ins = insert(t)
            self.upsert_stmt = ins.on_conflict_do_update(
                index_elements=[t.c.id], set_={c: ins.excluded[c] for c in COLUMNS[1:]})
        else:
            from sqlalchemy.dialects.mysql import insert as minsert
            mins = minsert(t)
            self.upsert_stmt = mins.on_duplicate_key_update(
                {c: mins.inserted[c] for c in COLUMNS[1:]})

    def get(self, key: int) -> User:
        return to_model(self.conn.execute(self.get_stmt, {"k": key}).one())

    def create(self, values: dict[str, Any]) -> User:
        User.model_validate(values)
        result = self.conn.execute(self.insert_stmt, values)
        return User(id=result.inserted_primary_key[0], **values)

    def upsert(self, key: int, values: dict[str, Any]) -> User:
        User.model_validate(values)
        self.conn.execute(self.upsert_stmt, {"id": key, **values})
        return User(id=key, **values)

    def count(self, age: int) -> int:
        return int(self.conn.execute(self.count_stmt, {"a": age}).scalar_one())

    def filter(self, age: int) -> list[User]:
        return [to_model(r) for r in self.conn.execute(self.filter_stmt, {"a": age})]

    def bulk(self, rows: list[dict[str, Any]]) -> int:
        for v in rows:
            User.model_validate(v)
        with self.engine.begin() as conn:
            conn.execute(self.insert_stmt, rows)
        return len(rows)


class Registers:
    def __init__(self, backend: str, url: str, table: str) -> None:
        from registers.db import database_registry

        @database_registry(url, table_name=table)
        class RUser(User):
            pass

        self.m: Any = RUser

    def get(self, key: int) -> Any:
        return self.m.objects.get(key)

    def create(self, values: dict[str, Any]) -> Any:
        return self.m.objects.create(**values)

    def upsert(self, key: int, values: dict[str, Any]) -> Any:
        return self.m.objects.upsert(id=key, **values)

    def count(self, age: int) -> int:
        return int(self.m.objects.count(age=age))

    def filter(self, age: int) -> list[Any]:
        return list(self.m.objects.filter(age=age))

    def bulk(self, rows: list[dict[str, Any]]) -> int:
        return len(self.m.objects.bulk_create(rows))


CONTENDERS: dict[str, Callable[[str, str, str], Any]] = {
    "floor": Floor, "sa_core": SACore, "registers": Registers}


def create_table(url: str, table: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    meta = sa.MetaData()
    sa.Table(table, meta,
             sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
             sa.Column("name", sa.String(200), nullable=False),
             sa.Column("email", sa.String(200), nullable=False),
             sa.Column("age", sa.BigInteger, nullable=False, index=True),
             sa.Column("active", sa.Boolean, nullable=False),
             sa.Column("score", sa.Float, nullable=False))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(meta.tables[table].insert(), [row(i) for i in range(10_000)])
    engine.dispose()


def drop_table(url: str, table: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


def measure(c: Any, workload: str, ops: int, seed: int) -> float:
    start = time.perf_counter()
    if workload == "get by key":
        for i in range(ops):
            c.get(1 + (i * 7919 + seed) % 10_000)
    elif workload == "single insert":
        for i in range(ops):
            c.create(row(seed * ops + i))
    elif workload == "upsert":
        for i in range(ops):
            c.upsert(1 + (i * 104729 + seed) % 10_000, row(i))
    elif workload == "count":
        for i in range(ops):
            c.count(i % 100)
    elif workload == "filter":
        for i in range(max(1, ops // 20)):
            c.filter(i % 100)
        return ROWS_PER_OP["filter"] * max(1, ops // 20) / (time.perf_counter() - start)
    elif workload == "bulk insert":
        n = max(1, ops // 200)
        for i in range(n):
            c.bulk([row(seed * 10**6 + i * 1000 + j) for j in range(1000)])
        return 1000 * n / (time.perf_counter() - start)
    return ops / (time.perf_counter() - start)


def run_backend(backend: str, url: str, ops: int, rounds: int) -> None:
    suffix = uuid.uuid4().hex[:8]
    tables = {name: f"bench_{name}_{suffix}" for name in CONTENDERS}
    try:
        for table in tables.values():
            create_table(url, table)
        contenders = {name: make(backend, url, tables[name]) for name, make in CONTENDERS.items()}
        rates: dict[str, dict[str, list[float]]] = {w: {n: [] for n in contenders}
                                                     for w in WORKLOADS}
        for r in range(rounds):
            for workload in WORKLOADS:
                for name, c in contenders.items():
                    rates[workload][name].append(measure(c, workload, ops, r + 1))
        print(f"\n{backend} ({url.split('@')[-1]}), {ops} ops x {rounds} rounds")
        print(f"{'workload':14}" + "".join(f"{n:>22}" for n in contenders))
        for workload in WORKLOADS:
            floor = rates[workload]["floor"]
            cells = []
            for name in contenders:
                ratios = [x / f for x, f in zip(rates[workload][name], floor)]
                med = statistics.median(rates[workload][name])
                cells.append(f"{med:>9,.0f} {statistics.median(ratios):4.2f}x"
                             f"({min(ratios):.2f}-{max(ratios):.2f})")
            print(f"{workload:14}" + "".join(f"{c:>22}" for c in cells))
    finally:
        from registers.db import dispose_all

        dispose_all()
        for table in tables.values():
            drop_table(url, table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="postgresql,mysql")
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print("cells: median ops/s (rows/s for filter, bulk), median ratio to floor (min-max)")
    for backend in args.backends.split(","):
        run_backend(backend, URLS[backend], args.ops, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
