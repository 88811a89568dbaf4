"""P1: start-up cost of a one-command registers app vs a hand-written argparse script.

Runs ``python app.py greet Alice`` for each variant as a fresh subprocess, alternating the
variants in each round (paired runs, so machine noise hits all of them alike), and prints
the median wall time of each and the ratio to hand-written argparse (target <= 1.25x).
Click and Typer are measured too when installed. A second pair measures a command with 30
options (``argparse30`` vs ``registers30``, plain defaults, and ``registers30opt``, the same
30 options declared with ``Option("-a", ...)`` short names, a counted one and a hidden
one), against ``argparse30`` (``registers30opt`` against ``argparse30typing``, the same
script plus the ``from typing import Annotated`` an annotations-first program makes itself).
Wall time is the P1 measure; the child's CPU time is printed too, being steadier on a loaded
machine. Also checks that ``import registers.cli`` imports neither
pydantic nor SQLAlchemy.

Usage::

    python benchmarks/cli_startup.py [--pairs 40]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPTS = {
    "argparse": '''
import argparse

parser = argparse.ArgumentParser()
sub = parser.add_subparsers(dest="command")
greet = sub.add_parser("greet", aliases=["g"], help="Greet someone by name")
greet.add_argument("name")
args = parser.parse_args()
if args.command in ("greet", "g"):
    print(f"Hello, {args.name}!")
''',
    "registers": '''
from registers.cli import CommandRegistry

cli = CommandRegistry()


@cli.register(ops=["-g", "--greet"], description="Greet someone by name")
def greet(name: str) -> str:
    return f"Hello, {name}!"


cli.run()
''',
    "click": '''
import click


@click.group()
def cli():
    pass


@cli.command(help="Greet someone by name")
@click.argument("name")
def greet(name):
    click.echo(f"Hello, {name}!")


cli()
''',
    "typer": '''
import typer

app = typer.Typer()


@app.command()
def greet(name: str):
    print(f"Hello, {name}!")


@app.command()
def other():
    pass


app()
''',
}


_LETTERS = "abcdefgijklmnopqrstuvwxyzABCDE"  # 30 short names, none of them -h
_KINDS = [("int", "1"), ("str", "'x'"), ("float", "0.5")]


def _thirty(kind: str) -> str:
    """A ``greet NAME`` command with 30 options: hand-written argparse or registers."""
    rows = [(f"opt{i:02d}", *_KINDS[i % 3], _LETTERS[i]) for i in range(30)]
    if kind == "argparse":
        adds = "\n".join(
            f"greet.add_argument('-{s}', '--{n}', type={t}, default={d})" for n, t, d, s in rows
        )
        return (
            "import argparse\n\nparser = argparse.ArgumentParser()\n"
            "sub = parser.add_subparsers(dest='command')\n"
            "greet = sub.add_parser('greet', aliases=['g'], help='Greet someone by name')\n"
            f"greet.add_argument('name')\n{adds}\n"
            "args = parser.parse_args()\n"
            "if args.command in ('greet', 'g'):\n    print(f'Hello, {args.name}!')\n"
        )
    if kind == "registers":
        params = ",\n    ".join(f"{n}: {t} = {d}" for n, t, d, _ in rows)
        header = "from registers.cli import CommandRegistry\n"
    else:  # Option() metadata: short names, one counted and one hidden option
        lines = [f"{n}: Annotated[{t}, Option('-{s}')] = {d}" for n, t, d, s in rows[:28]]
        lines.append(f"verbose: Annotated[int, Option('-{rows[28][3]}', count=True)] = 0")
        lines.append("debug: Annotated[bool, Option(hidden=True)] = False")
        params = ",\n    ".join(lines)
        header = "from typing import Annotated\nfrom registers.cli import CommandRegistry, Option\n"
    return (
        f"{header}\ncli = CommandRegistry()\n\n\n"
        "@cli.register(ops=['-g', '--greet'], description='Greet someone by name')\n"
        f"def greet(\n    name: str,\n    {params},\n) -> str:\n"
        "    return f'Hello, {name}!'\n\n\ncli.run()\n"
    )


SCRIPTS["argparse30"] = _thirty("argparse")
SCRIPTS["registers30"] = _thirty("registers")
SCRIPTS["registers30opt"] = _thirty("option")
# the same argparse script plus the import an annotations-first program makes itself
SCRIPTS["argparse30typing"] = "from typing import Annotated  # noqa: F401\n" + SCRIPTS["argparse30"]
_NEEDS_OPTION = "registers30opt"


def _has_option() -> bool:
    code = "import registers.cli, sys; sys.exit(0 if hasattr(registers.cli, 'Option') else 1)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def _available(name: str) -> bool:
    if name == _NEEDS_OPTION:
        return _has_option()
    if name.startswith(("argparse", "registers")):
        return True
    return importlib.util.find_spec(name) is not None


def _time_once(script: Path) -> tuple[float, float]:
    """``(wall time, CPU time of the child)``; CPU time barely moves when other processes
    load the machine, so it is the steadier number on a shared box."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(script), "greet", "Alice"], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0 or result.stdout != "Hello, Alice!\n":
        raise SystemExit(f"{script.name} failed: {result.stdout!r} {result.stderr!r}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def _ensure_bytecode() -> None:
    """Compile registers like ``pip install`` does (PYTHONDONTWRITEBYTECODE would skip it).

    The standard library the argparse script uses is always precompiled; without this the
    comparison would time compiling registers' sources on every run.
    """
    import compileall

    spec = importlib.util.find_spec("registers")
    assert spec is not None and spec.origin is not None
    package = Path(spec.origin).parent
    compileall.compile_file(str(package / "__init__.py"), quiet=1)
    compileall.compile_dir(str(package / "cli"), quiet=1)


def _check_import_is_light() -> None:
    code = (
        "import sys, registers.cli\n"
        "print(','.join(m for m in ('pydantic', 'sqlalchemy') if m in sys.modules))"
    )
    heavy = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    if heavy:
        raise SystemExit(f"import registers.cli imported: {heavy}")
    print("import registers.cli imports neither pydantic nor sqlalchemy: ok")


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--pairs", type=int, default=40, help="rounds of paired runs")
    pairs = options.parse_args().pairs
    _ensure_bytecode()
    _check_import_is_light()
    variants = [name for name in SCRIPTS if _available(name)]
    for name in SCRIPTS:
        if name not in variants:
            print(f"{name}: not installed, skipped")
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name in variants:
            paths[name] = Path(tmp) / f"{name}_app.py"
            paths[name].write_text(SCRIPTS[name])
        for path in paths.values():  # warm up: byte-code caches, file system
            _time_once(path)
        times: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        for round_ in range(pairs):
            order = variants if round_ % 2 == 0 else variants[::-1]
            for name in order:
                wall, used = _time_once(paths[name])
                times[name].append(wall)
                cpu[name].append(used)
    base = statistics.median(times["argparse"])
    base30 = statistics.median(times["argparse30"])
    cpu_base = {label: statistics.median(cpu[label])
                for label in ("argparse", "argparse30", "argparse30typing")}
    references = {"argparse": base, "argparse30": base30,
                  "argparse30typing": statistics.median(times["argparse30typing"])}
    print(f"{pairs} paired runs of `python app.py greet Alice` (median wall time; median CPU "
          "time of the process)")
    for name in variants:
        median = statistics.median(times[name])
        label = _reference(name)
        reference = references[label]
        used = statistics.median(cpu[name])
        print(f"  {name:<17} {median * 1000:7.2f} ms   {median / reference:5.2f}x {label:<16}"
              f"   CPU {used * 1000:6.1f} ms  {used / cpu_base[label]:5.2f}x")
    for name in ("registers", "registers30", "registers30opt"):
        if name not in times:
            continue
        against = _reference(name)
        ratio = statistics.median(times[name]) / references[against]
        verdict = "ok" if ratio <= 1.25 else "ABOVE TARGET"
        print(f"{name} / {against} = {ratio:.3f} (target <= 1.25): {verdict}")


def _reference(name: str) -> str:
    """What a variant is compared with: argparse doing the same, with the same imports
    (``registers30opt``'s own ``from typing import Annotated`` costs ~7 ms of CPU)."""
    if name in ("registers30opt", "argparse30typing"):
        return "argparse30typing"
    return "argparse30" if "30" in name else "argparse"


if __name__ == "__main__":
    main()
