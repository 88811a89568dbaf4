"""``iterate(order_by=...)`` at 10k / 100k / 1M rows: cost per row and memory stay flat.

One command (from the repository root, after ``pip install -e ".[dev]"``)::

    python -m benchmarks.iterate_scale                    # SQLite file: 10k, 100k, 1M rows
    python -m benchmarks.iterate_scale --quick            # 10k and 100k rows, ~15 seconds
    python -m benchmarks.iterate_scale --sizes 10000,100000,1000000,3000000
    python -m benchmarks.iterate_scale --url postgresql+psycopg://postgres@127.0.0.1:5432/test
    python -m benchmarks.iterate_scale --url mysql+pymysql://root@127.0.0.1:3306/test --quick

Each size runs in its own subprocess on its own table (``age`` indexed, 100 distinct
values, so ``order_by="age"`` pages through ties), filled untimed from a generator. Then,
timed (wall clock): registers' ``iterate(order_by="age", batch_size=1000)`` (keyset pages on
``(age, id)``), registers' ``iterate()`` in key order, and the floor: one streaming
``SELECT ... ORDER BY age, id`` read 1,000 rows at a time (sqlite3 by hand on SQLite; a
psycopg server-side cursor / an unbuffered PyMySQL cursor on a server), every row
validated into the pydantic model. Memory, untimed: the peak traced by ``tracemalloc``
during a second ``iterate(order_by="age")`` pass (Python allocations), and how far the
process's peak RSS grew during the timed passes.

Printed per size: microseconds per row, the ratio of that to the smallest size's (1.00 is
perfectly linear total cost; a cost per page that grows with the table shows up as a
ratio growing with the size), registers' ratio to the floor, and the memory figures. A
benchmark, not a test: nothing asserts on timings.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
COLUMNS = ("id", "name", "email", "age", "active", "score")
PAGE = 1000


class User(BaseModel):
    id: int | None = None
    name: str
    email: str
    age: int
    active: bool
    score: float


def rows(n: int) -> Iterator[tuple[Any, ...]]:
    for i in range(n):
        yield (f"user{i}", f"u{i}@example.com", (i * 7919) % 100, i % 2 == 0, i / 7)


def fill(url: str, table: str, n: int) -> None:
    """Create ``table`` with ``n`` rows, untimed (the model declares the same table)."""
    import sqlalchemy as sa

    meta = sa.MetaData()
    t = sa.Table(table, meta,
                 sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                           primary_key=True, autoincrement=True),
                 sa.Column("name", sa.String(200), nullable=False),
                 sa.Column("email", sa.String(200), nullable=False),
                 sa.Column("age", sa.BigInteger, nullable=False, index=True),
                 sa.Column("active", sa.Boolean, nullable=False),
                 sa.Column("score", sa.Float, nullable=False))
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    meta.create_all(engine)
    names = COLUMNS[1:]
    if engine.dialect.name == "sqlite":
        conn = sqlite3.connect(engine.url.database or "", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES (?, ?, ?, ?, ?)",
                         rows(n))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("ANALYZE")
        conn.close()
    else:
        chunk: list[dict[str, Any]] = []
        with engine.begin() as c:
            for r in rows(n):
                chunk.append(dict(zip(names, r)))
                if len(chunk) == 10_000:
                    c.execute(t.insert(), chunk)
                    chunk = []
            if chunk:
                c.execute(t.insert(), chunk)
            analyze = "ANALYZE TABLE" if engine.dialect.name == "mysql" else "ANALYZE"
            c.exec_driver_sql(f"{analyze} {table}")
    engine.dispose()


def floor_pass(url: str, table: str) -> Callable[[], int]:
    """One streaming ``SELECT ... ORDER BY age, id`` by hand, 1,000 rows a fetch."""
    sql = f"SELECT {', '.join(COLUMNS)} FROM {table} ORDER BY age, id"
    validate = User.model_validate

    if url.startswith("sqlite"):
        import sqlalchemy as sa

        path = sa.make_url(url).database or ""

        def run_sqlite() -> int:
            conn = sqlite3.connect(path)
            cur = conn.execute(sql)
            n = 0
            while batch := cur.fetchmany(PAGE):
                for r in batch:
                    n += validate(dict(zip(COLUMNS, r))).id > 0
            conn.close()
            return n

        return run_sqlite

    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)

    def run_server() -> int:
        n = 0
        raw: Any = engine.raw_connection()  # the driver's own connection
        try:
            if engine.dialect.name == "postgresql":
                cur = raw.cursor(name="scale")  # server-side, in the driver's transaction
            else:
                import pymysql.cursors

                cur = raw.cursor(pymysql.cursors.SSCursor)  # unbuffered
            cur.execute(sql)
            while batch := cur.fetchmany(PAGE):
                for r in batch:
                    n += validate(dict(zip(COLUMNS, r))).id > 0
            cur.close()
        finally:
            raw.close()
        return n

    return run_server


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(url: str, n: int) -> dict[str, Any]:
    from registers.db import database_registry, dispose_all

    table = f"iter_scale_{n}_{uuid.uuid4().hex[:6]}"
    fill(url, table, n)
    try:
        @database_registry(url, table_name=table)
        class Row(User):
            pass

        objects: Any = Row.objects
        passes: dict[str, Callable[[], int]] = {
            "order_by": lambda: sum(m.id > 0 for m in objects.iterate(order_by="age",
                                                                    batch_size=PAGE)),
            "key order": lambda: sum(m.id > 0 for m in objects.iterate(batch_size=PAGE)),
            "floor": floor_pass(url, table),
        }
        rss_before = maxrss_mib()
        seconds: dict[str, float] = {}
        for name, run in passes.items():
            gc.collect()
            start = time.perf_counter()
            got = run()
            seconds[name] = time.perf_counter() - start
            if got != n:
                raise SystemExit(f"{name}: streamed {got} rows, expected {n}")
        rss_growth = maxrss_mib() - rss_before
        gc.collect()
        tracemalloc.start()
        streamed = sum(m.id > 0 for m in objects.iterate(order_by="age", batch_size=PAGE))
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        if streamed != n:
            raise SystemExit(f"traced pass streamed {streamed} rows, expected {n}")
    finally:
        dispose_all()
        if not url.startswith("sqlite"):
            import sqlalchemy as sa

            engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            engine.dispose()
    return {"rows": n, "seconds": seconds, "peak_traced_mib": peak, "rss_growth_mib": rss_growth}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", default=None,
                        help="a server URL (default: a SQLite file in a temporary directory)")
    parser.add_argument("--sizes", default=None,
                        help="comma-separated row counts (default 10000,100000,1000000)")
    parser.add_argument("--quick", action="store_true", help="10k and 100k rows only")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.url, args.worker)))
        return 0
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
             else list(QUICK_SIZES if args.quick else DEFAULT_SIZES))
    if any(s < PAGE for s in sizes):
        parser.error(f"every size must be at least {PAGE}")
    results = []
    with tempfile.TemporaryDirectory(prefix="registers-iterate-") as tmp:
        for n in sizes:
            url = args.url or f"sqlite:///{Path(tmp) / f'scale_{n}.db'}"
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.iterate_scale", "--url", url,
                 "--worker", str(n)], capture_output=True, text=True,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(
                    [str(Path(__file__).resolve().parent.parent),
                     *filter(None, [os.environ.get("PYTHONPATH")])])})
            if out.returncode:
                print(out.stdout, out.stderr, file=sys.stderr)
                return out.returncode
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  {n:,} rows done", file=sys.stderr)
    where = (args.url or "sqlite file").split("@")[-1]
    load = os.getloadavg()
    print(f"iterate scale on {where}, batch_size={PAGE}, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'rows':>10} {'order_by=age':>14} {'vs smallest':>12} {'key order':>11} "
          f"{'vs smallest':>12} {'floor':>9} {'floor/age':>10} {'peak traced':>12} "
          f"{'RSS growth':>11}")
    base = results[0]
    for r in results:
        us = {k: v / r["rows"] * 1e6 for k, v in r["seconds"].items()}
        b = {k: v / base["rows"] * 1e6 for k, v in base["seconds"].items()}
        grow = us["order_by"] / b["order_by"]
        print(f"{r['rows']:>10,} {us['order_by']:>11.2f} us {grow:>11.2f}x"
              f" {us['key order']:>8.2f} us {us['key order'] / b['key order']:>11.2f}x"
              f" {us['floor']:>6.2f} us {us['floor'] / us['order_by']:>9.2f}x"
              f" {r['peak_traced_mib']:>8.2f} MiB {r['rss_growth_mib']:>7.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
