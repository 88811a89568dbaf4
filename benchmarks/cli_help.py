"""``app --help`` of a one-model CLI against argparse + pydantic + SQLAlchemy by hand.

One command (from the repository root, after ``pip install -e ".[dev]"``)::

    python -m benchmarks.cli_help               # 30 paired runs
    python -m benchmarks.cli_help --quick       # 8 paired runs, a few seconds

The registers app declares one ``registers.db`` model on a SQLite file (a path relative to
the working directory, as an app would) and ``cli.crud(Note)``; ``python app.py --help``
prints the top-level help. The hand-written script imports argparse, pydantic and
SQLAlchemy, declares the same pydantic model and SQLAlchemy ``Table`` (no engine), builds
the same five sub-commands and prints help. Each variant runs as a fresh subprocess,
alternating, in a fresh temporary directory each run; the median wall time and the
child's CPU time are printed with the ratio to the hand-written script. registers is
compiled to byte code first, as ``pip install`` does (with ``PYTHONDONTWRITEBYTECODE`` set
every run would otherwise time compiling registers' sources, while the standard library
and site-packages the hand-written script uses are precompiled).

Also checked (not timed), and printed as findings, never asserted:

* whether ``--help`` created the SQLite file (it should not: decorating must not connect);
* whether ``--help`` of the same app pointed at a PostgreSQL URL on a closed port
  still prints its help (a connection attempt would fail or hang there);
* which heavy modules ``--help`` imported: the PostgreSQL/MySQL dialects and drivers,
  asyncio and SQLAlchemy's asyncio layer, registers' async modules; and which of them
  the hand-written script imports too (SQLAlchemy 2.1 imports ``asyncio`` itself);
* how many full (generation 2) garbage collections each ``--help`` ran, and their time.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REGISTERS_APP = '''
from registers.cli import CommandRegistry
from registers.db import Model, database_registry


@database_registry(URL, table_name="notes")
class Note(Model):
    id: int | None = None
    title: str
    body: str = ""
    done: bool = False


cli = CommandRegistry(prog="app")
cli.crud(Note)
cli.run()
'''

BY_HAND = '''
import argparse

import pydantic
import sqlalchemy as sa


class Note(pydantic.BaseModel):
    id: int | None = None
    title: str
    body: str = ""
    done: bool = False


metadata = sa.MetaData()
notes = sa.Table(
    "notes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("done", sa.Boolean, nullable=False),
)
engine_url = URL  # an engine would be created on first use, not for --help

parser = argparse.ArgumentParser(prog="app")
groups = parser.add_subparsers(dest="group")
group = groups.add_parser("notes", help="Note records")
sub = group.add_subparsers(dest="command")
create = sub.add_parser("create", help="create a Note")
for name in ("title", "body"):
    create.add_argument(f"--{name}")
create.add_argument("--done", action=argparse.BooleanOptionalAction)
listing = sub.add_parser("list", help="list Notes")
for name in ("title", "body"):
    listing.add_argument(f"--{name}")
listing.add_argument("--limit", type=int)
for command in ("get", "delete"):
    sub.add_parser(command, help=f"{command} a Note").add_argument("key", type=int)
update = sub.add_parser("update", help="update a Note")
update.add_argument("key", type=int)
parser.parse_args()
'''

HEAVY = ("sqlalchemy", "pydantic", "sqlalchemy.dialects.postgresql", "sqlalchemy.dialects.mysql",
         "psycopg", "pymysql", "asyncpg", "aiosqlite", "aiomysql", "greenlet", "asyncio",
         "sqlalchemy.ext.asyncio", "registers.db.aio", "registers.db.async_engine",
         "registers.db.async_direct")

PROBE = '''
import gc, json, runpy, sys, time
full = []
def watch(phase, info, started=[0.0]):
    if info["generation"] == 2:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            full.append(time.perf_counter() - started[0])
gc.callbacks.append(watch)
sys.argv = ["app.py", "--help"]
try:
    runpy.run_path("app.py", run_name="__main__")
except SystemExit:
    pass
print("\\n" + json.dumps({"imported": [m for m in HEAVY if m in sys.modules], "full_gc": full}))
'''


def ensure_bytecode() -> None:
    """Compile registers like ``pip install`` does (PYTHONDONTWRITEBYTECODE would skip it)."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("registers")
    assert spec is not None and spec.origin is not None
    compileall.compile_dir(str(Path(spec.origin).parent), quiet=1)


def write(directory: Path, source: str, url: str) -> Path:
    path = directory / "app.py"
    path.write_text(f"URL = {url!r}\n" + source)
    return path


def run_once(source: str) -> tuple[float, float, bool]:
    """``(wall, child CPU, created the database file)`` of one ``app.py --help``."""
    with tempfile.TemporaryDirectory() as tmp:
        app = write(Path(tmp), source, "notes.db")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        out = subprocess.run([sys.executable, str(app), "--help"], cwd=tmp,
                             capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if out.returncode != 0 or "usage:" not in out.stdout:
            raise SystemExit(f"--help failed: {out.stdout!r} {out.stderr!r}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        created = any(Path(tmp).glob("notes.db*"))
    return wall, cpu, created


def probe(source: str, url: str = "notes.db") -> tuple[dict[str, Any], list[str]]:
    """``(what --help imported and its full collections, database files created)``."""
    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp), source, url)
        code = f"HEAVY = {HEAVY!r}\n" + PROBE
        out = subprocess.run([sys.executable, "-c", code], cwd=tmp, capture_output=True,
                             text=True, check=True)
        created = sorted(p.name for p in Path(tmp).glob("notes.db*"))
    return json.loads(out.stdout.strip().splitlines()[-1]), created


def findings() -> None:
    ours, created = probe(REGISTERS_APP)
    theirs, _ = probe(BY_HAND)
    print(f"registers app --help created the SQLite file: "
          f"{'YES ' + ', '.join(created) if created else 'no'}")
    imported: list[str] = ours["imported"]
    extra = [m for m in imported if m not in theirs["imported"]]
    print(f"registers app --help (SQLite URL) imported: {', '.join(imported) or 'none of them'}")
    print(f"  of which the hand-written script does not: {', '.join(extra) or 'none'}")
    for name, report in (("registers", ours), ("by hand", theirs)):
        full: list[float] = report["full_gc"]
        print(f"full garbage collections during --help, {name}: {len(full)}"
              + (f" ({', '.join(f'{t * 1000:.0f} ms' for t in full)})" if full else ""))
    with tempfile.TemporaryDirectory() as tmp:
        # port 9 (discard) is closed here: a connection attempt fails at once
        app = write(Path(tmp), REGISTERS_APP, "postgresql+psycopg://nobody@127.0.0.1:9/none")
        try:
            out = subprocess.run([sys.executable, str(app), "--help"], cwd=tmp,
                                 capture_output=True, text=True, timeout=60)
            ok = out.returncode == 0 and "usage:" in out.stdout
            detail = "" if ok else f" (exit {out.returncode}: " \
                f"{(out.stderr.strip().splitlines() or [''])[-1][:160]})"
        except subprocess.TimeoutExpired:
            ok, detail = False, " (timed out after 60 s)"
    print(f"registers app --help with an unreachable PostgreSQL URL prints help: "
          f"{'yes' if ok else 'NO'}{detail}")
    for url in ("postgresql+psycopg://nobody@127.0.0.1:9/none", "mysql+pymysql://nobody@127.0.0.1:9/x"):
        report, _ = probe(REGISTERS_APP, url)
        extra = [m for m in report["imported"] if m not in theirs["imported"]]
        print(f"registers app --help ({url.split(':')[0]} URL) imported, beyond the "
              f"hand-written script: {', '.join(extra) or 'none'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=None, help="paired runs (default 30)")
    parser.add_argument("--quick", action="store_true", help="8 paired runs")
    args = parser.parse_args(argv)
    pairs = args.pairs or (8 if args.quick else 30)
    variants = {"by hand": BY_HAND, "registers": REGISTERS_APP}
    ensure_bytecode()
    for source in variants.values():  # warm-up: byte-code caches
        run_once(source)
    wall: dict[str, list[float]] = {n: [] for n in variants}
    cpu: dict[str, list[float]] = {n: [] for n in variants}
    created = False
    for i in range(pairs):
        for name in (list(variants) if i % 2 == 0 else list(variants)[::-1]):
            w, c, made = run_once(variants[name])
            wall[name].append(w)
            cpu[name].append(c)
            created = created or (made and name == "registers")
    print(f"{pairs} paired runs of `python app.py --help` (one model; median wall time, "
          "median CPU time of the process)")
    base_w, base_c = statistics.median(wall["by hand"]), statistics.median(cpu["by hand"])
    for name in variants:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"  {name:<10} {w * 1000:7.1f} ms  {w / base_w:5.2f}x   "
              f"CPU {c * 1000:6.1f} ms  {c / base_c:5.2f}x")
    ratios = [r / b for r, b in zip(wall["registers"], wall["by hand"])]
    print(f"  registers / by hand per pair: median {statistics.median(ratios):.2f}x "
          f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x)")
    findings()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
