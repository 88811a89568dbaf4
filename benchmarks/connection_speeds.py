"""Two hand-written connections to one server, taking turns on the same count: how far
apart their round trips are, with the CPUs left to idle and kept awake.

Why the server and async benchmarks keep the CPUs awake during their reads
(``harness.AwakeCpus``): on a small VM a connection's round trip has one of two speeds
for its whole life, decided by where the scheduler puts the server's thread for it, so
two identical connections can differ by 2.5x. Run::

    python -m benchmarks.connection_speeds                 # MariaDB and PostgreSQL
    python -m benchmarks.connection_speeds --backends mysql --turns 400

Printed per backend and mode: each connection's median time per count (and the 10th and
90th percentiles of its turns), and the slower one over the faster one. Nothing here is
registers: both connections are ``server_bench``'s floor (PyMySQL / psycopg 3, autocommit,
one held cursor), running its count.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from benchmarks.harness import URLS, AwakeCpus, create_table, drop_table
from benchmarks.server_bench import Floor

CALLS_PER_TURN = 40


def turns(backend: str, url: str, table: str, count: int) -> list[list[float]]:
    """Microseconds per count of each of two new connections, turn by turn."""
    connections = [Floor(backend, url, table) for _ in range(2)]  # the floor's count
    times: list[list[float]] = [[], []]
    try:
        for turn in range(count):
            for which in ((0, 1) if turn % 2 else (1, 0)):
                count = connections[which].count
                start = time.perf_counter()
                for i in range(CALLS_PER_TURN):
                    count((turn + i) % 100)
                times[which].append((time.perf_counter() - start) / CALLS_PER_TURN * 1e6)
    finally:
        for c in connections:
            c.conn.close()
    return times


def describe(times: list[float]) -> str:
    ordered = sorted(times)
    return (f"{statistics.median(ordered):6.0f} us (p10 {ordered[len(ordered) // 10]:.0f}, "
            f"p90 {ordered[9 * len(ordered) // 10]:.0f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backends", default="mysql,postgresql",
                        help="comma-separated: postgresql, mysql")
    parser.add_argument("--turns", type=int, default=200,
                        help=f"turns of {CALLS_PER_TURN} counts per connection (default 200)")
    parser.add_argument("--runs", type=int, default=3, help="runs per mode (default 3)")
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    bad = [b for b in backends if b not in URLS]
    if bad:
        parser.error(f"unknown backend: {', '.join(bad)}")
    if args.turns < 10 or args.runs < 1:
        parser.error("--turns must be at least 10 and --runs at least 1")
    for backend in backends:
        url = URLS[backend]
        table = f"bench_speeds_{uuid.uuid4().hex[:8]}"
        create_table(url, table)
        try:
            for awake_cpus in (False, True):
                awake = AwakeCpus(awake_cpus)
                try:
                    print(f"\n{backend}: {awake.describe()}")
                    for run in range(args.runs):
                        with awake.around("count"):
                            a, b = turns(backend, url, table, args.turns)
                        slow = max(statistics.median(a), statistics.median(b))
                        fast = min(statistics.median(a), statistics.median(b))
                        print(f"  run {run + 1}: connection 1 {describe(a)}, connection 2 "
                              f"{describe(b)}; slower / faster {slow / fast:.2f}x")
                finally:
                    awake.close()
        finally:
            drop_table(url, table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
