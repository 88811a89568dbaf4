"""Shared pieces of the server and async benchmarks: the model, the rows, the report.

Not a benchmark itself: ``benchmarks/server_bench.py`` and ``benchmarks/async_bench.py``
import it (run them as ``python -m benchmarks.NAME``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
from collections.abc import Iterator
from operator import attrgetter
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel

COLUMNS = ("id", "name", "email", "age", "active", "score")
VALUES = COLUMNS[1:]
URLS = {
    "postgresql": os.environ.get("REGISTERS_BENCH_POSTGRES_URL",
                                 "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("REGISTERS_BENCH_MYSQL_URL",
                            "mysql+pymysql://root@127.0.0.1:3306/test"),
}
ROW_WORKLOADS = {"filter", "bulk insert", "update_where", "iterate"}
READ_WORKLOADS = {"get by key", "count", "filter", "iterate"}
PAGE = 1000
SEED_ROWS = 10_000


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
    """The column values of ``values`` once validated by the model (what a floor binds)."""
    u = User.model_validate(values).__dict__
    return (u["name"], u["email"], u["age"], u["active"], u["score"])


def to_model(r: Any) -> User:
    return User.model_validate(dict(zip(COLUMNS, r)))


def by_id(models: list[Any]) -> list[Any]:
    models.sort(key=attrgetter("id"))
    return models


def url_parts(url: str) -> dict[str, Any]:
    u = sa.make_url(url)
    return {"host": u.host or "127.0.0.1", "port": u.port, "user": u.username or "",
            "password": u.password or "", "database": u.database or ""}


def sa_table(table: str) -> sa.Table:
    return sa.Table(table, sa.MetaData(),
                    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                              primary_key=True, autoincrement=True),
                    sa.Column("name", sa.String(200), nullable=False),
                    sa.Column("email", sa.String(200), nullable=False),
                    sa.Column("age", sa.BigInteger, nullable=False, index=True),
                    sa.Column("active", sa.Boolean, nullable=False),
                    sa.Column("score", sa.Float, nullable=False))


def create_table(url: str, table: str) -> None:
    """``table`` with :data:`SEED_ROWS` rows (ages 0..99), through a throw-away engine."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    t = sa_table(table)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")  # persistent in the file
        t.metadata.create_all(conn)
        conn.execute(t.insert(), [row(i) for i in range(SEED_ROWS)])
    engine.dispose()


def drop_table(url: str, table: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


# Each round's ops of a workload run in slices, the contenders taking turns slice by
# slice: a drift of the machine or the server (a checkpoint, the purge of the previous
# workload's writes, another process's burst) then hits every contender alike instead of
# whichever ran at that moment. Row workloads: up to SLICES slices. Single statements
# (~0.2-0.5 ms a call on a server): TURN_OPS calls a turn, ~10 ms; with 200-call turns
# the count cell's median moved between 0.78x and 0.88x from run to run, while op by op
# it stays within a few percent.
SLICES = 10
TURN_OPS = 40
# iterate: whole passes over the table, taken in turns like slices (one pass a round left
# five samples of ~70 ms each, and the ahead/behind verdict flipped from run to run)
ITERATE_PASSES = 3


def slices(workload: str, ops: int, round_index: int) -> list[tuple[int, int]]:
    """``(ops, seed)`` of each slice of one round of ``workload`` (iterate: a whole pass
    each); seeds differ between every slice of every round, so generated keys never
    repeat."""
    if workload == "iterate":
        return [(ops, round_index * ITERATE_PASSES + part + 1)
                for part in range(ITERATE_PASSES)]
    parts = max(1, min(SLICES, ops // 200) if workload in ROW_WORKLOADS else ops // TURN_OPS)
    return [(ops // parts, round_index * parts + part + 1) for part in range(parts)]


def rate_of(samples: list[tuple[float, int]], workload: str, ops: int) -> float:
    """One rate from the ``(rate, size)`` of a round's slices: all the units over all
    the time (``ops`` a slice for per-call workloads, the rows for row workloads)."""
    units = [size if workload in ROW_WORKLOADS else ops for _, size in samples]
    return sum(units) / sum(u / rate for u, (rate, _) in zip(units, samples))


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"benchmark sanity check failed: {what}")


def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):5.2f}x ({min(xs):.2f}-{max(xs):.2f})"


def report(title: str, names: list[str], workloads: list[str],
           rates: dict[str, dict[str, list[float]]], floors: list[str], peers: list[str],
           targets: dict[str, float]) -> None:
    """Median rates; per-round ratios to each floor and of registers to each peer
    (median and min-max over the rounds); and the targets."""
    load = os.getloadavg()
    print(f"\n{title}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("median rate (ops/s; rows/s for filter, bulk insert, update_where, iterate)")
    print(f"{'workload':14}" + "".join(f"{n:>13}" for n in names))
    for w in workloads:
        print(f"{w:14}" + "".join(f"{statistics.median(rates[w][n]):>13,.0f}" for n in names))

    def ratios(w: str, a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(rates[w][a], rates[w][b])]

    floors = [f for f in floors if f in names]
    peers = [p for p in peers if p in names]
    for floor in floors:
        others = [n for n in names if n != floor]
        print(f"\nratio to {floor}, per round: median (min-max)")
        print(f"{'workload':14}" + "".join(f"{n:>22}" for n in others))
        for w in workloads:
            print(f"{w:14}" + "".join(f"{spread(ratios(w, n, floor)):>22}" for n in others))
    if "registers" not in names:
        return
    if peers:
        print("\nregisters / peer, per round: median (min-max)")
        print(f"{'workload':14}" + "".join(f"{n:>22}" for n in peers))
        for w in workloads:
            print(f"{w:14}" + "".join(f"{spread(ratios(w, 'registers', p)):>22}"
                                      for p in peers))
    if floors:
        print(f"\ntargets (median ratio to {floors[0]}; ahead of every peer)")
        for w in workloads:
            got = statistics.median(ratios(w, "registers", floors[0]))
            behind = [p for p in peers if statistics.median(ratios(w, "registers", p)) < 1]
            ok = got >= targets[w] and not behind
            note = f"behind {', '.join(behind)}" if behind else "ahead of every peer"
            print(f"  {w:14} >= {targets[w]:.1f}x  {got:5.2f}x  {'HOLDS ' if ok else 'MISSES'}"
                  f"  {note}")


# --- CPUs kept out of idle during the reads -------------------------------------------
#
# On this 2-vCPU VM a connection's round trip takes one of two times, kept for the
# connection's life: about 50 us for a count when the server's thread for it runs on
# the client's vCPU, about 130 us when it runs on the other one, which halts between
# statements and is woken (an exit to the hypervisor each way). Which connection gets
# which is the scheduler's choice: two identical hand-written connections taking turns
# measured 53 vs 137 us, the faster one changing from run to run, so a per-call read cell
# was decided by where each contender's connection landed (count moved between 0.69x and
# 0.93x of the floor from run to run). A busy loop at SCHED_IDLE on every vCPU keeps them
# from halting; it yields to any other thread at once, and both connections then measure
# 87-88 us. Only around the reads: the commit path (WAL or redo flush) then waits for a
# timer tick (single insert fell from 3,500 to 290 a second), so the writes run without it.

_SPIN = """
import ctypes, os
ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG: SIGKILL when the benchmark exits
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
while True:
    pass
"""


class AwakeCpus:
    """One stopped SCHED_IDLE busy loop per CPU, run only inside :meth:`around` of a read
    workload (none where SCHED_IDLE does not exist, or when ``enabled`` is false)."""

    def __init__(self, enabled: bool) -> None:
        self.loops: list[subprocess.Popen[bytes]] = []
        if enabled and hasattr(os, "SCHED_IDLE") and sys.platform == "linux":
            for _ in range(os.cpu_count() or 1):
                loop = subprocess.Popen([sys.executable, "-c", _SPIN])
                loop.send_signal(signal.SIGSTOP)
                self.loops.append(loop)

    def describe(self) -> str:
        if not self.loops:
            return "CPUs idle between statements (--no-awake-cpus, or not Linux)"
        return f"reads with {len(self.loops)} SCHED_IDLE busy loops keeping the CPUs awake"

    @contextlib.contextmanager
    def around(self, workload: str) -> Iterator[None]:
        if not self.loops or workload not in READ_WORKLOADS:
            yield
            return
        for loop in self.loops:
            loop.send_signal(signal.SIGCONT)
        try:
            yield
        finally:
            for loop in self.loops:
                loop.send_signal(signal.SIGSTOP)

    def close(self) -> None:
        for loop in self.loops:
            loop.kill()
            loop.wait()
        self.loops = []
